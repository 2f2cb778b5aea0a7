using System;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.State;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// The clusters New-EtcdCluster made, in this session or any other of this user: members, state, the leader (asked of
/// the running members, within 2 s; blank when none answers), and how to reach them.
/// </summary>
/// <example>
/// <code>
/// Get-EtcdCluster
/// </code>
/// Lists every cluster made by New-EtcdCluster, Running, Degraded (some members down) or Stopped.
/// </example>
/// <example>
/// <code>
/// (Get-EtcdCluster etcd).PowerShellEnvironmentLines | Invoke-Expression; etcdctl member list
/// </code>
/// Points etcdctl at a cluster that an earlier session (a runbook, a CI step) made.
/// </example>
[Cmdlet(VerbsCommon.Get, "EtcdCluster")]
[OutputType(typeof(EtcdCluster))]
public sealed class GetEtcdClusterCommand : EtcdCmdlet
{
    /// <summary>Names of the clusters to list; wildcards allowed. Default: all. A plain name that matches nothing writes a non-terminating ClusterNotFound error.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string[] Name { get; set; } = { "*" };

    /// <summary>How long the running members are given to say who leads: a listing must not wait on a hung member.</summary>
    private static readonly TimeSpan LeaderTimeout = TimeSpan.FromSeconds(2);

    protected override void Process()
    {
        foreach (ClusterRecord c in FindByName(Name, ClusterHost.All, c => c.Name, "ClusterNotFound", "cluster"))
        {
            WriteObject(EtcdCluster.From(c, ClusterHost.LeaderAsync(c, LeaderTimeout, CancelToken).GetAwaiter().GetResult()));
        }
    }
}
