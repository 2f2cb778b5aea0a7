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

    /// <summary>Client certificates must chain to this CA; null accepts clients without a certificate.</summary>
    public string? ClientCAPath { get; init; }

    /// <summary>The certificate the proxy presents to the members, and the CA their certificates must chain to.</summary>
    public required TlsFiles Upstream { get; init; }
    public required string UpstreamCAPath { get; init; }

    /// <summary>Members' client URLs; when empty, members are discovered from <see cref="PeerUrls"/>.</summary>
    public IReadOnlyList<Uri> Endpoints { get; init; } = Array.Empty<Uri>();
    public IReadOnlyList<Uri> PeerUrls { get; init; } = Array.Empty<Uri>();

    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan HealthCheckInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A connection with no traffic either way for this long is closed; zero keeps idle connections (etcd watches may be quiet for hours).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.Zero;
    public int MaxConnections { get; init; } = 20_000;
}
