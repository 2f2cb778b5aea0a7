using System.Linq;
using System.Management.Automation;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// The proxies this module started, with live counters and the state of every member behind them: this session's
/// jobs, and detached proxies (Start-EtcdProxy -Detached) started by any session of this user.
/// </summary>
/// <example>
/// <code>
/// Get-EtcdProxy
/// </code>
/// Shows every proxy of this session and every detached one, with connection counters and members.
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
        foreach (object proxy in FindByName(Name, ProxyRegistry.Everything, ProxyRegistry.NameOf, "ProxyNotFound", "proxy")) WriteObject(ProxyRegistry.Info(proxy, CancelToken));
    }
}
