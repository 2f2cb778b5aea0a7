using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.Engine.Members;

/// <summary>
/// What would make etcd fail later with an obscure message, checked before it starts (PITFALLS.md): certificates
/// without the usages or SANs the URLs need, keys that do not match, ports in use, a data dir in use.
/// </summary>
public static class MemberPreflight
{
    public static void Check(MemberSpec s)
    {
        var names = MemberSpec.ParseInitialCluster(s.InitialCluster).ToList();
        var own = names.Where(n => n.Key == s.Name).Select(n => new Uri(n.Value).GetLeftPart(UriPartial.Authority)).ToHashSet();
        if (own.Count == 0)
        {
            throw new EtcdSecureException("NameNotInInitialCluster", ErrorKind.InvalidArgument,
                $"Member '{s.Name}' is not in the initial cluster ({s.InitialCluster}); etcd would stop with \"couldn't find local name\".", s.InitialCluster);
        }

        var missing = s.AdvertisePeerUrls.Select(u => u.GetLeftPart(UriPartial.Authority)).Where(u => !own.Contains(u)).ToList();
        if (missing.Count > 0)
        {
            throw new EtcdSecureException("PeerUrlNotInInitialCluster", ErrorKind.InvalidArgument,
                $"The advertised peer URL {string.Join(", ", missing)} of '{s.Name}' is not its entry in the initial cluster ({s.InitialCluster}); etcd would refuse to start.", s.InitialCluster);
        }

        CheckCertificates(s);
        CheckPorts(s.Name, s.ListenClientUrls.Concat(s.ListenPeerUrls));

        string dataDir = Path.GetFullPath(s.DataDir);
        if (EtcdProcesses.FindByDataDir(dataDir) is int pid)
        {
            throw new EtcdSecureException("DataDirInUse", ErrorKind.ResourceUnavailable,
                $"The data dir '{dataDir}' is used by the running etcd process {pid}; two members cannot share one data dir.", dataDir);
        }
    }

    /// <summary>Refuses (PortInUse) a URL whose port something on this machine already holds.</summary>
    public static void CheckPorts(string member, IEnumerable<Uri> urls)
    {
        foreach (Uri u in urls)
        {
            if (PortInUse(u))
            {
                throw new EtcdSecureException("PortInUse", ErrorKind.ResourceUnavailable,
                    $"{u.Host}:{u.Port} ({u}) is already in use, so member '{member}' could not listen there. Pick another port or stop what holds it.", u.ToString());
            }
        }
    }

    /// <summary>The member's certificates, CAs and CRLs, without touching ports: what a restart checks before it stops anything.</summary>
    public static void CheckCertificates(MemberSpec s)
    {
        var reasons = new List<string>();
        reasons.AddRange(CertificateValidator.Test(new CertificateCheck(s.Server.CertificatePath, s.Server.KeyPath, s.TrustedCAPath, null, CertificateRole.Server, HostsOf(s.AdvertiseClientUrls.Concat(s.ListenClientUrls)))).Reasons);
        reasons.AddRange(CertificateValidator.Test(new CertificateCheck(s.Peer.CertificatePath, s.Peer.KeyPath, s.PeerTrustedCAPath, null, CertificateRole.Peer, HostsOf(s.AdvertisePeerUrls.Concat(s.ListenPeerUrls)))).Reasons);
        if (reasons.Count > 0)
        {
            throw new EtcdSecureException("MemberCertificateInvalid", ErrorKind.InvalidData,
                $"Member '{s.Name}' would not work with these certificates:{Environment.NewLine}- " + string.Join(Environment.NewLine + "- ", reasons.Distinct()),
                s.Server.CertificatePath);
        }

        // etcd refuses every handshake when its CRL file is missing or unreadable: a bad CRL is found here instead.
        CheckCrl(s.ClientCrlPath, s.TrustedCAPath, "-CrlPath");
        CheckCrl(s.PeerCrlPath, s.PeerTrustedCAPath, "-PeerCrlPath");
    }

    private static void CheckCrl(string? crl, string ca, string parameter)
    {
        if (crl is null) return;
        if (!File.Exists(crl))
        {
            throw new EtcdSecureException("CrlNotFound", ErrorKind.ObjectNotFound, $"The CRL '{crl}' ({parameter}) does not exist; etcd would refuse every connection. Update-EtcdCrl writes one.", crl);
        }

        Tls.RevocationList.Load(new[] { crl }, Tls.TrustedCAs.Load(ca));
    }

    /// <summary>Hosts a certificate must cover for these URLs. Wildcard listen addresses are served under other names, checked via the advertise URLs.</summary>
    internal static IReadOnlyList<HostName> HostsOf(IEnumerable<Uri> urls) =>
        urls.Select(u => u.DialHost())
            .Where(h => h is not "0.0.0.0" and not "::")
            .Distinct()
            .Select(Pki.Hosts.ParseOne)
            .ToList();

    private static bool PortInUse(Uri u)
    {
        IPAddress[] addresses = IPAddress.TryParse(u.DialHost(), out IPAddress? ip) ? new[] { ip } : SafeResolve(u.IdnHost);
        foreach (IPAddress a in addresses)
        {
            try
            {
                using var s = new Socket(a.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                s.Bind(new IPEndPoint(a, u.Port));
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                return true;
            }
            catch (SocketException)
            {
                // Not bindable for another reason (an address of another host): etcd will say so itself.
            }
        }

        return false;
    }

    private static IPAddress[] SafeResolve(string host)
    {
        try
        {
            return Dns.GetHostAddresses(host);
        }
        catch (SocketException)
        {
            return Array.Empty<IPAddress>();
        }
    }
}

/// <summary>etcd processes on this machine, read from /proc (Linux), to find one that holds a data dir.</summary>
public static class EtcdProcesses
{
    public static int? FindByDataDir(string dataDir)
    {
        if (!OperatingSystem.IsLinux()) return null;
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            string[] args;
            try
            {
                args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            if (args.Length == 0 || Path.GetFileName(args[0]) != "etcd") continue;
            for (int i = 0; i < args.Length; i++)
            {
                string? value = args[i] == "--data-dir" && i + 1 < args.Length ? args[i + 1]
                    : args[i].StartsWith("--data-dir=", StringComparison.Ordinal) ? args[i]["--data-dir=".Length..] : null;
                if (value is not null && SamePath(value, dataDir, pid)) return pid;
            }
        }

        return null;
    }

    private static bool SamePath(string value, string dataDir, int pid)
    {
        string full = Path.IsPathRooted(value) ? value : Path.Combine(CwdOf(pid) ?? "/", value);
        return string.Equals(Path.GetFullPath(full).TrimEnd('/'), dataDir.TrimEnd('/'), StringComparison.Ordinal);
    }

    private static string? CwdOf(int pid)
    {
        try
        {
            return new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
