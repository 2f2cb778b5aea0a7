using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.Pki;
using EtcdSecure.Engine.State;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Reference workflow B in one command: a CA, a client certificate (CN root), a server and a peer certificate per
/// member, N members with client and peer certificate authentication on loopback, logs in logs/. Returns once the
/// cluster has a leader.
/// </summary>
/// <example>
/// <code>
/// $cluster = New-EtcdCluster -Path ./wfb
/// $cluster.EnvironmentLines
/// </code>
/// Reference workflow B in one command: PKI in ./wfb/tls/assets, three members on free ports, logs in ./wfb/logs; prints the ETCDCTL_* lines for etcdctl.
/// </example>
/// <example>
/// <code>
/// New-EtcdCluster -Path ./wfb -ClientPort 12379, 22379, 32379 -PeerPort 12380, 22380, 32380 | Test-EtcdClusterHealth
/// </code>
/// Uses workflow B's ports, and checks every member's health.
/// </example>
[Cmdlet(VerbsCommon.New, "EtcdCluster", SupportsShouldProcess = true)]
[OutputType(typeof(EtcdCluster))]
public sealed class NewEtcdClusterCommand : EtcdCmdlet
{
    /// <summary>The folder for tls/assets, data/ and logs/ (created when missing).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    public string Path { get; set; } = "";

    /// <summary>Number of members, 1 to 9. Default 3.</summary>
    [Parameter]
    [ValidateRange(1, 9)]
    public int Size { get; set; } = 3;

    /// <summary>The cluster's name: the cluster token, and the prefix of its member names (NAME-1, NAME-2...).</summary>
    [Parameter]
    [ValidatePattern("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    public string Name { get; set; } = "etcd";

    /// <summary>Client ports, one per member (workflow B uses 12379, 22379, 32379). Default: free ports.</summary>
    [Parameter]
    public int[]? ClientPort { get; set; }

    /// <summary>Peer ports, one per member. Default: free ports.</summary>
    [Parameter]
    public int[]? PeerPort { get; set; }

    /// <summary>Key algorithm of every certificate: ECDSA (default, as workflow B) or RSA.</summary>
    [Parameter]
    [ValidateSet("ECDSA", "RSA")]
    public string KeyAlgorithm { get; set; } = "ECDSA";

    /// <summary>The etcd binary to run. Default: etcd on PATH.</summary>
    [Parameter]
    public string? EtcdPath { get; set; }

    /// <summary>
    /// Make the cluster in a folder that holds other files too. Without it such a folder is refused (PathNotEmpty):
    /// the cluster's tls/, logs/ and data/ would sit among someone's files. Remove-EtcdCluster deletes those three
    /// folders alone either way, and the folder itself only when nothing else is left in it.
    /// </summary>
    [Parameter]
    public SwitchParameter AllowNonEmptyPath { get; set; }

    /// <summary>
    /// Replace certificates already in tls/assets, and the data an earlier cluster's members left in data/ (that data
    /// is lost). Without it, such data stops the command before anything is written (ClusterDataExists): etcd would
    /// start each member as what its data says, a member of the earlier cluster.
    /// </summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>How long the cluster may take to elect a leader before it is stopped and the command fails ('60s', '2m' or a TimeSpan).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    protected override void Process()
    {
        string root = ResolveLocalPath(Path);
        int[] free = FreePorts(2 * Size);
        int[] clientPorts = Ports(ClientPort, "-ClientPort") ?? free[..Size];
        int[] peerPorts = Ports(PeerPort, "-PeerPort") ?? free[Size..];
        var plan = new ClusterPlan
        {
            Name = Name,
            Root = root,
            ClientPorts = clientPorts,
            PeerPorts = peerPorts,
            Key = KeySpec.Create(Enum.Parse<KeyAlgorithm>(KeyAlgorithm, ignoreCase: true), null),
            Etcd = Engine.Members.EtcdBinary.Locate("etcd", EtcdPath is null ? null : ResolveLocalPath(EtcdPath)),
            Force = Force,
            AllowNonEmptyPath = AllowNonEmptyPath,
            StartTimeout = StartTimeout,
        };
        if (!ShouldProcess(root, $"Create a {Size}-member TLS cluster '{Name}' (client ports {string.Join(",", clientPorts)}, peer ports {string.Join(",", peerPorts)})")) return;

        // The engine reports from its own threads; progress and warnings are written here, on the pipeline thread.
        var progress = new ProgressRecord(3, $"New-EtcdCluster {Name}", "PKI");
        var events = new System.Collections.Concurrent.BlockingCollection<(bool Warning, string Text)>();
        int steps = 3 + Size * 2, step = 0;
        WarnStrayEnvironment();
        Task<(ClusterRecord Record, string? Leader)> work = Task.Run(() => ClusterBuilder.CreateAsync(plan, t => events.Add((false, t)), t => events.Add((true, t)), CancelToken));
        work.ContinueWith(_ => events.CompleteAdding(), TaskScheduler.Default);
        foreach (var (warning, text) in events.GetConsumingEnumerable())
        {
            if (warning)
            {
                WriteWarning(text);
                continue;
            }

            progress.StatusDescription = text;
            progress.PercentComplete = Math.Min(100, 100 * step++ / steps);
            WriteProgress(progress);
            WriteVerbose(text);
        }

        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
        var (record, leader) = work.GetAwaiter().GetResult();
        WriteObject(EtcdCluster.From(record, leader));
    }

    private int[]? Ports(int[]? given, string parameter)
    {
        if (given is null) return null;
        if (given.Length != Size || given.Any(p => p is < 1 or > 65535))
        {
            throw new EtcdSecureException("InvalidPort", ErrorKind.InvalidArgument, $"{parameter} needs {Size} ports between 1 and 65535, one per member.", parameter);
        }

        return given;
    }

    // All listeners are held until every port is known: one released before the next bind could be handed out twice.
    private static int[] FreePorts(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var l = new TcpListener(IPAddress.Loopback, 0);
                listeners.Add(l);
                l.Start();
            }

            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (TcpListener l in listeners) l.Stop();
        }
    }

}
