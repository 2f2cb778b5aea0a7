using System.Management.Automation;
using EtcdSecure.Engine.Health;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>The cluster's member list (MemberList from the first endpoint that answers), as objects.</summary>
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
