using System;
using System.Collections.Generic;
using System.Linq;

namespace EtcdSecure.Engine.Members;

/// <summary>Paths of one TLS identity: a certificate and its key, as etcd's --cert-file/--key-file take them.</summary>
public sealed record TlsFiles(string CertificatePath, string KeyPath);

/// <summary>Everything an etcd member is started with. URLs are always https: the module has no insecure mode.</summary>
public sealed record MemberSpec
{
    public required string Name { get; init; }
    public required string DataDir { get; init; }
    public required string LogPath { get; init; }
    public required IReadOnlyList<Uri> ListenClientUrls { get; init; }
    public required IReadOnlyList<Uri> AdvertiseClientUrls { get; init; }
    public required IReadOnlyList<Uri> ListenPeerUrls { get; init; }
    public required IReadOnlyList<Uri> AdvertisePeerUrls { get; init; }
    public required string InitialCluster { get; init; }
    public string ClusterToken { get; init; } = "etcd-cluster";
    public bool ExistingCluster { get; init; }
    public required TlsFiles Server { get; init; }
    public required TlsFiles Peer { get; init; }
    public required string TrustedCAPath { get; init; }
    public required string PeerTrustedCAPath { get; init; }

    /// <summary>A CRL of the client CA (--client-crl-file): etcd reads it on every new client connection.</summary>
    public string? ClientCrlPath { get; init; }

    /// <summary>A CRL of the peer CA (--peer-crl-file), read on every new peer connection.</summary>
    public string? PeerCrlPath { get; init; }

    /// <summary>Validates URLs: https only, a port on each, no path; a wildcard listen address needs an explicit advertise URL.</summary>
    public static IReadOnlyList<Uri> ParseUrls(IEnumerable<string> urls, string what)
    {
        var result = new List<Uri>();
        foreach (string raw in urls.SelectMany(u => u.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (!Uri.TryCreate(raw, UriKind.Absolute, out Uri? u) || u.Scheme != "https" || u.IsDefaultPort && !raw.Contains(":443", StringComparison.Ordinal) || u.AbsolutePath != "/")
            {
                throw new EtcdSecureException("InvalidUrl", ErrorKind.InvalidArgument,
                    $"{what} '{raw}' must be an https URL with a port and no path, such as https://127.0.0.1:2379. This module starts members with TLS only.", raw);
            }

            result.Add(u);
        }

        return result.Count > 0 ? result : throw new EtcdSecureException("InvalidUrl", ErrorKind.InvalidArgument, $"{what} needs at least one URL.", what);
    }

    /// <summary>Turns "a=https://h:1,b=https://h:2" or name→URL pairs into etcd's --initial-cluster form.</summary>
    public static string FormatInitialCluster(IEnumerable<KeyValuePair<string, string>> members)
    {
        var parts = new List<string>();
        foreach ((string name, string urls) in members)
        {
            foreach (Uri u in ParseUrls(new[] { urls }, $"The peer URL of member '{name}'")) parts.Add($"{name}={u.GetLeftPart(UriPartial.Authority)}");
        }

        return string.Join(",", parts);
    }

    public static IEnumerable<KeyValuePair<string, string>> ParseInitialCluster(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p =>
        {
            int eq = p.IndexOf('=');
            return eq > 0
                ? new KeyValuePair<string, string>(p[..eq], p[(eq + 1)..])
                : throw new EtcdSecureException("InvalidInitialCluster", ErrorKind.InvalidArgument, $"'{p}' in the initial cluster is not NAME=URL.", text);
        });
}
