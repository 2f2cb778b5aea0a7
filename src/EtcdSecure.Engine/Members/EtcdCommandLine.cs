using System.Collections.Generic;
using System.Linq;

namespace EtcdSecure.Engine.Members;

/// <summary>The etcd flags for a member, chosen for the installed etcd version.</summary>
public static class EtcdCommandLine
{
    public static IReadOnlyList<string> Build(MemberSpec s, EtcdBinaryInfo etcd)
    {
        static string Urls(IEnumerable<System.Uri> urls) => string.Join(",", urls.Select(u => u.GetLeftPart(System.UriPartial.Authority)));
        var a = new List<string>
        {
            "--name", s.Name,
            "--data-dir", s.DataDir,
            "--listen-client-urls", Urls(s.ListenClientUrls),
            "--advertise-client-urls", Urls(s.AdvertiseClientUrls),
            "--listen-peer-urls", Urls(s.ListenPeerUrls),
            "--initial-advertise-peer-urls", Urls(s.AdvertisePeerUrls),
            "--initial-cluster", s.InitialCluster,
            "--initial-cluster-token", s.ClusterToken,
            "--initial-cluster-state", s.ExistingCluster ? "existing" : "new",
            "--cert-file", s.Server.CertificatePath,
            "--key-file", s.Server.KeyPath,
            "--trusted-ca-file", s.TrustedCAPath,
            "--client-cert-auth",
            "--peer-cert-file", s.Peer.CertificatePath,
            "--peer-key-file", s.Peer.KeyPath,
            "--peer-trusted-ca-file", s.PeerTrustedCAPath,
            "--peer-client-cert-auth",
        };

        if (s.ClientCrlPath is not null) a.AddRange(new[] { "--client-crl-file", s.ClientCrlPath });
        if (s.PeerCrlPath is not null) a.AddRange(new[] { "--peer-crl-file", s.PeerCrlPath });

        // Only flags this etcd knows: an unknown flag makes etcd exit at once (PITFALLS.md, item 8).
        if (etcd.SupportsTlsMinVersion) a.AddRange(new[] { "--tls-min-version", "TLS1.2" });
        a.AddRange(new[] { "--cipher-suites", string.Join(",", EtcdBinaryInfo.CipherSuites) });
        if (etcd.NeedsLoggerZapFlag) a.AddRange(new[] { "--logger", "zap" });
        return a;
    }

    /// <summary>The command line as a user would paste it into a shell.</summary>
    public static string Quote(string exe, IEnumerable<string> args) =>
        string.Join(" ", new[] { exe }.Concat(args).Select(x => x.Length > 0 && x.All(c => char.IsLetterOrDigit(c) || "-_./:=,@".Contains(c)) ? x : "'" + x.Replace("'", "'\\''") + "'"));
}
