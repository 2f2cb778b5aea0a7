using System;
using System.Buffers;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Health;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// A TLS-terminating relay in front of an etcd cluster. Clients authenticate to the proxy with certificates from the
/// client CA; the proxy opens a mutual-TLS connection to a live member with its own certificate, negotiates the same
/// application protocol the client chose (h2 for gRPC, http/1.1 for /health and the JSON gateway), and then copies
/// bytes both ways. It never parses the traffic, so every etcd API and version works through it.
/// </summary>
public sealed class EtcdProxy : IAsyncDisposable
{
    private const int BufferSize = 16 * 1024; // one TLS record's worth of plaintext
    private static readonly List<SslApplicationProtocol> ServerAlpn = new() { SslApplicationProtocol.Http2, SslApplicationProtocol.Http11 };
    private static readonly byte[] PlainHttpAnswer = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"u8.ToArray();

    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<RelayConnection, byte> _open = new();
    private readonly ConcurrentDictionary<string, long> _rejected = new(StringComparer.Ordinal);
    private readonly Reloading<ServerCredentials> _server;
    private readonly Reloading<ClientPolicy>? _clients;
    private readonly Reloading<TlsClientIdentity> _upstream;
    private readonly CipherSuitesPolicy? _cipherSuites;
    private readonly SslProtocols _protocols;
    private readonly Admission _admission;
    private readonly Socket _listener;
    private readonly EventLoopGroup? _loops;
    private Task _accepting = Task.CompletedTask;
    private Task _background = Task.CompletedTask;
    private long _total;
    private int _relayed;
    private long _bytesUp;
    private long _bytesDown;
    private long _buffersReleased;
    private long _idleFrees;
    private readonly Action _countIdleFree; // one delegate for every connection

    private EtcdProxy(ProxyOptions options, Action<ProxyLogLevel, string> log)
    {
        Options = options;
        Log = log;
        _countIdleFree = () => Interlocked.Increment(ref _idleFrees);
        _cipherSuites = options.CipherSuites is { } suites ? TlsPolicy.Create(suites) : TlsPolicy.Default;
        _protocols = TlsPolicy.ProtocolsFor(options.CipherSuites);
        _admission = new Admission(options.MaxPendingHandshakes, options.MaxPendingPerAddress);
        Action<string> info = m => log(ProxyLogLevel.Information, m);
        _server = new Reloading<ServerCredentials>("serving certificate", () => ServerCredentials.Load(options.Server.CertificatePath, options.Server.KeyPath), info, options.Server.CertificatePath, options.Server.KeyPath);
        if (options.ClientCAPath is { } caPath)
        {
            ClientAllowList? allowed = options.AllowedClients.Count > 0 ? new ClientAllowList(options.AllowedClients) : null;
            _clients = new Reloading<ClientPolicy>("client CA and CRLs", () => ClientPolicy.Load(caPath, options.CrlPaths, allowed), info, options.CrlPaths.Prepend(caPath).ToArray());
        }

        _upstream = new Reloading<TlsClientIdentity>("upstream certificate",
            () => new TlsClientIdentity(TrustedCAs.Load(options.UpstreamCAPath), ServerCredentials.LoadCurrent(options.Upstream.CertificatePath, options.Upstream.KeyPath), _cipherSuites, _protocols), info,
            options.UpstreamCAPath, options.Upstream.CertificatePath, options.Upstream.KeyPath);
        // As many loops as cores, as HAProxy runs as many threads; without them the relay uses .NET's socket engine.
        _loops = EventLoopGroup.TryCreate(Math.Clamp(Environment.ProcessorCount, 1, 16), m => log(ProxyLogLevel.Warning, m), out string? why);
        EventLoopUnavailable = why;
        // The probes run on the loops too: through .NET's engine, every probe step wakes thread-pool workers, which
        // spin before they sleep again (measured: most of an idle proxy's CPU).
        Pool = new UpstreamPool(options, _upstream, log, _loops is { } loops ? async (host, port, cancel) => await LoopStream.ConnectAsync(loops.Next(), host, port, cancel).ConfigureAwait(false) : null);
        _listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
    }

    public ProxyOptions Options { get; }
    public UpstreamPool Pool { get; }
    public Action<ProxyLogLevel, string> Log { get; }
    public DateTime StartTime { get; } = DateTime.Now;
    public bool Running => !_stopping.IsCancellationRequested;
    public IPEndPoint? LocalEndPoint => _listener.LocalEndPoint as IPEndPoint;
    /// <summary>Open client connections: relayed ones and those still in their handshake.</summary>
    public int Active => _open.Count;

    /// <summary>Client connections that passed authentication and are relayed.</summary>
    public int Relayed => Volatile.Read(ref _relayed);

    /// <summary>Client connections that have not finished authentication yet.</summary>
    public int PendingHandshakes => _admission.Pending;

    /// <summary>Bytes the relay holds for peers that read slower than the other side writes (bounded per connection).</summary>
    public long BufferedBytes => _loops?.BufferedBytes ?? 0;
    public long Total => Interlocked.Read(ref _total);
    public long BytesFromClients => Interlocked.Read(ref _bytesUp);
    public long BytesToClients => Interlocked.Read(ref _bytesDown);
    /// <summary>TLS sides (two per relayed connection) that free their record buffers while idle.</summary>
    public long TlsBuffersReleased => Interlocked.Read(ref _buffersReleased);
    /// <summary>Times a TLS side that fell idle on an event loop was left holding no OpenSSL buffer.</summary>
    public long TlsIdleFrees => Interlocked.Read(ref _idleFrees);
    /// <summary>Why connections go through .NET's socket engine instead of the relay's own event loops; null when they do not.</summary>
    public string? EventLoopUnavailable { get; }
    public int EventLoops => _loops?.Count ?? 0;
    public IReadOnlyDictionary<string, long> Rejected => new SortedDictionary<string, long>(_rejected, StringComparer.Ordinal);
    public int CertificateReloads => _server.Reloads + _upstream.Reloads + (_clients?.Reloads ?? 0);

    /// <summary>Why changed certificate or CRL files are not in use (the previous ones still are); null when all loaded.</summary>
    public string? ReloadError => string.Join("; ", new IReloading?[] { _server, _clients, _upstream }.Where(r => r?.LastError is not null).Select(r => $"{r!.What}: {r.LastError}")) is { Length: > 0 } e ? e : null;

    /// <summary>Whether idle connections give OpenSSL's buffers back, or why not.</summary>
    public string TlsBufferRelease => _loops is null ? "off: only on the relay's own event loops, where one thread drives each TLS connection"
        : OpenSslBuffers.Unavailable is { } why ? "off: " + why
        : OpenSslBuffers.IdleFreeUnavailable is { } noFree ? "on, without the idle free: " + noFree
        : "on";

    /// <summary>Revoked serials the client CRLs list; null without CRLs.</summary>
    public int? RevokedCertificates => _clients?.Value.Revoked?.Revoked;

    /// <summary>Loads the credentials, finds the members, binds the port and starts serving; returns once it accepts connections.</summary>
    public static async Task<EtcdProxy> StartAsync(ProxyOptions options, Action<ProxyLogLevel, string> log, CancellationToken cancel)
    {
        var proxy = new EtcdProxy(options, log);
        try
        {
            await proxy.Pool.DiscoverAsync(cancel).ConfigureAwait(false);
            proxy.Bind();
            proxy._accepting = Task.Run(proxy.AcceptLoopAsync);
            proxy._background = Task.WhenAll(Task.Run(() => proxy.Pool.RunAsync(proxy._stopping.Token)), Task.Run(proxy.IdleSweepAsync), Task.Run(proxy.ReloadLoopAsync));
            // Discovery has made TLS connections, so the runtime's libssl is loaded and the check is final.
            if (proxy.TlsBufferRelease.StartsWith("off: ", StringComparison.Ordinal)) log(ProxyLogLevel.Verbose, $"idle connections keep their TLS buffers: {proxy.TlsBufferRelease[5..]}");
            else if (proxy.TlsBufferRelease != "on") log(ProxyLogLevel.Verbose, $"idle connections free OpenSSL's record buffers, {proxy.TlsBufferRelease[4..]}");
            log(ProxyLogLevel.Verbose, proxy._loops is { } loops ? $"relaying on {loops.Count} event loop thread(s)" : $"relaying on .NET's socket engine: {proxy.EventLoopUnavailable}");
            log(ProxyLogLevel.Information, $"listening on {options.Listen.GetLeftPart(UriPartial.Authority)}; members: {string.Join(", ", proxy.Pool.Members.Select(m => $"{m} {(m.Alive ? "up" : "down")}"))}");
            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void Bind()
    {
        string host = Options.Listen.DialHost();
        IPAddress address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out IPAddress? ip) ? ip
            : throw new EtcdSecureException("InvalidListenAddress", ErrorKind.InvalidArgument, $"Listen on an IP address or localhost, not '{host}'.", Options.Listen);
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6) _listener.DualMode = IPAddress.IPv6Any.Equals(address);
            _listener.Bind(new IPEndPoint(address, Options.Listen.Port));
            _listener.Listen(4096);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new EtcdSecureException("PortInUse", ErrorKind.ResourceUnavailable, $"{Options.Listen.GetLeftPart(UriPartial.Authority)} is already in use by another process.", Options.Listen, ex);
        }
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken stop = _stopping.Token;
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException && stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of file descriptors and the like: say so, and keep accepting once it passes.
                Log(ProxyLogLevel.Warning, $"accept failed: {ex.SocketErrorCode}");
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            RelayConnection c;
            try
            {
                client.NoDelay = true;
                KeepAlive(client);
                c = new RelayConnection(client, _loops?.Next());
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                Log(ProxyLogLevel.Warning, $"cannot take a connection: {ex.Message}");
                client.Dispose();
                continue;
            }

            // Room for the newcomer is made by dropping the oldest pending handshake: clients that connect and say
            // nothing cannot keep anyone else out, and authenticated clients never count here.
            var (drop, why) = _admission.Enter(c);
            if (drop is not null)
            {
                Reject(why!);
                Log(ProxyLogLevel.Verbose, $"dropped {drop.Remote} before it authenticated ({why}) to make room for {c.Remote}");
                drop.Abort();
            }

            _ = ServeAsync(c);
        }
    }

    private async Task ServeAsync(RelayConnection c)
    {
        _open[c] = 0;
        Interlocked.Increment(ref _total);
        try
        {
            await HandshakeAndRelayAsync(c).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or AuthenticationException or System.Security.Cryptography.CryptographicException)
        {
            // A peer went away or the proxy is stopping; the connection simply ends.
        }
        catch (Exception ex)
        {
            Log(ProxyLogLevel.Warning, $"connection from {c.Remote} ended unexpectedly: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            _admission.Leave(c);
            _open.TryRemove(c, out _);
            if (c.Relayed) Interlocked.Decrement(ref _relayed);
            if (c.Member is { } m) Interlocked.Decrement(ref m.ActiveCount);
            await c.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task HandshakeAndRelayAsync(RelayConnection c)
    {
        using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token))
        {
            handshake.CancelAfter(Options.HandshakeTimeout);
            (string Reason, string? Detail)? failure = await AcceptTlsAsync(c, handshake.Token).ConfigureAwait(false);
            if (failure is { } f)
            {
                // An evicted connection was counted and logged when it was dropped.
                if (c.EvictedReason is null)
                {
                    Reject(f.Reason);
                    Log(ProxyLogLevel.Verbose, $"refused {c.Remote}: {f.Detail ?? f.Reason}");
                }

                return;
            }

            if (!_admission.Authenticated(c)) return;
            if (Interlocked.Increment(ref _relayed) > Options.MaxConnections)
            {
                Interlocked.Decrement(ref _relayed);
                Reject("MaxConnections");
                Log(ProxyLogLevel.Verbose, $"refused {c.Remote}: {Options.MaxConnections} connections are relayed already (MaxConnections)");
                return;
            }

            c.Relayed = true;
            if (!await ConnectUpstreamAsync(c, handshake.Token).ConfigureAwait(false)) return;
        }

        // From here on the client is authenticated, and its connection is driven by its loop's thread alone. The
        // handshakes may have finished on a thread-pool thread (the client's always runs there, and the member's
        // goes on there when its answer was already waiting), so the pumps move to the loop first: their reads must
        // wait on the loop's thread for the idle free to run.
        if (c.Loop is { } loop)
        {
            await loop.SwitchToAsync().ConfigureAwait(false);
            ((LoopStream)c.ClientStream).Inline = true;
        }

        // Both handshakes are done and no pump runs yet: the one moment nothing else touches either SSL*.
        ReleaseBuffersWhenIdle(c.Client!, c.ClientStream);
        ReleaseBuffersWhenIdle(c.Upstream!, c.UpstreamStream!);

        c.Touch();
        Task up = PumpAsync(c, c.Client!, c.Upstream!, c.UpstreamStream!, c.UpstreamSocket!, up: true);
        Task down = PumpAsync(c, c.Upstream!, c.Client!, c.ClientStream, c.ClientSocket, up: false);
        // When one side fails outright the other pump is stuck in a read; tearing the connection down ends it.
        Task first = await Task.WhenAny(up, down).ConfigureAwait(false);
        if (first.IsFaulted) c.Abort();
        await Task.WhenAll(up, down).ConfigureAwait(false);
    }

    private void ReleaseBuffersWhenIdle(SslStream ssl, Stream transport)
    {
        // Only where one thread drives the connection: .NET's socket engine may run a read and a write of one SslStream
        // on two threads at once, and OpenSSL's buffer calls are not safe against that.
        if (transport is not LoopStream || !OpenSslBuffers.TryRelease(ssl)) return;
        Interlocked.Increment(ref _buffersReleased);
        // On a loop, whatever the mode leaves behind is freed each time the connection falls idle.
        if (transport is LoopStream loop) loop.WhenIdle = OpenSslBuffers.FreeWhenIdle(ssl, _countIdleFree);
    }

    /// <returns>Null when the client is in, otherwise the reason it was refused (the counter name) and what was seen.</returns>
    private async Task<(string Reason, string? Detail)?> AcceptTlsAsync(RelayConnection c, CancellationToken cancel)
    {
        // Peek at the first byte: a TLS handshake record starts with 22. Anything else is most likely plain HTTP,
        // which deserves the same plain answer Go's servers give instead of a silent close.
        byte[] first = new byte[1];
        int n;
        try
        {
            n = c.ClientStream is LoopStream loop
                ? await loop.PeekAsync(first, cancel).ConfigureAwait(false)
                : await c.ClientSocket.ReceiveAsync(first, SocketFlags.Peek, cancel).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            return ("HandshakeTimeout", "sent nothing within the handshake timeout");
        }

        if (n == 0) return ("ClosedBeforeHandshake", null);
        if (first[0] != 22)
        {
            if (first[0] is >= (byte)'A' and <= (byte)'Z')
            {
                await c.ClientStream.WriteAsync(PlainHttpAnswer, cancel).ConfigureAwait(false);
                // Closing with the request still unread would send a reset and lose the answer: read it first.
                byte[] discard = new byte[Math.Clamp(c.ClientSocket.Available, 1, 8192)];
                await c.ClientStream.ReadAsync(discard, cancel).ConfigureAwait(false);
                await ShutdownSendAsync(c.ClientStream, c.ClientSocket).ConfigureAwait(false);
                return ("PlainHttp", "sent plain HTTP to the TLS port");
            }

            return ("NotTls", $"the first byte ({first[0]}) does not start a TLS handshake");
        }

        (string Reason, string Detail)? refused = null;
        var ssl = new SslStream(c.ClientStream, leaveInnerStreamOpen: false);
        c.Client = ssl;
        try
        {
            await ssl.AuthenticateAsServerAsync((_, hello, _, _) =>
            {
                c.ServerName = hello.ServerName;
                return ValueTask.FromResult(ServerOptions(r => refused = r));
            }, null, cancel).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            return ("HandshakeTimeout", "did not finish its TLS handshake within the handshake timeout");
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            return refused is { } r ? r : ("TlsHandshakeFailed", ex.GetBaseException().Message);
        }

        c.Protocol = ssl.NegotiatedApplicationProtocol;
        return null;
    }

    /// <summary>
    /// The TLS settings for one client. The client's chain is built by SslStream with the client CA bundle alone,
    /// for client auth, with nothing downloaded; this runs on a thread-pool thread (the client stream's
    /// continuations do not run on its loop until it is authenticated), so no client can hold up a relay thread.
    /// </summary>
    private SslServerAuthenticationOptions ServerOptions(Action<(string, string)> refuse)
    {
        ClientPolicy? clients = _clients?.Value;
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _server.Value.Context,
            EnabledSslProtocols = _protocols,
            CipherSuitesPolicy = _cipherSuites,
            AllowRenegotiation = false,
            ApplicationProtocols = ServerAlpn,
            ClientCertificateRequired = clients is not null,
            CertificateChainPolicy = clients?.Trust.ChainPolicy(TrustedCAs.ClientAuth),
            RemoteCertificateValidationCallback = clients is null ? null : (_, cert, chain, errors) =>
            {
                if (clients.Judge(cert, chain, errors) is not { } why) return true;
                refuse(why);
                return false;
            },
        };
    }

    private async Task<bool> ConnectUpstreamAsync(RelayConnection c, CancellationToken cancel)
    {
        ulong? route = RouteOf(c.ServerName);
        Upstream? avoid = null;
        int attempts = route is null ? Math.Max(1, Pool.Members.Count) : 1;
        for (int attempt = 0; attempt < attempts; attempt++)
        {
            Upstream? m = Pool.Pick(route, avoid);
            if (m is null)
            {
                Reject(route is null ? "NoLiveMember" : "RoutedMemberDown");
                return false;
            }

            Interlocked.Increment(ref m.ActiveCount);
            Interlocked.Increment(ref m.TotalCount);
            string? why = await TryConnectAsync(c, m, cancel).ConfigureAwait(false);
            if (why is null)
            {
                c.Member = m;
                if (!m.Alive) Pool.Succeeded(m);
                return true;
            }

            Interlocked.Decrement(ref m.ActiveCount);
            if (cancel.IsCancellationRequested) return false;
            Pool.Failed(m, why);
            avoid = m;
        }

        Reject("NoLiveMember");
        return false;
    }

    private async Task<string?> TryConnectAsync(RelayConnection c, Upstream m, CancellationToken cancel)
    {
        Socket? socket = null;
        SslStream? ssl = null;
        string? rejected = null;
        try
        {
            Stream transport;
            if (c.Loop is { } loop)
            {
                LoopStream connected = await LoopStream.ConnectAsync(loop, m.Host, m.Port, cancel).ConfigureAwait(false);
                (socket, transport) = (connected.Socket, connected);
            }
            else
            {
                socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(m.Host, m.Port, cancel).ConfigureAwait(false);
                transport = new NetworkStream(socket, ownsSocket: false);
            }

            KeepAlive(socket);

            ssl = new SslStream(transport, leaveInnerStreamOpen: false);
            SslApplicationProtocol[] alpn = c.Protocol == default ? Array.Empty<SslApplicationProtocol>() : new[] { c.Protocol };
            await ssl.AuthenticateAsClientAsync(_upstream.Value.ClientOptions(m.Host, null, r => rejected = r, alpn), cancel).ConfigureAwait(false);
            c.UpstreamSocket = socket;
            c.UpstreamStream = transport;
            c.Upstream = ssl;
            return null;
        }
        catch (Exception ex) when (ex is SocketException or IOException or AuthenticationException or OperationCanceledException)
        {
            if (ssl is not null) await ssl.DisposeAsync().ConfigureAwait(false);
            socket?.Dispose();
            return rejected ?? (ex is OperationCanceledException ? "no TLS answer in time" : ex.GetBaseException().Message);
        }
    }

    private static ulong? RouteOf(string? serverName) =>
        serverName is not null && serverName.EndsWith(EtcdEndpointClient.RouteSuffix, StringComparison.OrdinalIgnoreCase)
        && ulong.TryParse(serverName.AsSpan(0, serverName.Length - EtcdEndpointClient.RouteSuffix.Length), System.Globalization.NumberStyles.HexNumber, null, out ulong id)
            ? id
            : null;

    /// <summary>
    /// Copies one direction until its source ends, then passes the end on (close_notify and FIN), so a client that
    /// half-closes still gets the rest of the answer. The buffer is rented only while data is in flight: an idle
    /// connection waits in a zero-byte read and holds no buffer at all.
    /// </summary>
    private async Task PumpAsync(RelayConnection c, SslStream from, SslStream to, Stream toTransport, Socket toSocket, bool up)
    {
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                await from.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
                buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                int n = await from.ReadAsync(buffer.AsMemory(0, BufferSize)).ConfigureAwait(false);
                if (n == 0) break;
                await to.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = null;
                Interlocked.Add(ref up ? ref _bytesUp : ref _bytesDown, n);
                c.Touch();
            }

            await to.ShutdownAsync().ConfigureAwait(false);
            await ShutdownSendAsync(toTransport, toSocket).ConfigureAwait(false);
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>FIN after everything written so far: a loop stream may still hold gathered bytes that Socket.Shutdown would overtake.</summary>
    private static ValueTask ShutdownSendAsync(Stream transport, Socket socket)
    {
        if (transport is LoopStream loop) return loop.ShutdownSendAsync();
        socket.Shutdown(SocketShutdown.Send);
        return default;
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
        _loops?.Dispose();

        Log(ProxyLogLevel.Information, $"stopped after {Total} connections");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested) await StopAsync().ConfigureAwait(false);
        _listener.Dispose();
    }

    private void Reject(string reason) => _rejected.AddOrUpdate(reason, 1, (_, n) => n + 1);

    /// <summary>
    /// TCP keepalive, so a peer that vanished without a FIN or RST (a host that died, a dropped NAT entry) is found
    /// and its connection freed: idle time as configured, then probes every 10 s, three unanswered end it.
    /// </summary>
    private void KeepAlive(Socket s)
    {
        if (Options.TcpKeepAlive <= TimeSpan.Zero) return;
        try
        {
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, Math.Max(1, (int)Options.TcpKeepAlive.TotalSeconds));
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 10);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
        }
        catch (Exception ex) when (ex is SocketException or PlatformNotSupportedException)
        {
            // A platform without the per-socket settings keeps the system's keepalive timing.
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
                _clients?.Check();
                _upstream.Check();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task IdleSweepAsync()
    {
        if (Options.IdleTimeout <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Clamp(Options.IdleTimeout.TotalSeconds / 4, 0.05, 1)));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                long cutoff = Environment.TickCount64 - (long)Options.IdleTimeout.TotalMilliseconds;
                foreach (RelayConnection c in _open.Keys)
                {
                    if (c.LastActivity < cutoff && c.Upstream is not null)
                    {
                        Reject("IdleTimeout");
                        c.Abort();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
