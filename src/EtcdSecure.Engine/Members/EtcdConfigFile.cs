using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace EtcdSecure.Engine.Members;

/// <summary>
/// The same member as <see cref="EtcdCommandLine"/>, as an etcd YAML config file (--config-file) for deployments on
/// real hosts. Keys follow etcd's embed.Config; the TLS flags live in the two transport-security sections.
/// </summary>
public static class EtcdConfigFile
{
    public static string Render(MemberSpec s, EtcdBinaryInfo etcd)
    {
        static string Urls(IEnumerable<Uri> urls) => string.Join(",", urls.Select(u => u.GetLeftPart(UriPartial.Authority)));
        var y = new StringBuilder();
        y.AppendLine($"# etcd {etcd.Version.ToString(3)} member '{s.Name}', written by EtcdSecure {typeof(EtcdConfigFile).Assembly.GetName().Version?.ToString(3)}.");
        y.AppendLine("# Client and peer traffic are TLS only, and both sides must present certificates from the trusted CA.");
        Line(y, "name", s.Name);
        Line(y, "data-dir", s.DataDir);
        Line(y, "listen-client-urls", Urls(s.ListenClientUrls));
        Line(y, "advertise-client-urls", Urls(s.AdvertiseClientUrls));
        Line(y, "listen-peer-urls", Urls(s.ListenPeerUrls));
        Line(y, "initial-advertise-peer-urls", Urls(s.AdvertisePeerUrls));
        Line(y, "initial-cluster", s.InitialCluster);
        Line(y, "initial-cluster-token", s.ClusterToken);
        Line(y, "initial-cluster-state", s.ExistingCluster ? "existing" : "new");
        Section(y, "client-transport-security", s.Server, s.TrustedCAPath);
        Section(y, "peer-transport-security", s.Peer, s.PeerTrustedCAPath);
        if (etcd.SupportsTlsMinVersion) Line(y, "tls-min-version", "TLS1.2");
        y.Append("cipher-suites: [").Append(string.Join(", ", EtcdBinaryInfo.CipherSuites.Select(c => "'" + c + "'"))).AppendLine("]");
        if (etcd.NeedsLoggerZapFlag) Line(y, "logger", "zap");
        return y.ToString();
    }

    private static void Section(StringBuilder y, string name, TlsFiles files, string ca)
    {
        y.AppendLine(name + ":");
        Line(y, "  cert-file", files.CertificatePath);
        Line(y, "  key-file", files.KeyPath);
        Line(y, "  trusted-ca-file", ca);
        y.AppendLine("  client-cert-auth: true");
        y.AppendLine("  auto-tls: false");
    }

    // Single-quoted YAML scalars: no escapes are interpreted, so paths with ':' or '#' stay exactly as they are.
    private static void Line(StringBuilder y, string key, string value) => y.Append(key).Append(": '").Append(value.Replace("'", "''")).AppendLine("'");
}
