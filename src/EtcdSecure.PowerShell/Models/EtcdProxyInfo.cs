using System;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Linq;
using EtcdSecure.Engine.Relay;
using EtcdSecure.PowerShell;

namespace EtcdSecure;

/// <summary>A proxy's state and live counters, as Start-EtcdProxy and Get-EtcdProxy return them.</summary>
public sealed record EtcdProxyInfo
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

    /// <summary>Clients waiting for a handshake place while every place is taken by clients making progress.</summary>
    public int WaitingHandshakes { get; init; }

    /// <summary>
    /// Whom etcd sees: "per client" (each client as the etcd user of its certificate's common name, so etcd's RBAC
    /// holds), or "single" (every client as the upstream certificate's user: RBAC sees one user for all of them).
    /// </summary>
    public string? UpstreamIdentity { get; init; }
    public long TotalConnections { get; init; }
    public long BytesFromClients { get; init; }
    public long BytesToClients { get; init; }
    public long RefusedConnections { get; init; }
    /// <summary>
    /// Refused or failed connections by reason: NoClientCertificate, UntrustedClientCertificate, ClientNotAllowed,
    /// Revoked, PendingLimit, PendingPerAddressLimit, MaxConnections, PlainHttp, NotTls, HandshakeTimeout,
    /// TlsHandshakeFailed, CipherSuiteRefused, NoLiveMember, RoutedMemberDown, IdleTimeout.
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
    /// <summary>
    /// "shared" when every client handshake uses one OpenSSL context that carries the proxy's cipher suites (about
    /// 12 KiB less per connection); otherwise "per connection:" and why (runtime layout, OpenSSL version, switch).
    /// </summary>
    public string? TlsServerContext { get; init; }
    /// <summary>
    /// "shared" when every connection to a member uses one OpenSSL client context holding the proxy's certificate,
    /// key and cipher suites (about 13 KiB less per connection than SslStream's context per connection); otherwise
    /// "per connection:" and why (OpenSSL version, switch).
    /// </summary>
    public string? TlsUpstreamContext { get; init; }
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
    /// "on" when authenticated connections are relayed record by record straight between the two OpenSSL handles on
    /// their event loop, without SslStream or the stream pumps (about an eighth less CPU per request); otherwise
    /// "off:" and why, or which connections did not qualify (ETCDSECURE_RELAY_DIRECT=0 turns it off), or "on, each
    /// connection keeping SslStream's 8 KiB handshake buffer:" and why (ETCDSECURE_TLS_KEEP_BUFFERS=1, or a runtime
    /// whose SslStream keeps it where the proxy cannot hand it back).
    /// </summary>
    public string? RelayDirect { get; init; }
    /// <summary>Connections relayed that way since the proxy started.</summary>
    public long DirectRelays { get; init; }
    /// <summary>
    /// Threads running the relay's own epoll loops (one per core); 0 when connections go through .NET's socket
    /// engine instead (not Linux, or ETCDSECURE_PROXY_EVENT_LOOP=0), and the proxy's log says why.
    /// </summary>
    public int EventLoops { get; init; }
    public string? ClientCAPath { get; init; }
    public DateTime StartTime { get; init; }
    public int JobId { get; init; }

    /// <summary>True for a proxy in a process of its own (Start-EtcdProxy -Detached), which any session can list and stop.</summary>
    public bool Detached { get; init; }
    /// <summary>The detached proxy's process; empty for a proxy that runs as a job of this session.</summary>
    public int? ProcessId { get; init; }
    /// <summary>Where a detached proxy writes its log (a job's log is Receive-Job's).</summary>
    public string? LogPath { get; init; }

    internal static EtcdProxyInfo From(EtcdProxyJob job) =>
        From(job.Name, job.JobStateInfo.State.ToString(), job.Endpoint, job.Proxy is { } p ? ProxyStats.Of(p) : null, job.Proxy?.Options.ClientCAPath) with
        {
            JobId = job.Id,
            LogRecordsDropped = job.DroppedRecords,
        };

    internal static EtcdProxyInfo From(Engine.State.ProxyRecord r, ProxyStats? stats, bool running) =>
        From(r.Name, running ? stats is null ? "NotResponding" : "Running" : "Exited", r.Endpoint, stats, stats?.ClientCAPath) with
        {
            Detached = true,
            ProcessId = r.ProcessId,
            LogPath = r.LogPath,
            StartTime = stats?.StartTime ?? r.StartTime,
        };

    private static EtcdProxyInfo From(string name, string state, string endpoint, ProxyStats? s, string? clientCA)
    {
        var refused = new OrderedDictionary();
        foreach (var kv in s?.Refused ?? new SortedDictionary<string, long>()) refused[kv.Key] = kv.Value;
        return new EtcdProxyInfo
        {
            Name = name,
            State = state,
            Endpoint = endpoint,
            ActiveConnections = s?.ActiveConnections ?? 0,
            RelayedConnections = s?.RelayedConnections ?? 0,
            PendingHandshakes = s?.PendingHandshakes ?? 0,
            WaitingHandshakes = s?.WaitingHandshakes ?? 0,
            UpstreamIdentity = s?.UpstreamIdentity,
            TotalConnections = s?.TotalConnections ?? 0,
            BytesFromClients = s?.BytesFromClients ?? 0,
            BytesToClients = s?.BytesToClients ?? 0,
            RefusedConnections = s?.Refused.Values.Sum() ?? 0,
            Refused = refused,
            Members = s?.Members.Select(EtcdProxyMember.From).ToArray() ?? Array.Empty<EtcdProxyMember>(),
            CertificateReloads = s?.CertificateReloads ?? 0,
            ReloadError = s?.ReloadError,
            RevokedCertificates = s?.RevokedCertificates,
            BufferedBytes = s?.BufferedBytes ?? 0,
            TlsBufferRelease = s?.TlsBufferRelease,
            TlsServerContext = s?.TlsServerContext,
            TlsUpstreamContext = s?.TlsUpstreamContext,
            TlsBuffersReleased = s?.TlsBuffersReleased ?? 0,
            TlsIdleFrees = s?.TlsIdleFrees ?? 0,
            RelayDirect = s?.RelayDirect,
            DirectRelays = s?.DirectRelays ?? 0,
            EventLoops = s?.EventLoops ?? 0,
            ClientCAPath = clientCA,
            StartTime = s?.StartTime ?? default,
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

    internal static EtcdProxyMember From(MemberStats u) => new()
    {
        Name = u.Name,
        Id = u.Id,
        Url = u.Url,
        Alive = u.Alive,
        ActiveConnections = u.ActiveConnections,
        TotalConnections = u.TotalConnections,
        Failures = u.Failures,
        LastError = u.LastError,
        Since = u.Since,
    };
}
