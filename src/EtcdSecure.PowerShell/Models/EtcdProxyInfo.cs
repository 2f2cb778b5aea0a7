using System;
using System.Collections.Specialized;
using System.Linq;
using EtcdSecure.Engine.Health;
using EtcdSecure.Engine.Relay;
using EtcdSecure.PowerShell;

namespace EtcdSecure;

/// <summary>A proxy's state and live counters, as Start-EtcdProxy and Get-EtcdProxy return them.</summary>
public sealed class EtcdProxyInfo
{
    public string Name { get; init; } = "";
    public string State { get; init; } = "";
    /// <summary>The URL clients dial (binds to -Endpoint of Test-EtcdClusterHealth on the pipeline).</summary>
    public string Endpoint { get; init; } = "";
    public int ActiveConnections { get; init; }
    /// <summary>Client connections that passed authentication and are relayed (what -MaxConnections counts).</summary>
    public int RelayedConnections { get; init; }
    /// <summary>Client connections still in their TLS handshake (what -MaxPendingHandshakes counts).</summary>
    public int PendingHandshakes { get; init; }
    public long TotalConnections { get; init; }
    public long BytesFromClients { get; init; }
    public long BytesToClients { get; init; }
    public long RefusedConnections { get; init; }
    /// <summary>
    /// Refused or failed connections by reason: NoClientCertificate, UntrustedClientCertificate, ClientNotAllowed,
    /// Revoked, PendingLimit, PendingPerAddressLimit, MaxConnections, PlainHttp, NotTls, HandshakeTimeout,
    /// TlsHandshakeFailed, NoLiveMember, RoutedMemberDown, IdleTimeout.
    /// </summary>
    public OrderedDictionary Refused { get; init; } = new();
    public EtcdProxyMember[] Members { get; init; } = Array.Empty<EtcdProxyMember>();
    public int CertificateReloads { get; init; }
    /// <summary>Why changed certificate or CRL files are not in use (the last good ones still are); empty when all loaded.</summary>
    public string? ReloadError { get; init; }
    /// <summary>Serial numbers the client CRLs revoke; empty without -CrlPath.</summary>
    public int? RevokedCertificates { get; init; }
    /// <summary>Bytes the relay holds for peers that read slower than the other side sends (at most 64 KiB per direction of a connection).</summary>
    public long BufferedBytes { get; init; }
    /// <summary>"on", or why idle connections keep OpenSSL's buffers (runtime layout, OpenSSL version, switch).</summary>
    public string? TlsBufferRelease { get; init; }
    /// <summary>Log records the job dropped (it keeps the newest 1,000 per stream).</summary>
    public long LogRecordsDropped { get; init; }
    /// <summary>
    /// TLS sides, two per relayed connection, that free OpenSSL's record buffers while idle (about 34 KiB each).
    /// Zero when this runtime does not allow it; the proxy's log says why.
    /// </summary>
    public long TlsBuffersReleased { get; init; }
    /// <summary>
    /// Times a relayed connection fell idle and gave OpenSSL's buffers back, including the read buffer that OpenSSL
    /// itself keeps after a record without application data (a late TLS 1.3 session ticket, say). Zero without the
    /// relay's own event loops or with ETCDSECURE_TLS_KEEP_BUFFERS=1.
    /// </summary>
    public long TlsIdleFrees { get; init; }
    /// <summary>
    /// Threads running the relay's own epoll loops (one per core); 0 when connections go through .NET's socket
    /// engine instead (not Linux, or ETCDSECURE_PROXY_EVENT_LOOP=0), and the proxy's log says why.
    /// </summary>
    public int EventLoops { get; init; }
    public string? ClientCAPath { get; init; }
    public DateTime StartTime { get; init; }
    public int JobId { get; init; }

    internal static EtcdProxyInfo From(EtcdProxyJob job)
    {
        EtcdProxy? p = job.Proxy;
        var refused = new OrderedDictionary();
        if (p is not null)
        {
            foreach (var kv in p.Rejected) refused[kv.Key] = kv.Value;
        }

        return new EtcdProxyInfo
        {
            Name = job.Name,
            State = job.JobStateInfo.State.ToString(),
            Endpoint = job.Endpoint,
            ActiveConnections = p?.Active ?? 0,
            RelayedConnections = p?.Relayed ?? 0,
            PendingHandshakes = p?.PendingHandshakes ?? 0,
            TotalConnections = p?.Total ?? 0,
            BytesFromClients = p?.BytesFromClients ?? 0,
            BytesToClients = p?.BytesToClients ?? 0,
            RefusedConnections = p?.Rejected.Values.Sum() ?? 0,
            Refused = refused,
            Members = p?.Pool.Members.Select(EtcdProxyMember.From).ToArray() ?? Array.Empty<EtcdProxyMember>(),
            CertificateReloads = p?.CertificateReloads ?? 0,
            ReloadError = p?.ReloadError,
            RevokedCertificates = p?.RevokedCertificates,
            BufferedBytes = p?.BufferedBytes ?? 0,
            TlsBufferRelease = p?.TlsBufferRelease,
            LogRecordsDropped = job.DroppedRecords,
            TlsBuffersReleased = p?.TlsBuffersReleased ?? 0,
            TlsIdleFrees = p?.TlsIdleFrees ?? 0,
            EventLoops = p?.EventLoops ?? 0,
            ClientCAPath = p?.Options.ClientCAPath,
            StartTime = p?.StartTime ?? default,
            JobId = job.Id,
        };
    }
}

/// <summary>A member behind a proxy: whether it takes new connections, and its load.</summary>
public sealed class EtcdProxyMember
{
    public string? Name { get; init; }
    public string? Id { get; init; }
    public string Url { get; init; } = "";
    public bool Alive { get; init; }
    public int ActiveConnections { get; init; }
    /// <summary>Client connections that passed authentication and are relayed (what -MaxConnections counts).</summary>
    public int RelayedConnections { get; init; }
    /// <summary>Client connections still in their TLS handshake (what -MaxPendingHandshakes counts).</summary>
    public int PendingHandshakes { get; init; }
    public long TotalConnections { get; init; }
    public long Failures { get; init; }
    public string? LastError { get; init; }
    public DateTime Since { get; init; }

    internal static EtcdProxyMember From(Upstream u) => new()
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
