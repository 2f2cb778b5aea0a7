using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;

namespace EtcdSecure.Engine.Relay;

public sealed partial class EtcdProxy
{
    /// <summary>Open client connections: relayed ones and those still in their handshake.</summary>
    public int Active => _open.Count;

    /// <summary>Client connections that passed authentication and are relayed.</summary>
    public int Relayed => Volatile.Read(ref _relayed);

    /// <summary>Client connections that have not finished authentication yet.</summary>
    public int PendingHandshakes => _admission.Pending;

    /// <summary>Clients waiting for a handshake place (every place is taken by clients making progress).</summary>
    public int WaitingHandshakes => _admission.Waiting;

    /// <summary>Bytes the relay holds for peers that read slower than the other side writes (bounded per connection).</summary>
    public long BufferedBytes => _transports.BufferedBytes;
    public long Total => Interlocked.Read(ref _total);
    public long BytesFromClients => Interlocked.Read(ref _bytesUp);
    public long BytesToClients => Interlocked.Read(ref _bytesDown);
    /// <summary>TLS sides (two per relayed connection) that free their record buffers while idle.</summary>
    public long TlsBuffersReleased => Interlocked.Read(ref _buffersReleased);
    /// <summary>Times a TLS side that fell idle on an event loop was left holding no OpenSSL buffer.</summary>
    public long TlsIdleFrees => Interlocked.Read(ref _idleFrees);
    /// <summary>Why connections go through .NET's socket engine instead of the relay's own event loops; null when they do not.</summary>
    public string? EventLoopUnavailable => _transports.EventLoopUnavailable;
    public int EventLoops => _transports.EventLoops;
    public IReadOnlyDictionary<string, long> Rejected => new SortedDictionary<string, long>(_rejected, StringComparer.Ordinal);
    public int CertificateReloads => _server.Reloads + _upstream.Reloads + (_clients?.Reloads ?? 0) + (_identities?.Reloads ?? 0);

    /// <summary>Why changed certificate or CRL files are not in use (the previous ones still are); null when all loaded.</summary>
    public string? ReloadError => string.Join("; ", new IReloading?[] { _server, _clients, _upstream, _identities }.Where(r => r?.LastError is not null).Select(r => $"{r!.What}: {r.LastError}")
        .Concat(_identities?.Value.Skipped.Select(s => "upstream identity " + s) ?? Enumerable.Empty<string>())) is { Length: > 0 } e ? e : null;

    /// <summary>
    /// Whom etcd sees: each client as itself (per client, with the users that have an identity), or every client as
    /// the proxy's one upstream certificate's user, which makes etcd's RBAC see one user for all of them.
    /// </summary>
    public string UpstreamIdentity => _identities is { } ids
        ? $"per client: {ids.Value.ByUser.Count} user(s) in {Options.IdentityPath}{(Options.FallbackIdentity is { } f ? $"; others as '{f}'" : "; others refused")}"
        : $"single: every client reaches etcd as '{_upstream.Value.ClientCertificate?.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, false)}', so etcd's RBAC sees one user for all of them";

    /// <summary>Whether idle connections give OpenSSL's buffers back ("on": within a second of falling idle), or why not.</summary>
    public string TlsBufferRelease => _transports.EventLoops == 0 ? "off: only on the relay's own event loops, where one thread drives each TLS connection"
        : OpenSslBuffers.Unavailable is { } why ? "off: " + why
        : OpenSslBuffers.IdleFreeUnavailable is { } noFree ? "on, after every record (no idle free: " + noFree + ")"
        : "on";

    /// <summary>Whether member connections share one OpenSSL client context with the proxy's certificate ("shared"), or why each builds its own.</summary>
    public string TlsUpstreamContext => UpstreamContext().Why is { } why ? "per connection: " + why : "shared";

    /// <summary>Whether client handshakes share one OpenSSL context that carries the proxy's cipher suites ("shared"), or why each builds its own.</summary>
    public string TlsServerContext => _server.Value.Tls.SharedUnavailable is { } why ? "per connection: " + why : "shared";

    /// <summary>Connections relayed record by record straight between the two OpenSSL handles, on their event loop.</summary>
    public long DirectRelays => Interlocked.Read(ref _directRelays);

    /// <summary>"on", or why connections go through the streams and pumps instead (the last reason seen), or what a connection relayed directly keeps that it need not.</summary>
    public string RelayDirect => _directOff is { } off ? "off: " + off
        : _transports.EventLoops == 0 ? "off: only on the relay's own event loops"
        : Volatile.Read(ref _lastNotDirect) is { } why ? "on, but not for some connections: " + why
        : SslStreamBuffer.KeptBecause is { } kept ? "on, each connection keeping SslStream's 8 KiB handshake buffer: " + kept
        : "on";

    /// <summary>Revoked serials the client CRLs list; null without CRLs.</summary>
    public int? RevokedCertificates => _clients?.Value.Revoked?.Revoked;
}
