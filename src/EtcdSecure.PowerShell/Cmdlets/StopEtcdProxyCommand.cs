using System.Management.Automation;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Stops proxies and releases their ports: this session's (their jobs stay for Receive-Job until removed), and
/// detached ones started by any session of this user (asked over their control socket, then SIGTERM, then a kill).
/// </summary>
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

    /// <summary>How long a detached proxy may take to stop after it is asked before it is killed ('10s', '1m' or a TimeSpan).</summary>
    [Parameter]
    [DurationTransformation]
    public System.TimeSpan Timeout { get; set; } = System.TimeSpan.FromSeconds(10);

    protected override void Process()
    {
        foreach (object proxy in MatchByName(Name, () => ProxyRegistry.Everything, ProxyRegistry.NameOf,
            n => new Engine.EtcdSecureException("ProxyNotFound", Engine.ErrorKind.ObjectNotFound, $"No proxy named '{n}' runs in this session or detached.", n)))
        {
            switch (proxy)
            {
                case EtcdProxyJob job:
                    if (!ShouldProcess($"proxy {job.Name} ({job.Location})", "Stop")) continue;
                    job.StopJob();
                    break;
                case Engine.State.ProxyRecord r:
                    if (!ShouldProcess($"detached proxy {r.Name} ({r.Endpoint}, process {r.ProcessId})", "Stop")) continue;
                    // Its counters live in its process: read them last thing before it goes, or they are gone with it.
                    EtcdProxyInfo? last = PassThru ? ProxyRegistry.Info(r, CancelToken) : null;
                    Engine.Relay.ProxyHost.StopAsync(r, Timeout, CancelToken).GetAwaiter().GetResult();
                    if (last is not null) WriteObject(last with { State = "Stopped" });
                    continue;
            }

            if (PassThru) WriteObject(EtcdProxyInfo.From((EtcdProxyJob)proxy));
        }
    }
}
