using System;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// The bytes under one of the relay's TLS connections, whichever engine moves them: the relay's own epoll loops
/// (<see cref="LoopStream"/>) or .NET's socket engine (<see cref="SocketTransport"/>: off Linux, or with
/// ETCDSECURE_PROXY_EVENT_LOOP=0). The relay works with this and never asks which one it has.
/// </summary>
internal abstract class Transport : DuplexStream
{
    public abstract Socket Socket { get; }

    /// <summary>Reads without taking the bytes (the relay looks at a client's first byte before TLS).</summary>
    public abstract ValueTask<int> PeekAsync(Memory<byte> buffer, CancellationToken cancel);

    /// <summary>Ends the sending direction (FIN) after everything written so far.</summary>
    public abstract ValueTask ShutdownSendAsync();

    /// <summary>Ends the connection at once with a reset, failing whatever waits on it.</summary>
    public abstract void Abort();

    /// <summary>Opens a connection driven the same way as this one (on its loop, for a loop stream), for the member side of a client.</summary>
    public abstract Task<Transport> ConnectBesideAsync(string host, int port, CancellationToken cancel);

    /// <summary>
    /// The client is authenticated: from here on the code awaiting this connection (and the member connection opened
    /// beside it) may run where the engine completes its I/O. Continues the caller there.
    /// </summary>
    public virtual LoopHop BeginRelay() => default;

    /// <summary>
    /// Whether one thread alone runs every read and write of this connection, so that OpenSSL's buffer calls
    /// (<see cref="OpenSslBuffers"/>) are safe on it. .NET's engine may run a read and a write at once.
    /// </summary>
    public virtual bool OneThreadDrives => false;

    /// <summary>Runs <paramref name="action"/> on the driving thread each time a read has to wait; only where <see cref="OneThreadDrives"/>.</summary>
    public virtual void RunWhenIdle(Action action) => throw new NotSupportedException("Only a connection that one thread drives runs code when idle.");

    /// <summary>This connection's reads and writes without awaits, on its driving thread; null where the engine has none (.NET's).</summary>
    public virtual IDirectTransport? Direct => null;

    /// <summary>Makes closing <paramref name="socket"/> send a reset (RST) instead of a FIN.</summary>
    protected static void ResetOnClose(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }
}

/// <summary>
/// A connection the relay reads and writes on the one thread that drives it, as that thread reports it ready, with no
/// awaits: what relays an authenticated connection record by record.
/// </summary>
internal interface IDirectTransport
{
    /// <summary>Whatever drives this connection: two connections with the same driver are run by the same thread.</summary>
    object Driver { get; }

    bool OnDriverThread { get; }

    /// <summary>Runs <paramref name="action"/> once on the driving thread (or off it, when that has stopped).</summary>
    void Post(Action action);

    /// <summary>From here on the connection's events go to <paramref name="handler"/>, on the driving thread. Only with no read or write pending.</summary>
    void BeginDirect(IDirectReady handler);

    /// <summary>Lets the driver's other connections have a turn; <see cref="IDirectReady.OnReady"/> runs again after them.</summary>
    void YieldDirect();

    /// <summary>Reads what the socket has, without waiting: the count, 0 at its end (or <paramref name="error"/>), -1 when it has nothing now.</summary>
    int ReceiveDirect(Span<byte> buffer, out SocketError error);

    /// <summary>
    /// How many bytes more may be written without going past what the connection holds for a slow reader, having
    /// sent what waits when that is fewer than <paramref name="wanted"/>; while it is, an event says when there is
    /// room. <see cref="int.MaxValue"/> once the connection has failed (the write says so).
    /// </summary>
    int RoomDirect(int wanted);

    /// <summary>Takes <paramref name="data"/> to send, in order (all of it); false when the connection has failed (<paramref name="error"/>).</summary>
    bool SendDirect(ReadOnlySpan<byte> data, out SocketError error);

    /// <summary>Sends what waits, now; true once nothing is left to send (the FIN included) or nothing can be sent any more.</summary>
    bool FlushDirect();

    /// <summary>The FIN, once everything taken so far is out.</summary>
    void ShutdownSendDirect();
}

/// <summary>Raised by an <see cref="IDirectTransport"/> on its driving thread (<see cref="OnClosed"/> on any).</summary>
internal interface IDirectReady
{
    void OnReady();

    void OnClosed();
}

/// <summary>A connection on .NET's own socket engine; owns its socket.</summary>
internal sealed class SocketTransport : Transport
{
    private readonly NetworkStream _stream;

    public SocketTransport(Socket socket)
    {
        Socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public override Socket Socket { get; }

    public static async Task<Transport> ConnectAsync(string host, int port, CancellationToken cancel)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancel).ConfigureAwait(false);
            return new SocketTransport(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public override Task<Transport> ConnectBesideAsync(string host, int port, CancellationToken cancel) => ConnectAsync(host, port, cancel);

    public override ValueTask<int> PeekAsync(Memory<byte> buffer, CancellationToken cancel) => Socket.ReceiveAsync(buffer, SocketFlags.Peek, cancel);

    public override ValueTask ShutdownSendAsync()
    {
        Socket.Shutdown(SocketShutdown.Send);
        return default;
    }

    public override void Abort()
    {
        ResetOnClose(Socket);
        Socket.Dispose();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _stream.ReadAsync(buffer, cancellationToken);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _stream.ReadAsync(buffer, offset, count, cancellationToken);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _stream.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _stream.WriteAsync(buffer, offset, count, cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => _stream.Read(buffer, offset, count);
    public override void Write(byte[] buffer, int offset, int count) => _stream.Write(buffer, offset, count);
    public override void Flush() => _stream.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _stream.FlushAsync(cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing) _stream.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// Where the relay's connections come from: accepted clients and the members' probes, on the relay's own event loops
/// when this platform has them, otherwise on .NET's socket engine.
/// </summary>
internal sealed class TransportEngine : IDisposable
{
    private readonly EventLoopGroup? _loops;

    private TransportEngine(EventLoopGroup? loops, string? unavailable)
    {
        _loops = loops;
        EventLoopUnavailable = unavailable;
    }

    /// <summary>As many loops as cores (as HAProxy runs as many threads), or .NET's engine and why.</summary>
    public static TransportEngine Create(int loops, Action<string> fault)
    {
        EventLoopGroup? group = EventLoopGroup.TryCreate(loops, fault, out string? why);
        return new TransportEngine(group, why);
    }

    /// <summary>Why the relay runs on .NET's socket engine; null when it runs on its own loops.</summary>
    public string? EventLoopUnavailable { get; }

    public int EventLoops => _loops?.Count ?? 0;

    /// <summary>Bytes written by the relay and not yet taken by the kernel (only the loops gather writes).</summary>
    public long BufferedBytes => _loops?.BufferedBytes ?? 0;

    public string Description => _loops is { } loops ? $"relaying on {loops.Count} event loop thread(s)" : $"relaying on .NET's socket engine: {EventLoopUnavailable}";

    /// <summary>
    /// Takes an accepted client. Until it is authenticated (<see cref="Transport.BeginRelay"/>) the code awaiting
    /// it runs off the loop: its handshake builds a certificate chain and checks CRLs, and no unauthenticated client may
    /// hold up the thread that relays everyone else's traffic.
    /// </summary>
    public Transport Accept(Socket client) => _loops is { } loops ? loops.Next().Attach(client, inline: false) : new SocketTransport(client);

    /// <summary>
    /// A connection of its own (the members' probes). On the loops because through .NET's engine every probe step
    /// wakes thread-pool workers, which spin before they sleep again (measured: most of an idle proxy's CPU).
    /// </summary>
    public async Task<Stream> ConnectAsync(string host, int port, CancellationToken cancel) =>
        _loops is { } loops ? await LoopStream.ConnectAsync(loops.Next(), host, port, cancel).ConfigureAwait(false) : await SocketTransport.ConnectAsync(host, port, cancel).ConfigureAwait(false);

    public void Dispose() => _loops?.Dispose();
}
