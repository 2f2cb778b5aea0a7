using System;
using System.Buffers;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;


/// <summary>
/// A TLS-terminating relay in front of an etcd cluster. Clients authenticate to the proxy with certificates from the
/// client CA; the proxy opens a mutual-TLS connection to a live member with its own certificate, negotiates the same
/// application protocol the client chose (h2 for gRPC, http/1.1 for /health and the JSON gateway), and then copies
/// bytes both ways. It never parses the traffic, so every etcd API and version works through it.
/// </summary>
/// <remarks>
/// By concern: this file holds its life (start, reload, stop); EtcdProxy.Listener.cs takes connections in and
/// keeps them within bounds, EtcdProxy.Connection.cs walks one connection through, EtcdProxy.Handshake.cs
/// authenticates the client, EtcdProxy.Upstream.cs picks and connects a member, EtcdProxy.Pump.cs copies the
/// bytes, EtcdProxy.Counters.cs says what happened. <see cref="Transport"/> hides which socket engine runs it.
/// TLS: <see cref="ServerTls"/> sets up the clients' shared server context; <see cref="UpstreamTls"/> and
/// <see cref="UpstreamTlsStream"/> are the member side on one shared client context, through <see cref="OpenSsl"/>.
/// </remarks>
public sealed partial class EtcdProxy : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<RelayConnection, byte> _open = new();
    private readonly ConcurrentDictionary<string, long> _rejected = new(StringComparer.Ordinal);
    private readonly Reloading<ServerCredentials> _server;
    private readonly Reloading<ClientPolicy>? _clients;
    private readonly Reloading<TlsClientIdentity> _upstream;
    private readonly SslProtocols _protocols;
    private readonly IReadOnlyList<TlsCipherSuite> _suites;
    private readonly object _upstreamContextLock = new();
    // One shared client context per upstream identity in use: a member connection is made with its client's own
    // identity, never another's. Emptied whenever the identities are reloaded.
    private readonly Dictionary<TlsClientIdentity, UpstreamContextState> _upstreamContexts = new(ReferenceEqualityComparer.Instance);
    private (TlsClientIdentity Own, UpstreamIdentities? PerClient) _contextsFor;
    private readonly Reloading<UpstreamIdentities>? _identities;
    private readonly string? _upstreamUnshared; // why member connections never share a context, when a setting says so
    private readonly string? _directOff;        // why no connection is relayed directly, when a setting says so
    private readonly Admission _admission;
    private readonly Socket _listener;
    private readonly TransportEngine _transports;
    private Task _accepting = Task.CompletedTask;
    private Task _background = Task.CompletedTask;
    private long _total;
    private int _relayed;
    private long _bytesUp;
    private long _bytesDown;
    private long _buffersReleased;
    private long _idleFrees;
    private long _directRelays;
    private string? _lastNotDirect;
    private readonly Action _countIdleFree; // one delegate for every connection

    private EtcdProxy(ProxyOptions options, Action<ProxyLogLevel, string> log)
    {
        Options = options;
        Log = log;
        _countIdleFree = () => Interlocked.Increment(ref _idleFrees);
        IReadOnlyList<TlsCipherSuite> suites = _suites = options.CipherSuites ?? TlsPolicy.DefaultCipherSuites;
        CipherSuitesPolicy? policy = TlsPolicy.Create(suites);
        _protocols = TlsPolicy.ProtocolsFor(options.CipherSuites);
        // Silent, or stalled on its side, for a third of the handshake timeout is what may be shed under pressure: a
        // real client's steps come within milliseconds, and even one starved of CPU in a burst of a thousand on two
        // cores was seen silent for under three seconds.
        _admission = new Admission(options.MaxPendingHandshakes, options.MaxPendingPerAddress, options.HandshakeTimeout / 3);
        Action<string> info = m => log(ProxyLogLevel.Information, m);
        // Read once, at the start: a reload must not change how the proxy runs because the session's environment changed since.
        string? serverUnshared = EnvironmentSwitch.Set("ETCDSECURE_TLS_SHARED_CONTEXT", "0");
        _upstreamUnshared = EnvironmentSwitch.Set("ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT", "0");
        _directOff = EnvironmentSwitch.Set("ETCDSECURE_RELAY_DIRECT", "0");
        _server = new Reloading<ServerCredentials>("serving certificate",
            () => ServerCredentials.Load(options.Server.CertificatePath, options.Server.KeyPath, context => ServerTls.Prepare(context, suites, policy, _protocols, ServerAlpn, serverUnshared)), info,
            options.Server.CertificatePath, options.Server.KeyPath);
        if (options.ClientCAPath is { } caPath)
        {
            ClientAllowList? allowed = options.AllowedClients.Count > 0 ? new ClientAllowList(options.AllowedClients) : null;
            _clients = new Reloading<ClientPolicy>("client CA and CRLs", () => ClientPolicy.Load(caPath, options.CrlPaths, allowed), info, options.CrlPaths.Prepend(caPath).ToArray());
        }

        _upstream = new Reloading<TlsClientIdentity>("upstream certificate",
            () => new TlsClientIdentity(TrustedCAs.Load(options.UpstreamCAPath), ServerCredentials.LoadCurrent(options.Upstream.CertificatePath, options.Upstream.KeyPath), policy, _protocols), info,
            options.UpstreamCAPath, options.Upstream.CertificatePath, options.Upstream.KeyPath);
        if (options.IdentityPath is { } identityPath)
        {
            _identities = new Reloading<UpstreamIdentities>("upstream identities",
                () => UpstreamIdentities.Load(identityPath, options.UpstreamCAPath, policy, _protocols), info, () => UpstreamIdentities.Files(identityPath).Prepend(options.UpstreamCAPath).ToArray());
        }

        _transports = TransportEngine.Create(Math.Clamp(Environment.ProcessorCount, 1, 16), m => log(ProxyLogLevel.Warning, m));
        Pool = new UpstreamPool(options, _upstream, log, _transports.ConnectAsync, ProbeHandshakeAsync);
        _listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
    }

    public ProxyOptions Options { get; }
    public UpstreamPool Pool { get; }
    public Action<ProxyLogLevel, string> Log { get; }
    public DateTime StartTime { get; } = DateTime.Now;
    public bool Running => !_stopping.IsCancellationRequested;
    public IPEndPoint? LocalEndPoint => _listener.LocalEndPoint as IPEndPoint;

    /// <summary>Loads the credentials, finds the members, binds the port and starts serving; returns once it accepts connections.</summary>
    public static async Task<EtcdProxy> StartAsync(ProxyOptions options, Action<ProxyLogLevel, string> log, CancellationToken cancel)
    {
        var proxy = new EtcdProxy(options, log);
        try
        {
            await proxy.Pool.DiscoverAsync(cancel).ConfigureAwait(false);
            proxy.Bind();
            proxy._accepting = Task.Run(proxy.AcceptLoopAsync);
            proxy._background = Task.WhenAll(Task.Run(() => proxy.Pool.RunAsync(proxy._stopping.Token)), Task.Run(proxy.IdleSweepAsync), Task.Run(proxy.AdmissionSweepAsync), Task.Run(proxy.ReloadLoopAsync));
            // Discovery has made TLS connections, so the runtime's libssl is loaded and the check is final.
            if (proxy.TlsBufferRelease.StartsWith("off: ", StringComparison.Ordinal)) log(ProxyLogLevel.Verbose, $"idle connections keep their TLS buffers: {proxy.TlsBufferRelease[5..]}");
            else if (proxy.TlsBufferRelease != "on") log(ProxyLogLevel.Verbose, $"idle connections free OpenSSL's record buffers, {proxy.TlsBufferRelease[4..]}");
            if (proxy._server.Value.Tls.SharedUnavailable is { } why) log(ProxyLogLevel.Verbose, $"each client handshake builds its own TLS context: {why}");
            proxy.UpstreamContext(); // logs why, when member connections cannot share one
            log(ProxyLogLevel.Verbose, proxy._transports.Description);
            log(ProxyLogLevel.Information, $"listening on {options.Listen.GetLeftPart(UriPartial.Authority)}; members: {string.Join(", ", proxy.Pool.Members.Select(m => $"{m} {(m.Alive ? "up" : "down")}"))}");
            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task StopAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        _stopping.Cancel();
        _listener.Dispose();
        foreach (RelayConnection c in _open.Keys) c.Abort();
        try
        {
            await Task.WhenAll(_accepting, _background).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        // Last: a loop that ends fails whatever is still attached to it (handshakes under way when the stop came).
        _transports.Dispose();

        Log(ProxyLogLevel.Information, $"stopped after {Total} connections");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested) await StopAsync().ConfigureAwait(false);
        _listener.Dispose();
    }

    private void Reject(string reason) => _rejected.AddOrUpdate(reason, 1, (_, n) => n + 1);

    /// <summary>
    /// A client revoked by a new CRL, or whose upstream identity was removed, is cut off on its open connections too,
    /// not only refused when it next connects: a watch can stay open for days.
    /// </summary>
    private void CutOffWhatReloadsTookAway()
    {
        RevocationList? revoked = _clients?.Value.Revoked;
        UpstreamIdentities? identities = _identities?.Value;
        foreach (RelayConnection c in _open.Keys)
        {
            if (!c.Relayed) continue;
            if (revoked is not null && c.Client?.RemoteCertificate is System.Security.Cryptography.X509Certificates.X509Certificate2 leaf)
            {
                if (revoked.IsRevoked(leaf, out _))
                {
                    Reject("Revoked");
                    Log(ProxyLogLevel.Verbose, $"cut off {c.Remote}: its client certificate '{leaf.Subject}' is revoked now");
                    c.Abort();
                    continue;
                }
            }

            if (identities is not null && c.IdentityUser is { } user && !identities.ByUser.ContainsKey(user))
            {
                Reject("NoUpstreamIdentity");
                Log(ProxyLogLevel.Verbose, $"cut off {c.Remote}: the upstream identity of user '{user}' was removed");
                c.Abort();
            }
        }
    }

    /// <summary>Looks at the certificate and CRL files once a second, off the relay threads; a bad change never escapes.</summary>
    private async Task ReloadLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                _server.Check();
                int crls = _clients?.Reloads ?? 0, identities = _identities?.Reloads ?? 0;
                _clients?.Check();
                _upstream.Check();
                _identities?.Check();
                if ((_clients?.Reloads ?? 0) != crls || (_identities?.Reloads ?? 0) != identities) CutOffWhatReloadsTookAway();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
