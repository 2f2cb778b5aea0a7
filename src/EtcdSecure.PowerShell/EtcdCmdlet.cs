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

    /// <summary>
    /// Writes a file this cmdlet made as Get-Item returns it: with the provider's notes, so the file table shows its
    /// mode, owner and size (a bare FileInfo shows those columns blank).
    /// </summary>
    protected void WriteFile(string path) => WriteObject(InvokeProvider.Item.Get(new[] { path }, force: true, literalPath: true), enumerateCollection: true);

    /// <summary>Says which ETCD_* variables of this session the members it starts do not inherit (etcd would read them as flags).</summary>
    protected void WarnStrayEnvironment()
    {
        if (Engine.Members.MemberHost.StrayEnvironment() is { Count: > 0 } stray)
        {
            WriteWarning($"etcd reads flags from ETCD_* variables; these of this session are not passed to the member, so it runs exactly as its command line says: {string.Join(", ", stray)}.");
        }
    }

    /// <summary>A certificate and the key beside it (NAME-key.pem), as etcd and the proxy take them.</summary>
    protected static Engine.Members.TlsFiles KeyPair(EtcdCertificate cert, string parameter) =>
        cert.KeyPath is { Length: > 0 } key && System.IO.File.Exists(key)
            ? new Engine.Members.TlsFiles(cert.Path, key)
            : throw new EtcdSecureException("CertificateKeyNotFound", ErrorKind.ObjectNotFound, $"{parameter} '{cert.Path}' has no private key beside it (expected {cert.Name}-key.pem).", cert.Path);

    /// <summary>
    /// The items each name matches (wildcards allowed), name by name as the caller enumerates. A plain name that matches
    /// nothing is an error, a wildcard that matches nothing is not: what Stop-Process does.
    /// </summary>
    protected static System.Collections.Generic.IEnumerable<T> MatchByName<T>(System.Collections.Generic.IEnumerable<string> names,
        System.Func<System.Collections.Generic.IEnumerable<T>> items, System.Func<T, string> nameOf, System.Func<string, EtcdSecureException> notFound)
    {
        foreach (string n in names)
        {
            var pattern = new WildcardPattern(n, WildcardOptions.IgnoreCase);
            var found = System.Linq.Enumerable.ToList(System.Linq.Enumerable.Where(items(), i => pattern.IsMatch(nameOf(i))));
            if (found.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(n)) throw notFound(n);
            foreach (T item in found) yield return item;
        }
    }

    /// <summary>
    /// What Get-Process does with names: every item a name matches (wildcards allowed), each once; a plain name that
    /// matches nothing writes a non-terminating ObjectNotFound error, so the other names still get their answer.
    /// </summary>
    protected System.Collections.Generic.IEnumerable<T> FindByName<T>(System.Collections.Generic.IEnumerable<string> names, System.Collections.Generic.IReadOnlyList<T> items,
        System.Func<T, string> nameOf, string errorId, string what)
    {
        var seen = new System.Collections.Generic.HashSet<string>(System.StringComparer.OrdinalIgnoreCase);
        foreach (string n in names)
        {
            var pattern = new WildcardPattern(n, WildcardOptions.IgnoreCase);
            bool found = false;
            foreach (T item in items)
            {
                if (!pattern.IsMatch(nameOf(item))) continue;
                found = true;
                if (seen.Add(nameOf(item))) yield return item;
            }

            if (!found && !WildcardPattern.ContainsWildcardCharacters(n))
            {
                WriteError(new ErrorRecord(new ItemNotFoundException($"No {what} named '{n}' was found (state store: {Engine.State.StateStore.Current.Root})."), errorId, ErrorCategory.ObjectNotFound, n));
            }
        }
    }

    /// <summary>How to start this PowerShell again: pwsh itself, or dotnet with pwsh.dll where PowerShell runs as a .NET tool.</summary>
    protected static string[] PwshCommand()
    {
        string exe = System.Environment.ProcessPath ?? "";
        if (System.IO.Path.GetFileNameWithoutExtension(exe).Equals("pwsh", System.StringComparison.OrdinalIgnoreCase)) return new[] { exe };
        string entry = System.Environment.GetCommandLineArgs()[0];
        if (System.IO.Path.GetFileNameWithoutExtension(exe).Equals("dotnet", System.StringComparison.OrdinalIgnoreCase) && entry.EndsWith(".dll", System.StringComparison.OrdinalIgnoreCase)) return new[] { exe, entry };
        throw new EtcdSecureException("PlatformNotSupported", ErrorKind.NotImplemented, $"This PowerShell host ('{exe}') cannot be started again for a detached proxy; run pwsh with Start-EtcdProxy -Wait instead.", "-Detached");
    }

    /// <summary>This module's manifest, as a new PowerShell process (a detached proxy, a service) imports it.</summary>
    protected string ModuleManifest => System.IO.Path.Combine(MyInvocation.MyCommand.Module.ModuleBase, "EtcdSecure.psd1");

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
