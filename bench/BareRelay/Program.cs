// The least a TLS relay written in C# can cost on Linux, as a measuring stick for the proxy benchmarks: one epoll loop
// per core moves records straight from one SSL* to the other, and nothing in between allocates, awaits or copies
// through a stream. By default OpenSSL reads and writes the sockets itself (SSL_set_fd, read-ahead on). It checks what a relay
// must check (client certificates against the CA, the member's certificate and address), and nothing more: no caps,
// no probes, no reloads, no half-close (an end on either side closes both). Handshakes run blocking on the thread
// pool. Not a product; bench/Bench.Proxy.ps1 runs it beside the real proxy to show what the design costs.
//
//   BareRelay --listen PORT --members H:P,H:P,... --cert C.pem --key K.pem --ca CA.pem [--bio fd|mem]
//             [--upstream-cert C.pem --upstream-key K.pem --upstream-ca CA.pem]   (the members' side; else as above)
// --bio mem: after the handshakes each SSL* gets two memory BIOs, and the loop moves the bytes between them and the
// sockets itself (recv, BIO_write, SSL_read, SSL_write, BIO_read, send), still without tasks or streams: what a relay
// costs that keeps its sockets to itself, as one must whose handshakes run somewhere else.
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
{
    Console.Error.WriteLine("BareRelay runs on Linux x64 only: it writes epoll_event in its packed x86-64 layout.");
    return 2;
}

var opts = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) opts[args[i].TrimStart('-')] = args[i + 1];
string Opt(string k, string? fallback = null) => opts.TryGetValue(k, out var v) ? v : fallback ?? throw new ArgumentException($"--{k} is required");
Loop.MemoryBios = opts.TryGetValue("bio", out var bio) && bio == "mem";

IntPtr server = Ssl.Context(Ssl.TLS_server_method(), Opt("cert"), Opt("key"), Opt("ca"));
IntPtr client = Ssl.Context(Ssl.TLS_client_method(), Opt("upstream-cert", Opt("cert")), Opt("upstream-key", Opt("key")), Opt("upstream-ca", Opt("ca")));
Ssl.SetClientCaAndAlpn(server, Opt("ca"));
var members = Opt("members").Split(',').Select(m => IPEndPoint.Parse(m)).ToArray();
var loops = Enumerable.Range(0, Environment.ProcessorCount).Select(_ => new Loop()).ToArray();
foreach (var l in loops) new Thread(l.Run) { IsBackground = true, Name = "relay loop" }.Start();

var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
listener.Bind(new IPEndPoint(IPAddress.Loopback, int.Parse(Opt("listen"))));
listener.Listen(4096);
Console.WriteLine($"READY {Environment.ProcessId}");
long next = 0;
while (true)
{
    Socket accepted = listener.Accept();
    long n = next++;
    ThreadPool.UnsafeQueueUserWorkItem(_ =>
    {
        try { Pair.Open(accepted, server, client, members[n % members.Length], loops[n % loops.Length]); }
        catch (Exception ex) { Console.Error.WriteLine(ex.Message); }
    }, null);
}

sealed class Pair
{
    public readonly Side A, B; // A: the client, B: the member

    private Pair(Side a, Side b) { A = a; B = b; a.Peer = b; b.Peer = a; a.Pair = b.Pair = this; }

    public static void Open(Socket accepted, IntPtr server, IntPtr client, IPEndPoint member, Loop loop)
    {
        accepted.NoDelay = true;
        var a = new Side(accepted, Ssl.SSL_new(server));
        if (Ssl.SSL_accept(a.Ssl) != 1) { a.Close(); throw new IOException("client handshake failed: " + Ssl.Errors()); }
        string alpn = Ssl.ChosenAlpn(a.Ssl);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Connect(member);
        var b = new Side(socket, Ssl.SSL_new(client));
        Ssl.CheckMember(b.Ssl, member.Address.ToString(), alpn);
        if (Ssl.SSL_connect(b.Ssl) != 1) { a.Close(); b.Close(); throw new IOException($"member handshake failed (verify result {Ssl.SSL_get_verify_result(b.Ssl)}): " + Ssl.Errors()); }
        accepted.Blocking = false;
        socket.Blocking = false;
        if (Loop.MemoryBios) { a.UseMemoryBios(); b.UseMemoryBios(); }
        loop.Add(new Pair(a, b));
    }
}

sealed class Side
{
    public readonly Socket Socket;
    public readonly int Fd;
    public readonly IntPtr Ssl;
    public Side Peer = null!;
    public Pair Pair = null!;
    public int Index;              // in the loop's table; epoll's data
    public byte[]? Pending;        // read from this side, not yet taken by the peer's SSL_write
    public int PendingCount;
    public uint Interest;
    public bool Closed;
    public IntPtr Rbio, Wbio;      // with --bio mem
    public byte[]? Unsent;         // ciphertext for this side's socket that it did not take yet (--bio mem)
    public int UnsentOffset, UnsentCount;

    public void UseMemoryBios()
    {
        Rbio = global::Ssl.BIO_new(global::Ssl.BIO_s_mem());
        Wbio = global::Ssl.BIO_new(global::Ssl.BIO_s_mem());
        global::Ssl.SSL_set_bio(Ssl, Rbio, Wbio);
    }

    public Side(Socket socket, IntPtr ssl)
    {
        Socket = socket;
        Fd = (int)socket.Handle;
        Ssl = ssl;
        global::Ssl.SSL_set_fd(ssl, Fd);
    }

    public void Close()
    {
        if (Closed) return;
        Closed = true;
        global::Ssl.SSL_free(Ssl);
        Socket.Dispose();
    }
}

sealed class Loop
{
    private const uint In = 0x1, Out = 0x4, Err = 0x8, Hup = 0x10;
    private readonly int _epoll = Libc.epoll_create1(0);
    private readonly List<Side?> _sides = new();
    private readonly Queue<Pair> _incoming = new();
    private readonly int _wake = Libc.eventfd(0, 0x800 /* EFD_NONBLOCK */);
    private readonly byte[] _buffer = new byte[16 * 1024];

    public Loop() => Libc.Control(_epoll, 1, _wake, In, -1);

    public void Add(Pair pair)
    {
        lock (_incoming) _incoming.Enqueue(pair);
        ulong one = 1;
        unsafe { Libc.write(_wake, &one, 8); }
    }

    public unsafe void Run()
    {
        var events = new byte[64 * 12];
        fixed (byte* e = events)
        {
            while (true)
            {
                int n = Libc.epoll_wait(_epoll, e, 64, -1);
                for (int i = 0; i < n; i++)
                {
                    uint what = *(uint*)(e + i * 12);
                    long data = *(long*)(e + i * 12 + 4);
                    if (data < 0) { TakeIncoming(); continue; }
                    Side? s = _sides[(int)data];
                    if (s is null || s.Closed) continue;
                    if ((what & Out) != 0) Flush(s);
                    if ((what & (In | Err | Hup)) != 0 && !s.Closed) Pump(s);
                }
            }
        }
    }

    private unsafe void TakeIncoming()
    {
        ulong count;
        Libc.read(_wake, &count, 8);
        while (true)
        {
            Pair p;
            lock (_incoming) { if (!_incoming.TryDequeue(out p!)) return; }
            foreach (Side s in new[] { p.A, p.B })
            {
                s.Index = _sides.Count;
                _sides.Add(s);
                s.Interest = In;
                Libc.Control(_epoll, 1, s.Fd, In, s.Index);
            }

            // The handshake may have left application data in OpenSSL's buffers already.
            Pump(p.A);
            if (!p.B.Closed) Pump(p.B);
        }
    }

    public static bool MemoryBios;
    private readonly byte[] _wire = new byte[64 * 1024];

    /// <summary>Moves records from <paramref name="s"/> to its peer until s has nothing more or the peer is full.</summary>
    private void Pump(Side s)
    {
        if (MemoryBios) { PumpMemory(s); return; }
        while (s.Pending is null)
        {
            int r = Ssl.SSL_read(s.Ssl, _buffer, _buffer.Length);
            if (r <= 0)
            {
                int error = Ssl.SSL_get_error(s.Ssl, r);
                if (error == Ssl.WantRead) return;
                if (error == Ssl.WantWrite) { Watch(s, s.Interest | Out); return; }
                End(s);
                return;
            }

            int w = Ssl.SSL_write(s.Peer.Ssl, _buffer, r);
            if (w == r) continue;
            int we = Ssl.SSL_get_error(s.Peer.Ssl, w);
            if (we != Ssl.WantWrite) { End(s); return; }
            // OpenSSL wants the same bytes again once the socket drains; stop reading this side until then.
            s.Pending = new byte[r];
            Buffer.BlockCopy(_buffer, 0, s.Pending, 0, r);
            s.PendingCount = r;
            Watch(s, s.Interest & ~In);
            Watch(s.Peer, s.Peer.Interest | Out);
        }
    }

    private unsafe void PumpMemory(Side s)
    {
        Side to = s.Peer;
        while (to.Unsent is null)
        {
            // Whatever OpenSSL holds decrypted already goes first; then the socket.
            int r = Ssl.SSL_read(s.Ssl, _buffer, _buffer.Length);
            if (r > 0)
            {
                if (Ssl.SSL_write(to.Ssl, _buffer, r) != r) { End(s); return; }
                if (!Send(to)) return;
                continue;
            }

            int error = Ssl.SSL_get_error(s.Ssl, r);
            if (error != Ssl.WantRead) { End(s); return; }
            if (Ssl.BIO_ctrl_pending(s.Wbio) > 0 && !Send(s)) return; // a record of its own (a key update answered)
            nint n;
            fixed (byte* wire = _wire) n = Libc.recv(s.Fd, wire, _wire.Length, 0);
            if (n == 0) { End(s); return; }
            if (n < 0) { if (Marshal.GetLastPInvokeError() is 11) return; End(s); return; }
            Ssl.BIO_write(s.Rbio, _wire, (int)n);
        }
    }

    /// <summary>Sends what OpenSSL wrote for <paramref name="to"/>; false when its socket is full (the rest waits for EPOLLOUT).</summary>
    private unsafe bool Send(Side to)
    {
        while (true)
        {
            int pending = (int)Ssl.BIO_ctrl_pending(to.Wbio);
            if (pending == 0) return true;
            int n = Ssl.BIO_read(to.Wbio, _wire, Math.Min(pending, _wire.Length));
            int sent = 0;
            while (sent < n)
            {
                nint w;
                fixed (byte* p = _wire) w = Libc.send(to.Fd, p + sent, n - sent, 0x4000 /* MSG_NOSIGNAL */);
                if (w > 0) { sent += (int)w; continue; }
                if (w < 0 && Marshal.GetLastPInvokeError() is 11)
                {
                    to.Unsent = _wire[sent..n];
                    to.UnsentOffset = 0;
                    to.UnsentCount = n - sent;
                    Watch(to.Peer, to.Peer.Interest & ~In);
                    Watch(to, to.Interest | Out);
                    return false;
                }

                End(to);
                return false;
            }
        }
    }

    /// <summary>The socket of <paramref name="s"/> can take more: finish the peer's pending write into it.</summary>
    private unsafe void Flush(Side s)
    {
        if (MemoryBios)
        {
            while (s.Unsent is not null)
            {
                nint sent;
                fixed (byte* p = s.Unsent) sent = Libc.send(s.Fd, p + s.UnsentOffset, s.UnsentCount, 0x4000);
                if (sent < 0) { if (Marshal.GetLastPInvokeError() is not 11) End(s); return; }
                s.UnsentOffset += (int)sent;
                s.UnsentCount -= (int)sent;
                if (s.UnsentCount == 0) s.Unsent = null;
            }

            if (!Send(s)) return;
            Watch(s, s.Interest & ~Out);
            Watch(s.Peer, s.Peer.Interest | In);
            PumpMemory(s.Peer);
            return;
        }

        Side from = s.Peer;
        if (from.Pending is null) { Watch(s, s.Interest & ~Out); if (!s.Closed) Pump(s); return; }
        int w = Ssl.SSL_write(s.Ssl, from.Pending, from.PendingCount);
        if (w <= 0)
        {
            if (Ssl.SSL_get_error(s.Ssl, w) != Ssl.WantWrite) End(s);
            return;
        }

        from.Pending = null;
        Watch(s, s.Interest & ~Out);
        Watch(from, from.Interest | In);
        Pump(from);
    }

    private void Watch(Side s, uint interest)
    {
        if (interest == s.Interest || s.Closed) return;
        s.Interest = interest;
        Libc.Control(_epoll, 3, s.Fd, interest, s.Index);
    }

    private void End(Side s)
    {
        // SSL_get_error reads the thread's error queue: what a failed connection left there would fail the next one.
        Ssl.ERR_clear_error();
        foreach (Side x in new[] { s, s.Peer })
        {
            if (x.Closed) continue;
            Libc.Control(_epoll, 2, x.Fd, 0, x.Index);
            _sides[x.Index] = null;
            x.Close();
        }
    }
}

static unsafe class Libc
{
    [DllImport("libc")] public static extern int epoll_create1(int flags);
    [DllImport("libc")] private static extern int epoll_ctl(int epfd, int op, int fd, byte* ev);
    [DllImport("libc")] public static extern int epoll_wait(int epfd, byte* events, int max, int timeout);
    [DllImport("libc")] public static extern int eventfd(uint initval, int flags);
    [DllImport("libc")] public static extern nint read(int fd, void* buf, nint count);
    [DllImport("libc")] public static extern nint write(int fd, void* buf, nint count);
    [DllImport("libc", SetLastError = true)] public static extern nint recv(int fd, byte* buf, nint count, int flags);
    [DllImport("libc", SetLastError = true)] public static extern nint send(int fd, byte* buf, nint count, int flags);

    /// <summary>epoll_ctl with a packed x86-64 epoll_event (12 bytes).</summary>
    public static void Control(int epfd, int op, int fd, uint events, long data)
    {
        byte* ev = stackalloc byte[12];
        *(uint*)ev = events;
        *(long*)(ev + 4) = data;
        if (epoll_ctl(epfd, op, fd, ev) != 0 && op != 2) throw new IOException($"epoll_ctl {op} failed: {Marshal.GetLastPInvokeError()}");
    }
}

static unsafe class Ssl
{
    private const string L = "libssl.so.3";
    public const int WantRead = 2, WantWrite = 3;

    [DllImport(L)] public static extern IntPtr TLS_server_method();
    [DllImport(L)] public static extern IntPtr TLS_client_method();
    [DllImport(L)] private static extern IntPtr SSL_CTX_new(IntPtr method);
    [DllImport(L)] private static extern long SSL_CTX_ctrl(IntPtr ctx, int cmd, long larg, IntPtr parg);
    [DllImport(L)] private static extern int SSL_CTX_use_certificate_chain_file(IntPtr ctx, string file);
    [DllImport(L)] private static extern int SSL_CTX_use_PrivateKey_file(IntPtr ctx, string file, int type);
    [DllImport(L)] private static extern int SSL_CTX_load_verify_locations(IntPtr ctx, string file, string? path);
    [DllImport(L)] private static extern void SSL_CTX_set_verify(IntPtr ctx, int mode, IntPtr cb);
    [DllImport(L)] private static extern IntPtr SSL_load_client_CA_file(string file);
    [DllImport(L)] private static extern void SSL_CTX_set_client_CA_list(IntPtr ctx, IntPtr list);
    [DllImport(L)] private static extern void SSL_CTX_set_alpn_select_cb(IntPtr ctx, delegate* unmanaged<IntPtr, byte**, byte*, byte*, uint, IntPtr, int> cb, IntPtr arg);
    [DllImport(L)] private static extern int SSL_select_next_proto(byte** @out, byte* outlen, byte* server, uint serverlen, byte* client, uint clientlen);
    [DllImport(L)] private static extern int SSL_set_alpn_protos(IntPtr ssl, byte[] protos, uint len);
    [DllImport(L)] private static extern void SSL_get0_alpn_selected(IntPtr ssl, out IntPtr data, out uint len);
    [DllImport(L)] private static extern IntPtr SSL_get0_param(IntPtr ssl);
    [DllImport("libcrypto.so.3")] private static extern int X509_VERIFY_PARAM_set1_ip_asc(IntPtr param, string ip);
    [DllImport("libcrypto.so.3")] private static extern ulong ERR_get_error();
    [DllImport("libcrypto.so.3")] public static extern void ERR_clear_error();
    [DllImport("libcrypto.so.3")] private static extern void ERR_error_string_n(ulong e, byte* buf, nint len);
    [DllImport(L)] public static extern IntPtr SSL_new(IntPtr ctx);
    [DllImport(L)] public static extern int SSL_set_fd(IntPtr ssl, int fd);
    [DllImport(L)] public static extern int SSL_accept(IntPtr ssl);
    [DllImport(L)] public static extern int SSL_connect(IntPtr ssl);
    [DllImport(L)] public static extern int SSL_read(IntPtr ssl, byte[] buf, int num);
    [DllImport(L)] public static extern int SSL_write(IntPtr ssl, byte[] buf, int num);
    [DllImport(L)] public static extern int SSL_get_error(IntPtr ssl, int ret);
    [DllImport(L)] public static extern void SSL_free(IntPtr ssl);
    [DllImport(L)] public static extern long SSL_get_verify_result(IntPtr ssl);
    [DllImport(L)] public static extern void SSL_set_bio(IntPtr ssl, IntPtr rbio, IntPtr wbio);
    [DllImport("libcrypto.so.3")] public static extern IntPtr BIO_s_mem();
    [DllImport("libcrypto.so.3")] public static extern IntPtr BIO_new(IntPtr method);
    [DllImport("libcrypto.so.3")] public static extern int BIO_write(IntPtr bio, byte[] data, int len);
    [DllImport("libcrypto.so.3")] public static extern int BIO_read(IntPtr bio, byte[] data, int len);
    [DllImport("libcrypto.so.3")] public static extern nuint BIO_ctrl_pending(IntPtr bio);

    private static readonly byte[] Offered = "\u0002h2\u0008http/1.1"u8.ToArray();

    public static IntPtr Context(IntPtr method, string cert, string key, string ca)
    {
        IntPtr ctx = SSL_CTX_new(method);
        SSL_CTX_ctrl(ctx, 123, 0x303, IntPtr.Zero);           // SSL_CTRL_SET_MIN_PROTO_VERSION: TLS 1.2
        SSL_CTX_ctrl(ctx, 41, 1, IntPtr.Zero);                // SSL_CTRL_SET_READ_AHEAD: read whole socket buffers
        SSL_CTX_ctrl(ctx, 33, 0x2, IntPtr.Zero);              // SSL_CTRL_MODE: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, 1) != 1 || SSL_CTX_load_verify_locations(ctx, ca, null) != 1)
            throw new IOException("cannot load the certificate, key or CA: " + Errors());
        SSL_CTX_set_verify(ctx, 0x1 | 0x2, IntPtr.Zero);      // SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
        return ctx;
    }

    public static void SetClientCaAndAlpn(IntPtr server, string ca)
    {
        SSL_CTX_set_client_CA_list(server, SSL_load_client_CA_file(ca));
        SSL_CTX_set_alpn_select_cb(server, &SelectAlpn, IntPtr.Zero);
    }

    [UnmanagedCallersOnly]
    private static int SelectAlpn(IntPtr ssl, byte** @out, byte* outlen, byte* client, uint clientlen, IntPtr arg)
    {
        fixed (byte* offered = Offered)
            return SSL_select_next_proto(@out, outlen, offered, (uint)Offered.Length, client, clientlen) == 1 ? 0 : 3; // OK, else NOACK
    }

    public static string ChosenAlpn(IntPtr ssl)
    {
        SSL_get0_alpn_selected(ssl, out IntPtr data, out uint len);
        return len == 0 ? "" : Marshal.PtrToStringAnsi(data, (int)len);
    }

    /// <summary>The member must show a certificate of the CA for the address dialled; offer it the client's protocol.</summary>
    public static void CheckMember(IntPtr ssl, string ip, string alpn)
    {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip);
        if (alpn.Length == 0) return;
        byte[] wire = [(byte)alpn.Length, .. System.Text.Encoding.ASCII.GetBytes(alpn)];
        SSL_set_alpn_protos(ssl, wire, (uint)wire.Length);
    }

    public static string Errors()
    {
        byte* buf = stackalloc byte[256];
        var all = new List<string>();
        for (ulong e; (e = ERR_get_error()) != 0;) { ERR_error_string_n(e, buf, 256); all.Add(Marshal.PtrToStringAnsi((IntPtr)buf)!); }
        return string.Join("; ", all);
    }
}
