using System.Management.Automation;
using System.Threading;
using EtcdSecure.Engine;

namespace EtcdSecure.PowerShell;

/// <summary>
/// Base of every EtcdSecure cmdlet: engine failures become terminating errors with their stable ErrorId,
/// and Ctrl+C (StopProcessing) cancels whatever the engine is waiting on.
/// </summary>
public abstract class EtcdCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stopping = new();

    protected CancellationToken CancelToken => _stopping.Token;

    protected virtual void Begin() { }

    protected virtual void Process() { }

    protected virtual void End() { }

    protected sealed override void BeginProcessing() => Guard(Begin);

    protected sealed override void ProcessRecord() => Guard(Process);

    protected sealed override void EndProcessing() => Guard(End);

    protected override void StopProcessing() => _stopping.Cancel();

    /// <summary>Resolves a path the way a user means it: relative to PowerShell's location, not the process's.</summary>
    protected string ResolveLocalPath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

    /// <summary>A certificate and the key beside it (NAME-key.pem), as etcd and the proxy take them.</summary>
    protected static Engine.Members.TlsFiles KeyPair(EtcdCertificate cert, string parameter) =>
        cert.KeyPath is { Length: > 0 } key && System.IO.File.Exists(key)
            ? new Engine.Members.TlsFiles(cert.Path, key)
            : throw new EtcdSecureException("CertificateKeyNotFound", ErrorKind.ObjectNotFound, $"{parameter} '{cert.Path}' has no private key beside it (expected {cert.Name}-key.pem).", cert.Path);

    private void Guard(System.Action step)
    {
        try
        {
            step();
        }
        catch (EtcdSecureException ex)
        {
            ThrowTerminatingError(Errors.ToRecord(ex));
        }
        catch (System.OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // The pipeline is being stopped; PowerShell reports that itself.
        }
    }
}
