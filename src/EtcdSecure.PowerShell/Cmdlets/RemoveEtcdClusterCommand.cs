using System.Management.Automation;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.State;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Stops a cluster made by New-EtcdCluster, from any session, and deletes what it is made of: its tls/ (certificates
/// and keys), logs/ and data/ folders, then its folder when nothing else is left there. Files the module did not make
/// stay where they are.
/// </summary>
/// <example>
/// <code>
/// Remove-EtcdCluster etcd
/// </code>
/// Stops the cluster's members and deletes its certificates, keys, data and logs (and its folder, if that leaves it empty), after asking.
/// </example>
/// <example>
/// <code>
/// New-EtcdCluster -Path ./tmp-cluster -Name scratch | Remove-EtcdCluster -Confirm:$false
/// </code>
/// Removes a cluster without asking, as a test script would.
/// </example>
[Cmdlet(VerbsCommon.Remove, "EtcdCluster", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
public sealed class RemoveEtcdClusterCommand : ClusterCmdlet
{
    protected override void Process()
    {
        foreach (ClusterRecord c in Targets())
        {
            if (!ShouldProcess($"cluster {c.Name}: its members and the folder {c.Path} (keys, data, logs)", "Remove")) continue;
            // Of two sessions removing the same cluster, one does the work; for the other it is already done.
            if (!ClusterHost.RemoveAsync(c.Name, Timeout, CancelToken).GetAwaiter().GetResult()) WriteVerbose($"Cluster {c.Name} was removed meanwhile by another session.");
        }
    }
}
