using System.Management.Automation;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>Stops proxies started in this session and releases their ports; their jobs stay for Receive-Job until removed.</summary>
/// <example>
/// <code>
/// Stop-EtcdProxy etcd-proxy
/// </code>
/// Stops the proxy and releases its port; its job stays for Receive-Job until Remove-Job.
/// </example>
/// <example>
/// <code>
/// Get-EtcdProxy | Stop-EtcdProxy -PassThru
/// </code>
/// Stops every proxy of this session and returns their final counters.
/// </example>
[Cmdlet(VerbsLifecycle.Stop, "EtcdProxy", SupportsShouldProcess = true)]
[OutputType(typeof(EtcdProxyInfo))]
public sealed class StopEtcdProxyCommand : EtcdCmdlet
{
    /// <summary>Names of the proxies to stop; wildcards allowed. Binds from Get-EtcdProxy on the pipeline.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string[] Name { get; set; } = System.Array.Empty<string>();

    /// <summary>Return the stopped proxies.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void Process()
    {
        foreach (EtcdProxyJob job in MatchByName(Name, () => ProxyRegistry.All, j => j.Name,
            n => new Engine.EtcdSecureException("ProxyNotFound", Engine.ErrorKind.ObjectNotFound, $"No proxy named '{n}' was started in this session.", n)))
        {
            if (!ShouldProcess($"proxy {job.Name} ({job.Location})", "Stop")) continue;
            job.StopJob();
            if (PassThru) WriteObject(EtcdProxyInfo.From(job));
        }
    }
}
