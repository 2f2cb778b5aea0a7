using System;
using System.Collections.Generic;
using System.Linq;
using EtcdSecure.Engine.Health;

namespace EtcdSecure.Engine.Relay;

/// <summary>A proxy's counters at one moment, as plain data: what Get-EtcdProxy shows, in this process or over a detached proxy's control socket.</summary>
public sealed record ProxyStats
{
    public int ActiveConnections { get; init; }
    public int RelayedConnections { get; init; }
    public int PendingHandshakes { get; init; }
    public int WaitingHandshakes { get; init; }
    public string? UpstreamIdentity { get; init; }
    public long TotalConnections { get; init; }
    public long BytesFromClients { get; init; }
    public long BytesToClients { get; init; }
    public SortedDictionary<string, long> Refused { get; init; } = new(StringComparer.Ordinal);
    public IReadOnlyList<MemberStats> Members { get; init; } = Array.Empty<MemberStats>();
    public int CertificateReloads { get; init; }
    public string? ReloadError { get; init; }
    public int? RevokedCertificates { get; init; }
    public long BufferedBytes { get; init; }
    public string? TlsBufferRelease { get; init; }
    public string? TlsServerContext { get; init; }
    public string? TlsUpstreamContext { get; init; }
    public long TlsBuffersReleased { get; init; }
    public long TlsIdleFrees { get; init; }
    public string? RelayDirect { get; init; }
    public long DirectRelays { get; init; }
    public int EventLoops { get; init; }
    public string? ClientCAPath { get; init; }
    public DateTime StartTime { get; init; }

    public static ProxyStats Of(EtcdProxy p) => new()
    {
        ActiveConnections = p.Active,
        RelayedConnections = p.Relayed,
        PendingHandshakes = p.PendingHandshakes,
        WaitingHandshakes = p.WaitingHandshakes,
        UpstreamIdentity = p.UpstreamIdentity,
        TotalConnections = p.Total,
        BytesFromClients = p.BytesFromClients,
        BytesToClients = p.BytesToClients,
        Refused = new SortedDictionary<string, long>(p.Rejected.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal),
        Members = p.Pool.Members.Select(MemberStats.Of).ToArray(),
        CertificateReloads = p.CertificateReloads,
        ReloadError = p.ReloadError,
        RevokedCertificates = p.RevokedCertificates,
        BufferedBytes = p.BufferedBytes,
        TlsBufferRelease = p.TlsBufferRelease,
        TlsServerContext = p.TlsServerContext,
        TlsUpstreamContext = p.TlsUpstreamContext,
        TlsBuffersReleased = p.TlsBuffersReleased,
        TlsIdleFrees = p.TlsIdleFrees,
        RelayDirect = p.RelayDirect,
        DirectRelays = p.DirectRelays,
        EventLoops = p.EventLoops,
        ClientCAPath = p.Options.ClientCAPath,
        StartTime = p.StartTime,
    };
}

/// <summary>One member behind a proxy, as plain data.</summary>
public sealed record MemberStats
{
    public string? Name { get; init; }
    public string? Id { get; init; }
    public string Url { get; init; } = "";
    public bool Alive { get; init; }
    public int ActiveConnections { get; init; }
    public long TotalConnections { get; init; }
    public long Failures { get; init; }
    public string? LastError { get; init; }
    public DateTime Since { get; init; }

    public static MemberStats Of(Upstream u) => new()
    {
        Name = u.Name,
        Id = u.Id is { } id ? ClusterMember.FormatId(id) : null,
        Url = u.Url.GetLeftPart(UriPartial.Authority),
        Alive = u.Alive,
        ActiveConnections = u.Active,
        TotalConnections = u.Total,
        Failures = u.Failures,
        LastError = u.Alive ? null : u.LastError,
        Since = u.Since,
    };
}
