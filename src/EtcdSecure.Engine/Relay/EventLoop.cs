using System;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// A few threads, each waiting in its own epoll set, that run the relay's socket I/O and its continuations
/// themselves, the way HAProxy and nginx do.
/// </summary>
/// <remarks>
/// Why not .NET's own socket engine: it hands every readiness event from its epoll thread to a thread-pool worker,
/// so each request and each answer through the relay costs two thread wake-ups. Measured with perf stat on this
/// relay (etcd Range load): about 5 context switches per request against HAProxy's 0.5, and twice its CPU per
/// request. Here the thread that sees the event reads the socket and runs SslStream and the pump on the spot.
/// Sockets attached to a loop are never used with .NET's async socket methods, so .NET never registers them in its
/// own epoll set and wakes no second thread for them.
/// </remarks>
internal sealed class EventLoopGroup : IDisposable
{
    private readonly EventLoop[] _loops;
    private int _next = -1;

    private EventLoopGroup(EventLoop[] loops) => _loops = loops;

    /// <summary>Starts <paramref name="count"/> loops, or says why this platform cannot have them.</summary>
    public static EventLoopGroup? TryCreate(int count, Action<string> fault, out string? why)
    {
        why = Unsupported();
        if (why is not null) return null;
        var loops = new EventLoop[count];
        try
        {
            for (int i = 0; i < count; i++) loops[i] = new EventLoop(i, fault);
        }
        catch (Exception ex) when (ex is SocketException or DllNotFoundException or EntryPointNotFoundException)
        {
            foreach (EventLoop? l in loops) l?.Dispose();
            why = $"epoll is not usable here: {ex.Message}";
            return null;
        }

        return new EventLoopGroup(loops);
    }

    private static string? Unsupported()
    {
        if (!OperatingSystem.IsLinux()) return "the relay's own event loop needs Linux (epoll)";
        if (EnvironmentSwitch.Set("ETCDSECURE_PROXY_EVENT_LOOP", "0") is { } off) return off;
        if (Epoll.EventSize == 0) return $"no epoll_event layout known for {RuntimeInformation.ProcessArchitecture}";
        return null;
    }

    public int Count => _loops.Length;

    /// <summary>Bytes written by the relay and not yet taken by the kernel, over every connection.</summary>
    public long BufferedBytes => _loops.Sum(l => l.BufferedBytes);

    /// <summary>Round robin: one connection's two sockets go to the same loop, so its pumps never cross threads.</summary>
    public EventLoop Next() => _loops[(int)((uint)Interlocked.Increment(ref _next) % (uint)_loops.Length)];

    public void Dispose()
    {
        foreach (EventLoop l in _loops) l.Dispose();
    }
}

/// <summary>One thread and its epoll set.</summary>
internal sealed class EventLoop : IDisposable
{
    private const int MaxEvents = 256;
    private const ulong WakeKey = 0;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly Action<string> _fault;
    private readonly ConcurrentDictionary<ulong, LoopStream> _streams = new();
    private readonly ConcurrentQueue<LoopStream> _deferred = new();
    private readonly ConcurrentQueue<Action> _posted = new();
    private readonly List<LoopStream> _gathered = new(); // only ever touched on the loop's thread
    private readonly List<LoopStream> _idleWatch = new(); // likewise
    private int _sweeps;
    private long _nextSweep;
    private readonly object _fdGate = new();
    private long _nextKey;
    private volatile bool _stopping;
    private bool _closed; // under _fdGate: once the fds are closed their numbers may belong to someone else

    public EventLoop(int index, Action<string> fault)
    {
        _fault = fault;
        _epoll = Epoll.Check(Epoll.epoll_create1(Epoll.CloExec));
        try
        {
            _wake = Epoll.Check(Epoll.eventfd(0, Epoll.NonBlock | Epoll.CloExec));
            Epoll.Check(Epoll.Control(_epoll, Epoll.Add, _wake, Epoll.In, WakeKey));
        }
        catch
        {
            if (_wake > 0) Epoll.close(_wake);
            Epoll.close(_epoll);
            throw;
        }

        _thread = new Thread(Run) { IsBackground = true, Name = $"EtcdSecure relay loop {index}" };
        _thread.Start();
    }

    public bool OnLoopThread => Thread.CurrentThread == _thread;

    public long BufferedBytes => _streams.Values.Sum(s => (long)s.Buffered);

    /// <summary>Takes over a connected (or connecting) socket: non-blocking, edge-triggered, owned by the stream.</summary>
    /// <param name="inline">Whether the stream's awaiting code runs on this loop's thread (see <see cref="LoopStream.Inline"/>).</param>
    public LoopStream Attach(Socket socket, bool inline = true)
    {
        socket.Blocking = false;
        ulong key = (ulong)Interlocked.Increment(ref _nextKey);
        var stream = new LoopStream(this, socket, key) { Inline = inline };
        _streams[key] = stream;
        lock (_fdGate)
        {
            int rc = _closed || _stopping ? -1 : Epoll.Control(_epoll, Epoll.Add, (int)socket.Handle, Epoll.In | Epoll.Out | Epoll.RdHup | Epoll.EdgeTriggered, key);
            if (rc < 0)
            {
                _streams.TryRemove(key, out _);
                throw _closed || _stopping ? new ObjectDisposedException(nameof(EventLoop)) : new SocketException(Marshal.GetLastPInvokeError());
            }
        }

        return stream;
    }

    /// <summary>Called once by a closing stream, before its socket is closed.</summary>
    internal void Detach(LoopStream stream, int fd)
    {
        if (!_streams.TryRemove(stream.Key, out _)) return;
        // A stale event that is already on its way carries a key nothing maps to any more, so it is ignored.
        lock (_fdGate)
        {
            if (!_closed) Epoll.Control(_epoll, Epoll.Delete, fd, 0, 0);
        }
    }

    /// <summary>Lets other connections on this loop run before <paramref name="stream"/> goes on (see LoopStream's read budget).</summary>
    internal void Defer(LoopStream stream)
    {
        _deferred.Enqueue(stream);
        if (!OnLoopThread) Wake();
    }

    private static readonly byte[] One = BitConverter.GetBytes(1UL);

    /// <summary>
    /// Continues the awaiting code on this loop's thread: code that must run there (a connection's pumps, which free
    /// OpenSSL's buffers only on that thread) awaits this after work that may have finished on another thread.
    /// </summary>
    /// <remarks>
    /// The loop itself runs the continuation. A task that the loop completed would not do: when the loop completed it
    /// before the caller reached its await (the caller's thread descheduled in between, as under load or while the
    /// first call compiles), the caller went on on its own thread, started the pumps there, and their reads, armed
    /// off the loop, were never watched for idleness.
    /// </remarks>
    public LoopHop SwitchTo() => new(this);

    /// <summary>Runs <paramref name="continuation"/> once, on this loop's thread, or off it if the loop has stopped.</summary>
    internal void Hop(Action continuation)
    {
        var once = new Once(continuation);
        _posted.Enqueue(once.Run);
        Wake();
        // A loop that is stopping may have drained its queue already: whichever comes first runs it, and off the
        // loop the awaiting code finds out (LoopHop.GetResult throws).
        if (_stopping) ThreadPool.UnsafeQueueUserWorkItem(static o => o.Run(), once, preferLocal: false);
    }

    private sealed class Once(Action action)
    {
        private int _ran;

        public void Run()
        {
            if (Interlocked.Exchange(ref _ran, 1) == 0) action();
        }
    }

    /// <summary>
    /// From the loop's thread: a read of <paramref name="stream"/> waits for the peer. If it still waits a full sweep
    /// period later (so after 0.5 to 1 s), the loop runs the stream's WhenIdle.
    /// </summary>
    /// <remarks>
    /// Not at once: a connection with one request in flight falls idle after every answer, and freeing OpenSSL's
    /// buffers each time, to allocate them again for the next record, cost about a tenth of the relay's CPU per
    /// request (etcd Range load, 16 clients). A connection that is really idle gives them back within a second.
    /// </remarks>
    internal void WatchIdle(LoopStream stream)
    {
        stream.IdleSince = _sweeps;
        if (stream.IdleWatched) return;
        stream.IdleWatched = true;
        if (_idleWatch.Count == 0) _nextSweep = Environment.TickCount64 + IdleSweepMs;
        _idleWatch.Add(stream);
    }

    private const int IdleSweepMs = 500;

    /// <summary>Runs WhenIdle for the watched streams whose read has waited since before the last sweep.</summary>
    private void SweepIdle()
    {
        int sweep = _sweeps++;
        _nextSweep = Environment.TickCount64 + IdleSweepMs;
        for (int i = _idleWatch.Count - 1; i >= 0; i--)
        {
            LoopStream s = _idleWatch[i];
            bool waiting = s.ReadWaiting;
            bool due = waiting && s.IdleSince < sweep;
            if (due && s.WhenIdle is { } idle) Run(idle);

            // Kept while waiting its turn, or busy (its next wait starts the count again). One that gave its buffers
            // back for this wait, or closed, is watched again when a read next has to wait.
            if (due || (!waiting && !_streams.ContainsKey(s.Key)))
            {
                s.IdleWatched = false;
                _idleWatch[i] = _idleWatch[^1];
                _idleWatch.RemoveAt(_idleWatch.Count - 1);
            }
        }
    }

    /// <summary>From the loop's thread: <paramref name="stream"/> has gathered writes to send once the current event is handled.</summary>
    internal void FlushAfterEvent(LoopStream stream) => _gathered.Add(stream);

    private void Wake()
    {
        lock (_fdGate)
        {
            if (!_closed) Epoll.write(_wake, One, 8);
        }
    }

    private void Run()
    {
        byte[] events = new byte[MaxEvents * Epoll.EventSize];
        byte[] drain = new byte[8];
        while (!_stopping)
        {
            int n = Epoll.epoll_wait(_epoll, events, MaxEvents, !_deferred.IsEmpty || !_posted.IsEmpty ? 0 : _idleWatch.Count == 0 ? -1 : (int)Math.Clamp(_nextSweep - Environment.TickCount64, 0, IdleSweepMs));
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Epoll.Eintr) continue;
                _fault($"relay loop stopped: epoll_wait failed with errno {errno}");
                break;
            }

            for (int i = 0; i < n; i++)
            {
                (uint flags, ulong key) = Epoll.Read(events, i);
                if (key == WakeKey)
                {
                    Epoll.read(_wake, drain, 8);
                }
                else if (_streams.TryGetValue(key, out LoopStream? s))
                {
                    Dispatch(s, flags);
                }
            }

            // Only those deferred before this pass: a stream that defers again waits for the next one.
            for (int pending = _deferred.Count; pending > 0 && _deferred.TryDequeue(out LoopStream? s); pending--) Dispatch(s, 0);
            for (int pending = _posted.Count; pending > 0 && _posted.TryDequeue(out Action? a); pending--) Run(a);
            if (_idleWatch.Count > 0 && Environment.TickCount64 >= _nextSweep) SweepIdle();
        }

        // Whatever is still attached belongs to a proxy that is going away: fail its pending reads and writes.
        foreach (LoopStream s in _streams.Values) s.Abort();
        while (_posted.TryDequeue(out Action? a)) Run(a);
        // Closed here, by the loop itself, so that no epoll_wait can still be using them.
        lock (_fdGate)
        {
            _closed = true;
            Epoll.close(_wake);
            Epoll.close(_epoll);
        }
    }

    private void Run(Action posted)
    {
        try
        {
            posted();
            for (int i = 0; i < _gathered.Count; i++) _gathered[i].FlushGathered();
            _gathered.Clear();
        }
        catch (Exception ex)
        {
            _fault($"relay loop: {ex.GetType().Name}: {ex.Message}");
            foreach (LoopStream g in _gathered) g.FlushGathered();
            _gathered.Clear();
        }
    }

    private void Dispatch(LoopStream s, uint flags)
    {
        try
        {
            s.OnReady(flags);
            // A stream's gathered bytes cannot be lost to an exception below: each one is still on the list.
            for (int i = 0; i < _gathered.Count; i++) _gathered[i].FlushGathered();
            _gathered.Clear();
        }
        catch (Exception ex)
        {
            // Continuations run here; one that throws must not take the loop and every other connection with it.
            _fault($"relay loop: {ex.GetType().Name}: {ex.Message}");
            s.Abort();
            foreach (LoopStream g in _gathered) g.FlushGathered();
            _gathered.Clear();
        }
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        Wake();
        // From the loop's own thread (a continuation that stops the proxy), the loop ends once that returns.
        if (!OnLoopThread) _thread.Join(TimeSpan.FromSeconds(5));
    }
}

/// <summary>The few libc calls the loop needs, with epoll_event read and written by hand: it is packed on x86-64 only.</summary>
internal static class Epoll
{
    public const int CloExec = 0x80000;   // O_CLOEXEC, EPOLL_CLOEXEC, EFD_CLOEXEC
    public const int NonBlock = 0x800;    // EFD_NONBLOCK
    public const int Add = 1, Delete = 2;
    public const uint In = 0x001, Out = 0x004, Err = 0x008, Hup = 0x010, RdHup = 0x2000, EdgeTriggered = 1u << 31;
    public const int Eintr = 4;

    /// <summary>sizeof(struct epoll_event): 12 on x86-64 (packed), 16 on arm64; 0 where this code does not know it.</summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 12,
        Architecture.Arm64 => 16,
        _ => 0,
    };

    private static int DataOffset => EventSize == 12 ? 4 : 8;

    public static int Check(int rc) => rc >= 0 ? rc : throw new SocketException(Marshal.GetLastPInvokeError());

    public static int Control(int epfd, int op, int fd, uint flags, ulong key)
    {
        byte[] ev = new byte[EventSize];
        BinaryPrimitives.WriteUInt32LittleEndian(ev, flags);
        BinaryPrimitives.WriteUInt64LittleEndian(ev.AsSpan(DataOffset), key);
        return epoll_ctl(epfd, op, fd, ev);
    }

    public static (uint Flags, ulong Key) Read(byte[] events, int i)
    {
        ReadOnlySpan<byte> ev = events.AsSpan(i * EventSize, EventSize);
        return (BinaryPrimitives.ReadUInt32LittleEndian(ev), BinaryPrimitives.ReadUInt64LittleEndian(ev[DataOffset..]));
    }

#pragma warning disable SA1300, IDE1006 // the C names
    [DllImport("libc", SetLastError = true)]
    public static extern int epoll_create1(int flags);

    [DllImport("libc", SetLastError = true)]
    public static extern int epoll_ctl(int epfd, int op, int fd, byte[] ev);

    [DllImport("libc", SetLastError = true)]
    public static extern int epoll_wait(int epfd, byte[] events, int maxevents, int timeout);

    [DllImport("libc", SetLastError = true)]
    public static extern int eventfd(uint initval, int flags);

    [DllImport("libc", SetLastError = true)]
    public static extern nint read(int fd, byte[] buf, nint count);

    [DllImport("libc", SetLastError = true)]
    public static extern nint write(int fd, byte[] buf, nint count);

    [DllImport("libc", SetLastError = true)]
    public static extern int close(int fd);
#pragma warning restore SA1300, IDE1006
}

/// <summary>Awaited to go on on an event loop's thread (<see cref="EventLoop.SwitchTo"/>); with no loop, where it is.</summary>
public readonly struct LoopHop : ICriticalNotifyCompletion
{
    private readonly EventLoop? _loop;

    internal LoopHop(EventLoop? loop) => _loop = loop;

    public LoopHop GetAwaiter() => this;

    public bool IsCompleted => _loop is null || _loop.OnLoopThread;

    public void GetResult()
    {
        if (!IsCompleted) throw new ObjectDisposedException(nameof(EventLoop), "The relay loop stopped before this connection could move to it.");
    }

    public void OnCompleted(Action continuation)
    {
        ExecutionContext? context = ExecutionContext.Capture();
        UnsafeOnCompleted(context is null ? continuation : () => ExecutionContext.Run(context, static c => ((Action)c!)(), continuation));
    }

    public void UnsafeOnCompleted(Action continuation) => _loop!.Hop(continuation);
}
