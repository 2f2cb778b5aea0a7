using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.State;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>Shared by Stop-EtcdCluster and Remove-EtcdCluster: the clusters named, as New-EtcdCluster recorded them for every session.</summary>
public abstract class ClusterCmdlet : EtcdCmdlet
{
    /// <summary>Names of clusters made by New-EtcdCluster, in this session or any other; wildcards allowed. Binds from the cluster object on the pipeline.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>How long each member may take to exit after SIGTERM before it is killed ('10s', '1m' or a TimeSpan).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    protected IEnumerable<ClusterRecord> Targets() => MatchByName(Name, () => ClusterHost.All, c => c.Name,
        n => new EtcdSecureException("ClusterNotFound", ErrorKind.ObjectNotFound, $"No cluster named '{n}' was made by New-EtcdCluster (state store: {StateStore.Current.Root}).", n)).DistinctBy(c => c.Name);
}
