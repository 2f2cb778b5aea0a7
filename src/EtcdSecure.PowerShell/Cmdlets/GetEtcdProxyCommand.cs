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
    /// <summary>Names of the proxies to list; wildcards allowed. Default: all. A plain name that matches nothing writes a non-terminating ProxyNotFound error.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string[] Name { get; set; } = { "*" };

    protected override void Process()
    {
        foreach (EtcdProxyJob job in FindByName(Name, ProxyRegistry.All, j => j.Name, "ProxyNotFound", "proxy")) WriteObject(EtcdProxyInfo.From(job));
    }
}
