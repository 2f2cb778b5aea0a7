using System.Linq;
using System.Management.Automation;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>The proxies started in this session, with live counters and the state of every member behind them.</summary>
/// <example>
/// <code>
/// Get-EtcdProxy
/// </code>
/// Shows every proxy of this session with its connection counters and its members.
/// </example>
/// <example>
/// <code>
/// (Get-EtcdProxy etcd-proxy).Members | Format-Table
/// (Get-EtcdProxy etcd-proxy).Refused
/// </code>
/// Shows which members take new connections and which clients were refused, by reason.
/// </example>
[Cmdlet(VerbsCommon.Get, "EtcdProxy")]
[OutputType(typeof(EtcdProxyInfo))]
public sealed class GetEtcdProxyCommand : EtcdCmdlet
{
    /// <summary>Names of the proxies to list; wildcards allowed. Default: all.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ProxyNameCompleter))]
    public string[] Name { get; set; } = { "*" };

    protected override void Process()
    {
        var patterns = Name.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToList();
        foreach (EtcdProxyJob job in ProxyRegistry.All.Where(j => patterns.Any(p => p.IsMatch(j.Name))))
        {
            WriteObject(EtcdProxyInfo.From(job));
        }
    }
}

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
    [ArgumentCompleter(typeof(ProxyNameCompleter))]
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

public sealed class ProxyNameCompleter : System.Management.Automation.IArgumentCompleter
{
    public System.Collections.Generic.IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        System.Management.Automation.Language.CommandAst commandAst, System.Collections.IDictionary fakeBoundParameters)
    {
        var pattern = new WildcardPattern(wordToComplete + "*", WildcardOptions.IgnoreCase);
        return ProxyRegistry.All.Where(j => pattern.IsMatch(j.Name)).Select(j => new CompletionResult(j.Name, j.Name, CompletionResultType.ParameterValue, $"{j.Name} ({j.Location}, {j.JobStateInfo.State})"));
    }
}
