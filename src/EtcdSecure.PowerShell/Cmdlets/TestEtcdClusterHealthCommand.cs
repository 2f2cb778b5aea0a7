using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine.Health;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Checks etcd endpoints the way `etcdctl endpoint health` and `endpoint status` do, all in parallel and each within
/// -Timeout: one object per member, a cluster summary with -Summary, or $true/$false with -Quiet. It takes clusters
/// (Get-EtcdCluster), members (Get-EtcdMember) and proxies (Get-EtcdProxy) from the pipeline; Get-EtcdClusterMember
/// lists the members as the cluster itself sees them.
/// </summary>
/// <example>
/// <code>
/// Test-EtcdClusterHealth https://127.0.0.1:12379, https://127.0.0.1:22379 -CA ./tls/ca.pem -Certificate ./tls/root.pem
/// </code>
/// One object per endpoint: Healthy, IsLeader, RaftTerm, Version, Latency, and Error saying why when it is not healthy.
/// </example>
/// <example>
/// <code>
/// $env:ETCDCTL_ENDPOINTS = 'https://127.0.0.1:2379'; $env:ETCDCTL_CACERT = './tls/ca.pem'; $env:ETCDCTL_CERT = './tls/root.pem'; $env:ETCDCTL_KEY = './tls/root-key.pem'
/// Test-EtcdClusterHealth -Cluster -Summary
/// </code>
/// Uses etcdctl's environment variables, finds every member, and summarises: healthy when a quorum is healthy and there is one leader.
/// </example>
/// <example>
/// <code>
/// if (-not (Test-EtcdClusterHealth -Cluster -Quiet)) { exit 1 }
/// </code>
/// Fails a CI job when the cluster is not healthy.
/// </example>
[Cmdlet(VerbsDiagnostic.Test, "EtcdClusterHealth", DefaultParameterSetName = "Members")]
[OutputType(typeof(EtcdEndpointHealth), ParameterSetName = new[] { "Members" })]
[OutputType(typeof(EtcdClusterHealth), ParameterSetName = new[] { "Summary" })]
[OutputType(typeof(bool), ParameterSetName = new[] { "Quiet" })]
public sealed class TestEtcdClusterHealthCommand : EtcdClientCmdlet
{
    /// <summary>Check every member the cluster lists (found through any endpoint, the proxy included), not only the endpoints given.</summary>
    [Parameter]
    public SwitchParameter Cluster { get; set; }

    /// <summary>Return one object for the whole cluster: healthy when a quorum is healthy and there is one leader.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Summary")]
    public SwitchParameter Summary { get; set; }

    /// <summary>Return only $true (cluster healthy) or $false, for scripts and CI.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Quiet")]
    public SwitchParameter Quiet { get; set; }

    protected override void End()
    {
        var endpoints = Endpoints();
        var query = new HealthQuery { Endpoints = endpoints, Identity = Identity(), Timeout = Timeout, Cluster = Cluster };
        WriteVerbose($"Checking {(Cluster ? "every member, via " : "")}{string.Join(", ", endpoints.Select(e => e.GetLeftPart(System.UriPartial.Authority)))} (timeout {Timeout.TotalSeconds:0.#} s each)");
        IReadOnlyList<EndpointHealth> results = ClusterHealth.CheckAsync(query, CancelToken).GetAwaiter().GetResult();
        switch (ParameterSetName)
        {
            case "Summary":
                WriteObject(EtcdClusterHealth.From(results));
                break;
            case "Quiet":
                WriteObject(ClusterVerdict.Of(results).Healthy);
                break;
            default:
                WriteObject(results.Select(EtcdEndpointHealth.From).ToList(), enumerateCollection: true);
                break;
        }
    }
}
