using System;
using System.Buffers;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// A socket driven by an <see cref="EventLoop"/>: reads and writes are tried at once and, when the socket is not
/// ready, completed later on the loop's thread, where the awaiting code (SslStream, then the pump) goes on inline.
/// </summary>
/// <remarks>
/// Readiness is edge-triggered, so the stream remembers it: a read shorter than asked, or EAGAIN, means "drained"
/// until the next event, and a zero-byte read (the pump's way of waiting without a buffer) costs no system call at
/// all. At most one read and one write are pending at a time, as with any Stream SslStream sits on.
/// <para>
/// Writes made on the loop's thread are gathered and sent once that event has been handled: a pump that finds four
/// TLS records waiting re-encrypts them into four records, and they leave in one send() instead of four. Each send
/// wakes the receiving process, and on loopback its TCP receive path runs inside the sender's system call (perf:
/// a fifth of the relay's CPU in bulk was sock_def_readable), so fewer, larger sends are cheaper for both ends.
/// The gathered bytes live in a pooled buffer that goes back to the pool as soon as it is sent, so an idle
/// connection holds none.
/// </para>
/// </remarks>
internal sealed class LoopStream : Transport, IDirectTransport
{
    // Reads completed without waiting before the stream lets the other connections on its loop have a turn: a bulk
    // transfer whose socket never runs dry would otherwise keep the loop to itself. A relayed TLS record takes two
    // (the pump's zero-byte wait, then the record), so 64 is about 32 records, 512 KiB: near a millisecond of work.
    private const int ReadBudget = 64;

    // Gathered writes are sent once this much is waiting, or when the event that produced them has been handled.
    // It is also all a slow reader can make the relay hold for it: past this, a write waits for the socket to take
    // some (EPOLLOUT), so the pump stops reading the other side and TCP's own flow control pushes back on the
    // sender. Bulk A/B in one run against 512 KiB: see docs/benchmarks.md.
    internal const int GatherLimit = 64 * 1024;

    private readonly EventLoop _loop;
    private readonly int _fd;
    private readonly object _gate = new();
    private readonly Op _read = new();
    private readonly Op _write = new();
    private bool _readable;
    private bool _writable;
    private bool _closed;
    private bool _aborted;
    private int _syncReads;
    private byte[]? _out;             // gathered writes not yet sent: _out[_outStart.._outEnd]
    private int _outStart;
    private int _outEnd;
    private bool _flushQueued;        // on the loop's list of streams to send after the current event
    private bool _finAfterFlush;      // ShutdownSendAsync came while bytes were still gathered
    private SocketError _sendError;   // a gathered send failed; later writes report it

    internal LoopStream(EventLoop loop, Socket socket, ulong key)
    {
        _loop = loop;
        Socket = socket;
        Key = key;
        _fd = (int)socket.Handle;
    }

    public override Socket Socket { get; }

    internal ulong Key { get; }

    /// <summary>
    /// Whether the code awaiting this stream runs on the loop's thread when the socket becomes ready (the relay's
    /// fast path), or on a thread-pool thread. A connection whose client has not authenticated yet runs off the
    /// loop: its handshake builds a certificate chain and checks CRLs, and no unauthenticated client may hold up the
    /// thread that relays everyone else's traffic. Changed only while no read or write is pending.
    /// </summary>
    internal bool Inline { get; set; } = true;

    /// <summary>Bytes gathered here and not yet taken by the kernel.</summary>
    internal int Buffered
    {
        get
        {
            lock (_gate) return Queued;
        }
    }

    /// <summary>
    /// Run on the loop's thread once a read has waited for the peer for a while (see <see cref="EventLoop.WatchIdle"/>):
    /// the TLS layer above has nothing to work on, and the proxy frees OpenSSL's buffers there.
    /// </summary>
    internal Action? WhenIdle { get; set; }

    // The loop's own bookkeeping for WhenIdle, touched only on its thread: the sweep during which the read now
    // pending began to wait, and whether the loop is watching this stream (it stops once WhenIdle ran for a wait).
    internal int IdleSince;
    internal bool IdleWatched;

    /// <summary>Whether a read is waiting for the peer, and the stream is still open.</summary>
    internal bool ReadWaiting
    {
        get
        {
            lock (_gate) return !_closed && (_direct is not null ? !_readable : _read.Pending);
        }
    }

    private IDirectReady? _direct;

    public override IDirectTransport Direct => this;

    public object Driver => _loop;

    public bool OnDriverThread => _loop.OnLoopThread;

    public void Post(Action action) => _loop.Hop(action);

    public void BeginDirect(IDirectReady handler)
    {
        lock (_gate)
        {
            if (_read.Pending || _write.Pending) throw new InvalidOperationException("A read or write is pending on this connection.");
            _direct = handler;
        }
    }

    public void YieldDirect() => _loop.Defer(this);

    /// <remarks>At -1 the next event says when there is more, and the read counts as waiting for the idle sweep.</remarks>
    public int ReceiveDirect(Span<byte> buffer, out SocketError error)
    {
        lock (_gate)
        {
            error = _closed ? SocketError.OperationAborted : SocketError.Success;
            if (_closed) return 0;
            if (_readable)
            {
                error = TryReceive(buffer, SocketFlags.None, out int n);
                if (error == SocketError.Success) return n;
                if (error != SocketError.WouldBlock) return 0;
                error = SocketError.Success;
            }
        }

        if (WhenIdle is not null) _loop.WatchIdle(this);
        return -1;
    }

    /// <remarks>What this stream holds for a slow reader is <see cref="GatherLimit"/>: asked before each read of the other side, this keeps it there.</remarks>
    public int RoomDirect(int wanted)
    {
        lock (_gate)
        {
            if (!_closed && _sendError == SocketError.Success && GatherLimit - Queued < wanted) FlushLocked();
            return _closed || _sendError != SocketError.Success ? int.MaxValue : GatherLimit - Queued;
        }
    }

    /// <remarks>
    /// Gathered to send after the current event. Past <see cref="GatherLimit"/> only when the relay had to write
    /// without asking for room first (a record OpenSSL makes of its own: a key update's answer, close_notify).
    /// </remarks>
    public bool SendDirect(ReadOnlySpan<byte> data, out SocketError error)
    {
        lock (_gate)
        {
            error = _closed ? SocketError.OperationAborted : _sendError;
            if (error != SocketError.Success) return false;
            if (!GatherMakingRoom(data) && _sendError == SocketError.Success) Gather(data, pastLimit: true);
            error = _sendError;
            return error == SocketError.Success;
        }
    }

    public bool FlushDirect()
    {
        lock (_gate)
        {
            if (_closed) return true;
            FlushLocked();
            return (Queued == 0 && !_finAfterFlush) || _sendError != SocketError.Success;
        }
    }

    public void ShutdownSendDirect()
    {
        lock (_gate)
        {
            if (_closed) return;
            _finAfterFlush = true;
            FlushLocked();
        }
    }

    /// <summary>Connects without .NET's socket engine, trying each address of <paramref name="host"/> in turn.</summary>
    public static async Task<Transport> ConnectAsync(EventLoop loop, string host, int port, CancellationToken cancel)
    {
        IPAddress[] addresses = IPAddress.TryParse(host, out IPAddress? ip) ? new[] { ip } : await Dns.GetHostAddressesAsync(host, cancel).ConfigureAwait(false);
        SocketException? last = null;
        foreach (IPAddress address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, Blocking = false };
            LoopStream? stream = null;
            try
            {
                try
                {
                    socket.Connect(new IPEndPoint(address, port));
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
                {
                    // Expected: the connection completes in the background and the socket turns writable.
                }

                stream = loop.Attach(socket);
                await stream.WaitWritableAsync(cancel).ConfigureAwait(false);
                var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
                if (error == SocketError.Success) return stream;
                last = new SocketException((int)error);
            }
            catch (SocketException ex)
            {
                last = ex;
            }
            catch
            {
                if (stream is null) socket.Dispose(); else stream.Dispose();
                throw;
            }

            if (stream is null) socket.Dispose(); else stream.Dispose();
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }


    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => Receive(buffer, SocketFlags.None, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Waits for data and copies it without taking it off the socket.</summary>
    public override ValueTask<int> PeekAsync(Memory<byte> buffer, CancellationToken cancel) => Receive(buffer, SocketFlags.Peek, cancel);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => Send(buffer, waitOnly: false, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private ValueTask WaitWritableAsync(CancellationToken cancellationToken) => Send(default, waitOnly: true, cancellationToken);

    // Nothing to wait for on the loop's own thread: blocking it would stop every connection it serves.
    public override int Read(byte[] buffer, int offset, int count) => NotOnLoop().ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => NotOnLoop().WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;



    private LoopStream NotOnLoop() => _loop.OnLoopThread ? throw new InvalidOperationException("A blocking call on the relay loop's own thread would stall it.") : this;

    private ValueTask<int> Receive(Memory<byte> buffer, SocketFlags flags, CancellationToken cancel)
    {
        if (cancel.IsCancellationRequested) return ValueTask.FromCanceled<int>(cancel);
        short token;
        bool defer;
        lock (_gate)
        {
            if (_closed) return ValueTask.FromException<int>(Closed(_aborted));
            if (_read.Pending) return ValueTask.FromException<int>(new InvalidOperationException("A read is already pending on this connection."));
            if (_readable && _syncReads < ReadBudget)
            {
                _syncReads++;
                if (buffer.IsEmpty) return new ValueTask<int>(0);
                SocketError error = TryReceive(buffer.Span, flags, out int n);
                if (error == SocketError.Success) return new ValueTask<int>(n);
                if (error != SocketError.WouldBlock) return ValueTask.FromException<int>(Failed(error));
            }

            // Still readable here means the budget ran out: go on after the loop's other connections.
            defer = _readable;
            _syncReads = 0;
            token = _read.Arm(buffer, flags, waitOnly: buffer.IsEmpty, Inline);
            Register(_read, cancel);
        }

        if (defer) _loop.Defer(this);
        // Any read that has to wait, not only the pump's zero-byte one: when the socket still looked readable, the
        // zero-byte read returned at once and it is the next read that waits. The loop runs WhenIdle if this wait
        // lasts (SslStream hands OpenSSL whole records only, so no record is then part-read in OpenSSL).
        else if (WhenIdle is not null && _loop.OnLoopThread) _loop.WatchIdle(this);
        return new ValueTask<int>(_read, token);
    }

    private ValueTask Send(ReadOnlyMemory<byte> data, bool waitOnly, CancellationToken cancel)
    {
        if (cancel.IsCancellationRequested) return ValueTask.FromCanceled(cancel);
        short token;
        lock (_gate)
        {
            if (_closed) return ValueTask.FromException(Closed(_aborted));
            if (_sendError != SocketError.Success) return ValueTask.FromException(Failed(_sendError));
            if (_write.Pending) return ValueTask.FromException(new InvalidOperationException("A write is already pending on this connection."));
            if (waitOnly)
            {
                if (_writable && Queued == 0) return default;
            }
            else if (Queued == 0 && !_loop.OnLoopThread)
            {
                // Nothing gathered and no end of event to wait for: straight out, as a plain socket would.
                if (_writable)
                {
                    SocketError error = TrySend(ref data);
                    if (error is not SocketError.Success and not SocketError.WouldBlock) return ValueTask.FromException(Failed(error));
                    if (data.IsEmpty) return default;
                }
            }
            else
            {
                if (!GatherMakingRoom(data.Span))
                {
                    if (_sendError != SocketError.Success) return ValueTask.FromException(Failed(_sendError));
                    // Full and the socket cannot take more: this write waits for room (EPOLLOUT).
                    token = _write.Arm(data, waitOnly: false, Inline);
                    Register(_write, cancel);
                    return new ValueTask(_write, token);
                }

                return default;
            }

            token = _write.Arm(data, waitOnly, Inline);
            Register(_write, cancel);
        }

        return new ValueTask(_write, token);
    }

    /// <summary>
    /// Ends the sending direction (FIN) once every gathered byte is out; completes when it has been sent. Use this
    /// rather than Socket.Shutdown, which would overtake bytes still gathered here.
    /// </summary>
    public override ValueTask ShutdownSendAsync()
    {
        short token;
        lock (_gate)
        {
            if (_closed) return ValueTask.FromException(Closed(_aborted));
            if (_write.Pending) return ValueTask.FromException(new InvalidOperationException("A write is already pending on this connection."));
            _finAfterFlush = true;
            FlushLocked();
            // The peer is gone (a reset, say): there is nobody left to send the FIN to.
            if (_sendError != SocketError.Success) return ValueTask.FromException(Failed(_sendError));
            if (!_finAfterFlush) return default;
            token = _write.Arm(ReadOnlyMemory<byte>.Empty, waitOnly: true, Inline);
        }

        return new ValueTask(_write, token);
    }

    private int Queued => _outEnd - _outStart;

    /// <summary>Copies <paramref name="data"/> behind what is already gathered, if it fits (or regardless, <paramref name="pastLimit"/>).</summary>
    private bool Gather(ReadOnlySpan<byte> data, bool pastLimit = false)
    {
        int queued = Queued;
        if (queued + data.Length > GatherLimit && !pastLimit) return false;
        _out ??= ArrayPool<byte>.Shared.Rent(Math.Max(GatherLimit, data.Length));
        if (_outEnd + data.Length > _out.Length)
        {
            byte[] into = queued + data.Length > _out.Length ? ArrayPool<byte>.Shared.Rent(queued + data.Length) : _out;
            _out.AsSpan(_outStart, queued).CopyTo(into);
            if (into != _out) ArrayPool<byte>.Shared.Return(_out);
            (_out, _outStart, _outEnd) = (into, 0, queued);
        }

        data.CopyTo(_out.AsSpan(_outEnd));
        _outEnd += data.Length;
        if (_loop.OnLoopThread)
        {
            if (!_flushQueued)
            {
                _flushQueued = true;
                _loop.FlushAfterEvent(this);
            }
        }
        else
        {
            FlushLocked();
        }

        return true;
    }

    /// <summary>
    /// Gathers <paramref name="data"/>, sending what is gathered first when it does not fit. False when it still does
    /// not (the socket is full) or the send failed (<see cref="_sendError"/>).
    /// </summary>
    private bool GatherMakingRoom(ReadOnlySpan<byte> data)
    {
        if (Gather(data)) return true;
        FlushLocked();
        return _sendError == SocketError.Success && Gather(data);
    }

    /// <summary>Sends what is gathered, as far as the socket takes it; then the FIN, if one waits.</summary>
    private void FlushLocked()
    {
        while (Queued > 0 && _writable && _sendError == SocketError.Success)
        {
            int n = Socket.Send(_out.AsSpan(_outStart, Queued), SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                _writable = false;
            }
            else if (error != SocketError.Success)
            {
                _sendError = error;
                _outStart = _outEnd;
            }
            else
            {
                _outStart += n;
                // A short write means the send buffer is full; EPOLLOUT says when it has room again.
                if (Queued > 0) _writable = false;
            }
        }

        if (Queued > 0) return;
        ReleaseOutput();
        if (_finAfterFlush && _sendError == SocketError.Success)
        {
            _finAfterFlush = false;
            try
            {
                Socket.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException ex)
            {
                _sendError = ex.SocketErrorCode;
            }
        }
    }

    private void ReleaseOutput()
    {
        if (_out is not null) ArrayPool<byte>.Shared.Return(_out);
        (_out, _outStart, _outEnd) = (null, 0, 0);
    }

    /// <summary>The loop has finished handling an event: what it gathered here goes out now.</summary>
    internal void FlushGathered()
    {
        lock (_gate)
        {
            _flushQueued = false;
            if (!_closed) FlushLocked();
        }
    }

    /// <summary>The loop saw events for this socket (or deferred it, with no flags): go on with what waits.</summary>
    internal void OnReady(uint events)
    {
        Op? read = null, write = null;
        int received = 0;
        Exception? readError = null, writeError = null;
        IDirectReady? direct;
        lock (_gate)
        {
            if (_closed) return;
            if ((events & (Epoll.In | Epoll.RdHup | Epoll.Hup | Epoll.Err)) != 0) _readable = true;
            if ((events & (Epoll.Out | Epoll.Hup | Epoll.Err)) != 0) _writable = true;
            direct = _direct;
            if (direct is not null)
            {
                if (_writable) FlushLocked();
            }
            else if (_read.Pending && _readable)
            {
                SocketError error = _read.WaitOnly ? SocketError.Success : TryReceive(_read.Buffer.Span, _read.Flags, out received);
                if (error != SocketError.WouldBlock)
                {
                    readError = error == SocketError.Success ? null : Failed(error);
                    read = _read.Take();
                }
            }

            if (_writable && direct is null)
            {
                FlushLocked();
                if (_write.Pending)
                {
                    // A connect that completed or a FIN that waited for the gathered bytes (wait-only), or a write
                    // that found the gathered bytes full and joins them now that some have gone.
                    SocketError error = _sendError != SocketError.Success ? _sendError
                        : _write.WaitOnly ? (Queued > 0 || _finAfterFlush ? SocketError.WouldBlock : SocketError.Success)
                        : Gather(_write.Data.Span) ? SocketError.Success : SocketError.WouldBlock;
                    if (error != SocketError.WouldBlock)
                    {
                        writeError = error == SocketError.Success ? null : Failed(error);
                        write = _write.Take();
                    }
                }
            }
        }

        // Outside the lock: these run the awaiting code, which may well come straight back to this stream.
        direct?.OnReady();
        read?.Finish(received, readError);
        write?.Finish(0, writeError);
    }

    private SocketError TryReceive(Span<byte> buffer, SocketFlags flags, out int n)
    {
        n = Socket.Receive(buffer, flags, out SocketError error);
        // Shorter than asked: the socket is drained, and the next arrival is a new edge. End of stream (0) stays
        // readable, so every later read sees it too.
        if (error == SocketError.WouldBlock || (error == SocketError.Success && n > 0 && n < buffer.Length && flags == SocketFlags.None)) _readable = false;
        return error;
    }

    private SocketError TrySend(ref ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = Socket.Send(data.Span, SocketFlags.None, out SocketError error);
            if (error != SocketError.Success)
            {
                if (error == SocketError.WouldBlock) _writable = false;
                return error;
            }

            data = data[n..];
            if (!data.IsEmpty)
            {
                // A short write means the send buffer is full; EPOLLOUT says when it has room again.
                _writable = false;
                return SocketError.WouldBlock;
            }
        }

        return SocketError.Success;
    }

    private void Register(Op op, CancellationToken cancel)
    {
        if (!cancel.CanBeCanceled) return;
        // The version ties the registration to this one operation, not to a later one reusing the Op.
        CancellationTokenRegistration registration = cancel.UnsafeRegister(static (state, token) => ((CancelState)state!).Fire(token), new CancelState(this, op, op.Version));
        // The token may have fired inside UnsafeRegister and finished the operation already (the lock is reentrant).
        if (op.Pending) op.Cancellation = registration;
    }

    private void Cancel(Op op, short version, CancellationToken token)
    {
        lock (_gate)
        {
            if (!op.Pending || op.Version != version) return;
            op.Take();
        }

        op.Finish(0, new OperationCanceledException(token));
    }

    private sealed record CancelState(LoopStream Stream, Op Op, short Version)
    {
        public void Fire(CancellationToken token) => Stream.Cancel(Op, Version, token);
    }

    /// <summary>Ends the connection at once with a reset, failing whatever waits on it.</summary>
    public override void Abort() => Close(abortive: true);

    public override Task<Transport> ConnectBesideAsync(string host, int port, CancellationToken cancel) => ConnectAsync(_loop, host, port, cancel);

    /// <summary>Turns <see cref="Inline"/> on and moves the caller to the loop's thread, which drives this connection from now on.</summary>
    public override LoopHop BeginRelay()
    {
        // No read or write is pending here (the handshakes are over, the pumps not started), so Inline may change.
        Inline = true;
        return _loop.SwitchTo();
    }

    public override bool OneThreadDrives => true;

    public override void RunWhenIdle(Action action) => WhenIdle = action;

    protected override void Dispose(bool disposing)
    {
        if (disposing) Close(abortive: false);
        base.Dispose(disposing);
    }

    private void Close(bool abortive)
    {
        Op? read = null, write = null;
        lock (_gate)
        {
            if (_closed) return;
            // A graceful close sends what it can of the gathered bytes (an alert after a failed handshake, say).
            if (!abortive) FlushLocked();
            ReleaseOutput();
            _closed = true;
            _aborted = abortive;
            if (_read.Pending) read = _read.Take();
            if (_write.Pending) write = _write.Take();
        }

        _loop.Detach(this, _fd);
        if (abortive) ResetOnClose(Socket);
        Socket.Dispose();
        Exception error = Closed(abortive);
        read?.Finish(0, error);
        write?.Finish(0, error);
        _direct?.OnClosed();
    }

    private static Exception Closed(bool abortive) =>
        abortive ? new IOException("The connection was aborted.") : new ObjectDisposedException(nameof(LoopStream));

    private static IOException Failed(SocketError error)
    {
        var inner = new SocketException((int)error);
        return new IOException(inner.Message, inner);
    }

    /// <summary>One direction's pending operation; reused, as SslStream awaits each before it starts the next.</summary>
    private sealed class Op : IValueTaskSource<int>, IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<int> _core; // continuations run inline, on whichever thread finishes, unless armed otherwise

        public bool Pending { get; private set; }
        public bool WaitOnly { get; private set; }
        public Memory<byte> Buffer { get; private set; }
        public SocketFlags Flags { get; private set; }
        public ReadOnlyMemory<byte> Data { get; set; }
        public CancellationTokenRegistration Cancellation { get; set; }

        public short Version => _core.Version;

        public short Arm(Memory<byte> buffer, SocketFlags flags, bool waitOnly, bool inline)
        {
            Buffer = buffer;
            Flags = flags;
            return Arm(waitOnly, inline);
        }

        public short Arm(ReadOnlyMemory<byte> data, bool waitOnly, bool inline)
        {
            Data = data;
            return Arm(waitOnly, inline);
        }

        private short Arm(bool waitOnly, bool inline)
        {
            _core.Reset();
            _core.RunContinuationsAsynchronously = !inline;
            WaitOnly = waitOnly;
            Pending = true;
            return _core.Version;
        }

        /// <summary>Under the stream's lock: makes this caller the one that finishes it.</summary>
        public Op Take()
        {
            Pending = false;
            return this;
        }

        public void Finish(int result, Exception? error)
        {
            Cancellation.Unregister();
            Cancellation = default;
            Buffer = default;
            Data = default;
            if (error is null) _core.SetResult(result); else _core.SetException(error);
        }

        public int GetResult(short token) => _core.GetResult(token);

        void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) => _core.OnCompleted(continuation, state, token, flags);
    }
}
