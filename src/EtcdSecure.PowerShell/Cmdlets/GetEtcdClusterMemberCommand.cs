using System.Management.Automation;
using EtcdSecure.Engine.Health;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>The cluster's member list (MemberList from the first endpoint that answers), as objects.</summary>
/// <example>
/// <code>
/// Get-EtcdClusterMember https://127.0.0.1:2379 -CA ./tls/ca.pem -Certificate ./tls/root.pem
/// </code>
/// Lists the cluster's members (id, name, peer and client URLs, learner) from the first endpoint that answers.
/// </example>
/// <example>
/// <code>
/// $cluster = New-EtcdCluster -Path ./wfb
/// $cluster | Get-EtcdClusterMember
/// </code>
/// Takes the endpoints and credentials from a cluster object on the pipeline.
/// </example>
[Cmdlet(VerbsCommon.Get, "EtcdClusterMember")]
[OutputType(typeof(EtcdClusterMember))]
public sealed class GetEtcdClusterMemberCommand : EtcdClientCmdlet
{
    protected override void End()
    {
        foreach (ClusterMember m in ClusterHealth.MembersAsync(Endpoints(), Identity(), Timeout, CancelToken).GetAwaiter().GetResult())
        {
            WriteObject(EtcdClusterMember.From(m));
        }
    }
}
