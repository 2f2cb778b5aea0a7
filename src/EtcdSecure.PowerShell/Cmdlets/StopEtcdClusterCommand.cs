using System.Management.Automation;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.State;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>Stops every member of a cluster made by New-EtcdCluster, from any session; data and certificates stay for a restart.</summary>
/// <example>
/// <code>
/// Stop-EtcdCluster etcd
/// </code>
/// Stops every member of the cluster; data and certificates stay, so Start-EtcdMember -ClusterState Existing can bring members back.
/// </example>
/// <example>
/// <code>
/// New-EtcdCluster -Path ./wfb | Stop-EtcdCluster -Timeout '00:00:30'
/// </code>
/// Gives each member 30 s to exit after SIGTERM before it is killed.
/// </example>
[Cmdlet(VerbsLifecycle.Stop, "EtcdCluster", SupportsShouldProcess = true)]
public sealed class StopEtcdClusterCommand : ClusterCmdlet
{
    protected override void Process()
    {
        foreach (ClusterRecord c in Targets())
        {
            if (ShouldProcess($"cluster {c.Name} ({c.Members.Count} members)", "Stop")) ClusterHost.StopAsync(c, Timeout, CancelToken).GetAwaiter().GetResult();
        }
    }
}
