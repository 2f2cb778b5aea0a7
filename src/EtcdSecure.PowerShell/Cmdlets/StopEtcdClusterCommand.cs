using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>Shared by Stop-EtcdCluster and Remove-EtcdCluster: the clusters named, as New-EtcdCluster made them.</summary>
public abstract class ClusterCmdlet : EtcdCmdlet
{
    /// <summary>Names of clusters made by New-EtcdCluster; wildcards allowed. Binds from the cluster object on the pipeline.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ClusterNameCompleter))]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>How long each member may take to exit after SIGTERM before it is killed.</summary>
    [Parameter]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    protected IEnumerable<EtcdCluster> Targets() => MatchByName(Name, () => ClusterRegistry.All, c => c.Name,
        n => new EtcdSecureException("ClusterNotFound", ErrorKind.ObjectNotFound, $"No cluster named '{n}' was made by New-EtcdCluster in this session.", n)).Distinct();

    protected void StopMembers(EtcdCluster c)
    {
        foreach (EtcdMember m in c.Members)
        {
            // Only the processes this module started, by their PID: a member restarted by hand is found again by name.
            if (MemberHost.Find(m.Name) is { } running) MemberHost.StopAsync(running, Timeout, CancelToken).GetAwaiter().GetResult();
        }
    }
}

/// <summary>Stops every member of a cluster made by New-EtcdCluster; data and certificates stay for a restart.</summary>
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
        foreach (EtcdCluster c in Targets())
        {
            if (ShouldProcess($"cluster {c.Name} ({c.Members.Length} members)", "Stop")) StopMembers(c);
        }
    }
}

/// <summary>Stops a cluster made by New-EtcdCluster and deletes its folder: certificates, keys, data and logs.</summary>
/// <example>
/// <code>
/// Remove-EtcdCluster etcd
/// </code>
/// Stops the cluster's members and deletes its folder (certificates, keys, data, logs), after asking.
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
        foreach (EtcdCluster c in Targets())
        {
            if (!ShouldProcess($"cluster {c.Name}: its members and the folder {c.Path} (keys, data, logs)", "Remove")) continue;
            StopMembers(c);
            foreach (EtcdMember m in c.Members)
            {
                if (MemberHost.Find(m.Name) is { } r) MemberHost.Forget(r);
            }

            if (Directory.Exists(c.Path)) Directory.Delete(c.Path, recursive: true);
            ClusterRegistry.Remove(c);
        }
    }
}
