using System;
using System.Collections.Generic;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.Engine.Relay;

public enum ProxyLogLevel
{
    Verbose,
    Information,
    Warning,
}

/// <summary>Everything a proxy is started with.</summary>
public sealed class ProxyOptions
{
    public string Name { get; init; } = "proxy";
    public required Uri Listen { get; init; }

    /// <summary>The certificate and key the proxy serves to clients.</summary>
    public required TlsFiles Server { get; init; }

    /// <summary>Client certificates must chain to a CA in this file; null accepts clients without a certificate.</summary>
    public string? ClientCAPath { get; init; }

    /// <summary>CRL files (PEM or DER) signed by a client CA; a client whose certificate they list is refused as Revoked.</summary>
    public IReadOnlyList<string> CrlPaths { get; init; } = Array.Empty<string>();

    /// <summary>When given, a client certificate must also have a common name or SAN that one of these wildcards matches.</summary>
    public IReadOnlyList<string> AllowedClients { get; init; } = Array.Empty<string>();

    /// <summary>The cipher suites offered on both sides; null for <see cref="Tls.TlsPolicy.DefaultCipherSuites"/>.</summary>
    public IReadOnlyList<System.Net.Security.TlsCipherSuite>? CipherSuites { get; init; }

    /// <summary>
    /// The certificate the proxy presents to the members for its own checks (probes, MemberList), and, without
    /// <see cref="IdentityPath"/>, for every client: then etcd sees every client as this certificate's user.
    /// </summary>
    public required TlsFiles Upstream { get; init; }
    public required string UpstreamCAPath { get; init; }

    /// <summary>
    /// A folder of upstream identities, USER.pem and USER-key.pem: a client whose certificate's common name is USER
    /// reaches etcd as USER. Null: every client reaches etcd as <see cref="Upstream"/>'s user (single identity).
    /// </summary>
    public string? IdentityPath { get; init; }

    /// <summary>With <see cref="IdentityPath"/>: the user a client without an identity of its own reaches etcd as; null refuses such a client.</summary>
    public string? FallbackIdentity { get; init; }

    /// <summary>Members' client URLs; when empty, members are discovered from <see cref="PeerUrls"/>.</summary>
    public IReadOnlyList<Uri> Endpoints { get; init; } = Array.Empty<Uri>();
    public IReadOnlyList<Uri> PeerUrls { get; init; } = Array.Empty<Uri>();

    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan HealthCheckInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A connection with no traffic either way for this long is closed; zero keeps idle connections (etcd watches may be quiet for hours).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.Zero;

    /// <summary>Relayed (authenticated) connections at once; a client past this is refused after its handshake.</summary>
    public int MaxConnections { get; init; } = 20_000;

    /// <summary>Connections still in their handshake at once; when full, the oldest is dropped for the newcomer.</summary>
    public int MaxPendingHandshakes { get; init; } = 1024;

    /// <summary>Connections in their handshake at once from one source address (one /64 for IPv6).</summary>
    public int MaxPendingPerAddress { get; init; } = 128;

    /// <summary>TCP keepalive on both sides: idle time before the first probe; zero turns it off.</summary>
    public TimeSpan TcpKeepAlive { get; init; } = TimeSpan.FromSeconds(30);
}
