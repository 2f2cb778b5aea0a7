using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Net;
using System.Net.Sockets;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;
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

    /// <summary>Replace certificates already in tls/assets.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>How long the cluster may take to elect a leader before it is stopped and the command fails.</summary>
    [Parameter]
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    protected override void Process()
    {
        string root = ResolveLocalPath(Path);
        if (ClusterHost.Find(Name) is { } known && ClusterHost.MembersOf(known).Any(m => !m.HasExited))
        {
            throw new EtcdSecureException("ClusterAlreadyRunning", ErrorKind.ResourceExists, $"A cluster named '{Name}' is running ({known.Path}); stop it or give another -Name.", Name);
        }

        int[] clientPorts = Ports(ClientPort, "-ClientPort");
        int[] peerPorts = Ports(PeerPort, "-PeerPort");
        if (!ShouldProcess(root, $"Create a {Size}-member TLS cluster '{Name}' (client ports {string.Join(",", clientPorts)}, peer ports {string.Join(",", peerPorts)})")) return;

        string assets = System.IO.Path.Combine(root, "tls", "assets");
        var progress = new ProgressRecord(3, $"New-EtcdCluster {Name}", "PKI");
        int steps = 3 + Size * 2, step = 0;
        void Step(string what)
        {
            progress.StatusDescription = what;
            progress.PercentComplete = Math.Min(100, 100 * step++ / steps);
            WriteProgress(progress);
            WriteVerbose(what);
        }

        Step("CA and client certificate (CN root)");
        var ca = (EtcdCertificate)Run("New-EtcdCA", new() { ["Path"] = assets, ["CommonName"] = $"{Name}-ca", ["KeyAlgorithm"] = KeyAlgorithm, ["Force"] = Force.IsPresent });
        var client = (EtcdCertificate)Run("New-EtcdCertificate", new() { ["CA"] = ca, ["Profile"] = "Client", ["CommonName"] = "root", ["Name"] = "root", ["KeyAlgorithm"] = KeyAlgorithm, ["Force"] = Force.IsPresent });

        var names = Enumerable.Range(1, Size).Select(i => $"{Name}-{i}").ToArray();
        var initialCluster = new Hashtable();
        for (int i = 0; i < Size; i++) initialCluster[names[i]] = $"https://127.0.0.1:{peerPorts[i]}";

        var members = new List<EtcdMember>();
        try
        {
            var certs = new List<(EtcdCertificate Server, EtcdCertificate Peer)>();
            for (int i = 0; i < Size; i++)
            {
                Step($"certificates for {names[i]}");
                // As in workflow B: a server certificate (CN etcd-server) and a peer certificate (CN etcd-member) per member.
                string[] hosts = { "localhost", "127.0.0.1", $"{names[i]}.local" };
                var server = (EtcdCertificate)Run("New-EtcdCertificate", new() { ["CA"] = ca, ["Profile"] = "Server", ["CommonName"] = "etcd-server", ["Name"] = $"{names[i]}-server", ["Hosts"] = hosts, ["KeyAlgorithm"] = KeyAlgorithm, ["Force"] = Force.IsPresent });
                var peer = (EtcdCertificate)Run("New-EtcdCertificate", new() { ["CA"] = ca, ["Profile"] = "Peer", ["CommonName"] = "etcd-member", ["Name"] = $"{names[i]}-peer", ["Hosts"] = hosts, ["KeyAlgorithm"] = KeyAlgorithm, ["Force"] = Force.IsPresent });
                certs.Add((server, peer));
            }

            // Workflow B keeps only the PEM files: a CSR is needed again only to re-sign, and New-EtcdCertificate re-creates it.
            foreach (EtcdCertificate cert in certs.SelectMany(c => new[] { c.Server, c.Peer }).Append(ca).Append(client))
            {
                if (cert.CsrPath is { } csr && File.Exists(csr)) File.Delete(csr);
            }

            for (int i = 0; i < Size; i++)
            {
                Step($"starting {names[i]} on https://127.0.0.1:{clientPorts[i]}");
                var p = new Dictionary<string, object?>
                {
                    ["Name"] = names[i],
                    ["ClientUrl"] = new[] { $"https://127.0.0.1:{clientPorts[i]}" },
                    ["PeerUrl"] = new[] { $"https://127.0.0.1:{peerPorts[i]}" },
                    ["InitialCluster"] = initialCluster,
                    ["ClusterToken"] = Name,
                    ["DataDir"] = System.IO.Path.Combine(root, "data", names[i]),
                    ["LogPath"] = System.IO.Path.Combine(root, "logs", names[i] + ".log"),
                    ["Certificate"] = certs[i].Server,
                    ["PeerCertificate"] = certs[i].Peer,
                    ["CA"] = ca,
                    ["StartTimeout"] = StartTimeout,
                };
                if (EtcdPath is not null) p["EtcdPath"] = EtcdPath;
                members.Add((EtcdMember)Run("Start-EtcdMember", p));
            }

            Step("waiting for a leader");
            var endpoints = members.Select(m => m.ClientUrls[0]).ToArray();
            string? leader = WaitForLeader(endpoints, ca, client);
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);

            var record = new ClusterRecord
            {
                Name = Name,
                Path = root,
                Members = members.Select(m => MemberHost.Find(m.Name)!.Spec).ToArray(),
                Endpoints = endpoints,
                CAPath = ca.Path,
                ClientCertificatePath = client.Path,
                ClientKeyPath = client.KeyPath!,
                Created = DateTime.Now,
            };
            ClusterHost.Record(record);
            var cluster = EtcdCluster.From(record, leader);
            WriteObject(cluster);
        }
        catch
        {
            // All or nothing: a cluster that did not come up leaves no member running.
            foreach (EtcdMember m in members)
            {
                try
                {
                    Run("Stop-EtcdMember", new() { ["Name"] = new[] { m.Name } }, expectOutput: false);
                }
                catch (Exception ex) when (ex is PipelineStoppedException or RuntimeException)
                {
                }
            }

            throw;
        }
    }

    private string? WaitForLeader(string[] endpoints, EtcdCertificate ca, EtcdCertificate client)
    {
        var watch = Stopwatch.StartNew();
        EtcdClusterHealth? last = null;
        while (watch.Elapsed < StartTimeout)
        {
            CancelToken.ThrowIfCancellationRequested();
            last = (EtcdClusterHealth)Run("Test-EtcdClusterHealth", new() { ["Endpoint"] = endpoints, ["CA"] = ca, ["Certificate"] = client, ["Summary"] = true, ["Timeout"] = TimeSpan.FromSeconds(2) });
            if (last.Healthy) return last.Leader;
            CancelToken.WaitHandle.WaitOne(200);
        }

        throw new EtcdSecureException("ClusterStartTimeout", ErrorKind.OperationTimeout,
            $"The cluster had no leader within {StartTimeout.TotalSeconds:0} s: {string.Join("; ", last?.Problems ?? Array.Empty<string>())}. Logs: {System.IO.Path.Combine(ResolveLocalPath(Path), "logs")}", Name);
    }

    /// <summary>Runs one of this module's cmdlets in the current runspace, so it validates, writes and errs exactly as it does for a user.</summary>
    private object Run(string command, Dictionary<string, object?> parameters, bool expectOutput = true)
    {
        using var ps = System.Management.Automation.PowerShell.Create(RunspaceMode.CurrentRunspace);
        ps.AddCommand(command).AddParameters(parameters);
        Collection<PSObject> output;
        try
        {
            output = ps.Invoke();
        }
        catch (ActionPreferenceStopException ex)
        {
            ThrowTerminatingError(ex.ErrorRecord);
            throw;
        }
        catch (RuntimeException ex) when (ex.ErrorRecord is { } record && ex is not PipelineStoppedException)
        {
            ThrowTerminatingError(record);
            throw;
        }

        if (ps.HadErrors && ps.Streams.Error.Count > 0) ThrowTerminatingError(ps.Streams.Error[0]);
        foreach (WarningRecord w in ps.Streams.Warning) WriteWarning(w.Message);
        return expectOutput ? output.First().BaseObject : new object();
    }

    private int[] Ports(int[]? given, string parameter)
    {
        if (given is null) return Enumerable.Range(0, Size).Select(_ => FreePort()).ToArray();
        if (given.Length != Size || given.Any(p => p is < 1 or > 65535))
        {
            throw new EtcdSecureException("InvalidPort", ErrorKind.InvalidArgument, $"{parameter} needs {Size} ports between 1 and 65535, one per member.", parameter);
        }

        return given;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

}
