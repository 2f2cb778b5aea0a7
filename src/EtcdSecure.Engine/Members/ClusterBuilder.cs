using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Health;
using EtcdSecure.Engine.Pki;
using EtcdSecure.Engine.State;

namespace EtcdSecure.Engine.Members;

/// <summary>What New-EtcdCluster makes: reference workflow B's layout under <see cref="Root"/>.</summary>
public sealed record ClusterPlan
{
    public required string Name { get; init; }
    public required string Root { get; init; }
    public required IReadOnlyList<int> ClientPorts { get; init; }
    public required IReadOnlyList<int> PeerPorts { get; init; }
    public required KeySpec Key { get; init; }
    public required EtcdBinaryInfo Etcd { get; init; }
    public bool Force { get; init; }

    /// <summary>Make the cluster in a folder that holds other files too (they are never touched, nor removed with it).</summary>
    public bool AllowNonEmptyPath { get; init; }
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public int Size => ClientPorts.Count;
    public string Assets => Path.Combine(Root, "tls", "assets");
    public IReadOnlyList<string> MemberNames => Enumerable.Range(1, Size).Select(i => $"{Name}-{i}").ToArray();
    public string DataDirOf(string member) => Path.Combine(Root, "data", member);

    /// <summary>The folders a cluster is made of under its root: all that Remove-EtcdCluster deletes.</summary>
    public static readonly IReadOnlyList<string> Owned = new[] { "tls", "logs", "data" };
}

/// <summary>
/// Reference workflow B in one step: a CA, a client certificate (CN root), a server and a peer certificate per
/// member, the members started with client and peer certificate authentication, a leader awaited, and the cluster
/// recorded for every session. All or nothing: a cluster that does not come up leaves no member running.
/// </summary>
public static class ClusterBuilder
{
    public static async Task<(ClusterRecord Record, string? Leader)> CreateAsync(ClusterPlan plan, Action<string> step, Action<string> warn, CancellationToken cancel)
    {
        if (ClusterHost.Find(plan.Name) is { } known && ClusterHost.MembersOf(known).Any(m => !m.HasExited))
        {
            throw new EtcdSecureException("ClusterAlreadyRunning", ErrorKind.ResourceExists, $"A cluster named '{plan.Name}' is running ({known.Path}); stop it or give another -Name.", plan.Name);
        }

        // A folder with other files in it (a repository, a home) is refused unless the user says so: the cluster's
        // files would sit among them, and its removal must never be mistaken for the folder's.
        if (Directory.Exists(plan.Root) && !plan.AllowNonEmptyPath
            && Directory.EnumerateFileSystemEntries(plan.Root).Select(Path.GetFileName).Where(n => !ClusterPlan.Owned.Contains(n)).Take(3).ToList() is { Count: > 0 } foreign)
        {
            throw new EtcdSecureException("PathNotEmpty", ErrorKind.ResourceExists,
                $"'{plan.Root}' holds files this module did not make ({string.Join(", ", foreign)}...). New-EtcdCluster writes tls/, logs/ and data/ there, and Remove-EtcdCluster deletes those alone: give -AllowNonEmptyPath to use this folder anyway, or name an empty or new one.", plan.Root);
        }

        // etcd starts a member on a data directory as what that directory says (its cluster, its peers' URLs), not as
        // the flags given now: a new cluster never comes up on an earlier one's data, and would only time out.
        string[] earlier = plan.MemberNames.Select(plan.DataDirOf).Where(d => Directory.Exists(Path.Combine(d, "member"))).ToArray();
        if (earlier.Length > 0 && !plan.Force)
        {
            string more = earlier.Length > 1 ? $" (and {earlier.Length - 1} more)" : "";
            throw new EtcdSecureException("ClusterDataExists", ErrorKind.ResourceExists,
                $"'{earlier[0]}'{more} holds the data of an earlier etcd member, which etcd would start as that member of its old cluster. Remove-EtcdCluster removes an earlier cluster with its data; -Force replaces the data (it is lost).", earlier[0]);
        }

        // Nothing is written unless every file may be and every port is free: no CA replaced while a member's
        // certificate would then fail, and no PKI left behind by a start that could never have listened.
        string[] names = new[] { "ca", "peer-ca", "root" }.Concat(plan.MemberNames.SelectMany(n => new[] { $"{n}-server", $"{n}-peer" })).ToArray();
        PemFileSet.EnsureWritable(names.SelectMany(n => BareFileNames.For(plan.Assets, n).All), plan.Force);
        for (int i = 0; i < plan.Size; i++)
        {
            MemberPreflight.CheckPorts(plan.MemberNames[i], new[] { new Uri($"https://127.0.0.1:{plan.ClientPorts[i]}"), new Uri($"https://127.0.0.1:{plan.PeerPorts[i]}") });
        }

        // A cluster that does not come up takes back what this call made (its files, folders and members' data), so
        // the next attempt starts from where this one did; what was there before is left as it was.
        var made = MadeFiles.Watch(plan.Root, ClusterPlan.Owned.ToArray());
        try
        {
            return await BuildAsync(plan, earlier, step, warn, cancel).ConfigureAwait(false);
        }
        catch (EtcdSecureException ex)
        {
            made.TakeBack();
            throw new EtcdSecureException(ex.ErrorId, ex.Kind, ex.Message + $" Nothing this command wrote under '{plan.Root}' was kept.", ex.Target, ex);
        }
        catch
        {
            made.TakeBack();
            throw;
        }
    }

    private static async Task<(ClusterRecord Record, string? Leader)> BuildAsync(ClusterPlan plan, string[] earlier, Action<string> step, Action<string> warn, CancellationToken cancel)
    {
        DateTime now = DateTime.UtcNow;
        step("CAs and client certificate (CN root)");
        // Two CAs keep identities apart: the client CA issues the members' server certificates and the clients'
        // ones, the peer CA only the peer certificates, so no client certificate can open a raft connection.
        IssuerCredentials issuer = NewCA(plan, "ca", $"{plan.Name}-ca", now, warn);
        IssuerCredentials peerIssuer = NewCA(plan, "peer-ca", $"{plan.Name}-peer-ca", now, warn);
        BareFileNames client = Issue(plan, "root", "root", "Client", Array.Empty<string>(), issuer, now, warn);

        var specs = new List<MemberSpec>();
        string initialCluster = MemberSpec.FormatInitialCluster(plan.MemberNames.Select((n, i) => new KeyValuePair<string, string>(n, $"https://127.0.0.1:{plan.PeerPorts[i]}")));
        for (int i = 0; i < plan.Size; i++)
        {
            string name = plan.MemberNames[i];
            step($"certificates for {name}");
            // As in workflow B: a server certificate (CN etcd-server) and a peer certificate (CN etcd-member) per member.
            string[] hosts = { "localhost", "127.0.0.1", $"{name}.local" };
            BareFileNames server = Issue(plan, $"{name}-server", "etcd-server", "Server", hosts, issuer, now, warn);
            BareFileNames peer = Issue(plan, $"{name}-peer", "etcd-member", "Peer", hosts, peerIssuer, now, warn);
            var client1 = new[] { new Uri($"https://127.0.0.1:{plan.ClientPorts[i]}") };
            var peer1 = new[] { new Uri($"https://127.0.0.1:{plan.PeerPorts[i]}") };
            specs.Add(new MemberSpec
            {
                Name = name,
                DataDir = plan.DataDirOf(name),
                LogPath = Path.Combine(plan.Root, "logs", name + ".log"),
                ListenClientUrls = client1,
                AdvertiseClientUrls = client1,
                ListenPeerUrls = peer1,
                AdvertisePeerUrls = peer1,
                InitialCluster = initialCluster,
                ClusterToken = plan.Name,
                Server = new TlsFiles(server.Certificate, server.Key),
                Peer = new TlsFiles(peer.Certificate, peer.Key),
                TrustedCAPath = issuer.CertificatePath,
                PeerTrustedCAPath = peerIssuer.CertificatePath,
                ClientCrlPath = CertificateLedger.CrlPathOf(issuer.CertificatePath),
                PeerCrlPath = CertificateLedger.CrlPathOf(peerIssuer.CertificatePath),
            });
        }

        // Workflow B keeps only the PEM files: a CSR is needed again only to re-sign, and New-EtcdCertificate re-creates it.
        foreach (string csr in Directory.EnumerateFiles(plan.Assets, "*.csr")) File.Delete(csr);

        // Only now, with every certificate in place: -Force replaces an earlier cluster's data.
        foreach (string dir in earlier)
        {
            Directory.Delete(dir, recursive: true);
            warn($"Deleted the data of an earlier member in '{dir}' (-Force).");
        }

        var started = new List<RunningMember>();
        try
        {
            foreach (MemberSpec spec in specs)
            {
                step($"starting {spec.Name} on {spec.AdvertiseClientUrls[0].GetLeftPart(UriPartial.Authority)}");
                started.Add(await MemberHost.StartAsync(spec, plan.Etcd, plan.StartTimeout, cancel).ConfigureAwait(false));
            }

            step("waiting for a leader");
            var endpoints = specs.Select(s => s.AdvertiseClientUrls[0]).ToArray();
            string? leader = await WaitForLeaderAsync(plan, endpoints, TlsClientIdentity.Load(issuer.CertificatePath, client.Certificate, client.Key), cancel).ConfigureAwait(false);
            var record = new ClusterRecord
            {
                Name = plan.Name,
                Path = plan.Root,
                Members = specs,
                Endpoints = endpoints.Select(e => e.GetLeftPart(UriPartial.Authority)).ToArray(),
                CAPath = issuer.CertificatePath,
                PeerCAPath = peerIssuer.CertificatePath,
                ClientCertificatePath = client.Certificate,
                ClientKeyPath = client.Key,
                Created = DateTime.Now,
            };
            ClusterHost.Record(record);
            return (record, leader);
        }
        catch
        {
            // All or nothing: no member of a cluster that did not come up is left running, nor recorded (a member
            // that exited while starting keeps its record otherwise, for Get-EtcdMember to show why).
            foreach (RunningMember m in started) await MemberHost.StopAsync(m, TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
            foreach (MemberSpec spec in specs)
            {
                if (MemberHost.Find(spec.Name) is { HasExited: true } m && m.Spec.DataDir == spec.DataDir) StateStore.Current.Remove(MemberRecord.Kind, spec.Name);
            }

            throw;
        }
    }

    private static async Task<string?> WaitForLeaderAsync(ClusterPlan plan, IReadOnlyList<Uri> endpoints, TlsClientIdentity identity, CancellationToken cancel)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        ClusterVerdict? last = null;
        while (watch.Elapsed < plan.StartTimeout)
        {
            last = ClusterVerdict.Of(await ClusterHealth.CheckAsync(new HealthQuery { Endpoints = endpoints, Identity = identity, Timeout = TimeSpan.FromSeconds(2) }, cancel).ConfigureAwait(false));
            if (last.Healthy) return last.Leader;
            await Task.Delay(200, cancel).ConfigureAwait(false);
        }

        throw new EtcdSecureException("ClusterStartTimeout", ErrorKind.OperationTimeout,
            $"The cluster had no leader within {plan.StartTimeout.TotalSeconds:0} s: {string.Join("; ", last?.Problems ?? Array.Empty<string>())}. Logs: {Path.Combine(plan.Root, "logs")}", plan.Name);
    }

    /// <summary>A new CA with an empty ledger and an empty CRL, which the members read from their first connection on.</summary>
    private static IssuerCredentials NewCA(ClusterPlan plan, string fileName, string commonName, DateTime now, Action<string> warn)
    {
        BareFileNames files = Write(plan, fileName, CertificateIssuer.CreateCertificateAuthority(new SubjectName(commonName), Array.Empty<HostName>(), plan.Key, SigningConfig.CAExpiry, null, now), warn);
        // A ledger left by a CA this one replaced (-Force) lists certificates this CA never issued.
        CertificateLedger.ForgetReplaced(files.Certificate);
        IssuerCredentials issuer = IssuerCredentials.Load(files.Certificate, files.Key, now);
        CertificateLedger.WriteCrl(issuer, now, CertificateLedger.DefaultCrlValidity);
        return issuer;
    }

    private static BareFileNames Issue(ClusterPlan plan, string fileName, string commonName, string profile, IReadOnlyList<string> hosts, IssuerCredentials issuer, DateTime now, Action<string> warn)
    {
        IssuedCertificate issued = CertificateIssuer.Issue(new SubjectName(commonName), Hosts.Parse(hosts), plan.Key, SigningConfig.BuiltInOnly.Resolve(profile), null, issuer, now);
        BareFileNames files = Write(plan, fileName, issued, warn);
        CertificateLedger.Record(issuer.CertificatePath, issued.Certificate, files.Certificate, profile, now);
        return files;
    }

    private static BareFileNames Write(ClusterPlan plan, string fileName, IssuedCertificate issued, Action<string> warn)
    {
        BareFileNames files = BareFileNames.For(plan.Assets, fileName);
        PemFileSet.Write(files, issued, plan.Force);
        foreach (string w in issued.Warnings) warn(w);
        return files;
    }
}
