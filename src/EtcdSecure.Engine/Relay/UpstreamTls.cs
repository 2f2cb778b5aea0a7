using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// One OpenSSL client context (SSL_CTX) that every connection of the proxy to a member shares: the proxy's client
/// certificate and key, the TLS versions and the cipher suites, loaded once per upstream certificate.
/// </summary>
/// <remarks>
/// SslStream never shares a client context once a client certificate is given: each member connection builds its
/// own and keeps it for its whole life, 13.7 KiB apiece (SSL_CTX_new alone, measured) and the work of loading the
/// certificate and key on every connect. HAProxy and nginx share one per server line, and so does this. The
/// connections themselves are <see cref="UpstreamTlsStream"/>s, which drive OpenSSL through memory BIOs over the
/// proxy's own transport, as SslStream does.
/// <para>
/// Only public OpenSSL functions of the very libssl the runtime loaded are used (<see cref="LibSsl"/> finds and
/// checks it). The member's certificate is judged by the same .NET code as with SslStream: OpenSSL accepts any
/// certificate during the handshake (as SslStream lets it), and <see cref="UpstreamTlsStream.AuthenticateAsync"/>
/// refuses the connection afterwards unless the chain ends at the upstream CA for server auth and names the member.
/// If anything here cannot be set up, <see cref="Create"/> says why and each member connection uses SslStream as
/// before; ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT=0 does that on purpose.
/// </para>
/// </remarks>
internal sealed class UpstreamTls : IDisposable
{
    private readonly SafeCtx _ctx;

    private UpstreamTls(TlsClientIdentity identity, SafeCtx ctx, OpenSsl f, bool releaseBuffers)
    {
        Identity = identity;
        _ctx = ctx;
        F = f;
        ReleaseBuffers = releaseBuffers;
    }

    public TlsClientIdentity Identity { get; }

    internal OpenSsl F { get; }

    /// <summary>Whether connections free their record buffers when idle (off with ETCDSECURE_TLS_KEEP_BUFFERS=1 or an unsafe SSL_free_buffers).</summary>
    public bool ReleaseBuffers { get; }

    public static UpstreamTls? Create(TlsClientIdentity identity, IReadOnlyList<TlsCipherSuite> suites, SslProtocols protocols, out string? why)
    {
        why = null;
        if (Environment.GetEnvironmentVariable("ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT") == "0") { why = "ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT=0"; return null; }
        if (!OperatingSystem.IsLinux()) { why = "only on Linux, where SslStream runs on OpenSSL"; return null; }
        if (LibSsl.Bind() is not { } lib) { why = LibSsl.Why; return null; }
        if (OpenSsl.From(lib) is not { } f) { why = $"{lib.Path} lacks a function this needs (OpenSSL 1.1.1 and later have them all)"; return null; }

        var ctx = new SafeCtx(f);
        try
        {
            why = Configure(f, ctx.Handle, identity, suites, protocols);
            if (why is not null)
            {
                ctx.Dispose();
                return null;
            }

            bool keep = Environment.GetEnvironmentVariable("ETCDSECURE_TLS_KEEP_BUFFERS") == "1" || !OpenSslBuffers.FreeBuffersIsSafe(lib.Version);
            if (!keep) f.CtxCtrl(ctx.Handle, OpenSsl.CtrlMode, OpenSsl.ModeReleaseBuffers, IntPtr.Zero);
            return new UpstreamTls(identity, ctx, f, !keep);
        }
        catch
        {
            ctx.Dispose();
            throw;
        }
        finally
        {
            f.ClearErrors();
        }
    }

    /// <returns>Null once the context holds everything; otherwise why it cannot be used.</returns>
    private static string? Configure(OpenSsl f, IntPtr ctx, TlsClientIdentity identity, IReadOnlyList<TlsCipherSuite> suites, SslProtocols protocols)
    {
        if (ctx == IntPtr.Zero) return "SSL_CTX_new failed";
        bool tls12 = (protocols & SslProtocols.Tls12) != 0 || protocols == SslProtocols.None;
        bool tls13 = (protocols & SslProtocols.Tls13) != 0 || protocols == SslProtocols.None;
        if (f.CtxCtrl(ctx, OpenSsl.CtrlSetMinProto, tls12 ? OpenSsl.Tls12 : OpenSsl.Tls13, IntPtr.Zero) != 1
            || f.CtxCtrl(ctx, OpenSsl.CtrlSetMaxProto, tls13 ? OpenSsl.Tls13 : OpenSsl.Tls12, IntPtr.Zero) != 1)
        {
            return "OpenSSL refused the TLS versions";
        }

        // The suite names come from OpenSSL itself, looked up by their IANA numbers.
        IntPtr probe = f.SslNew(ctx);
        if (probe == IntPtr.Zero) return "SSL_new failed";
        var names13 = new List<string>();
        var names12 = new List<string>();
        try
        {
            if (OpenSsl.SuiteNames(probe, suites, f.CipherFind.Invoke, f.CipherName.Invoke, names13, names12) is { } unknown) return unknown;
        }
        finally
        {
            f.SslFree(probe);
        }

        if (f.SetSuites(ctx, string.Join(':', names13)) != 1) return "OpenSSL refused the TLS 1.3 suites";
        if (tls12 && (names12.Count == 0 || f.SetCipherList(ctx, string.Join(':', names12)) != 1)) return "OpenSSL refused the TLS 1.2 suites";

        // Every connection is a full handshake that shows the certificate again, as with SslStream and a client certificate.
        f.CtxCtrl(ctx, OpenSsl.CtrlSetSessCacheMode, 0, IntPtr.Zero);
        f.SetOptions(ctx, OpenSsl.OpNoTicket | OpenSsl.OpNoRenegotiation);

        if (identity.ClientCertificate is { } cert)
        {
            if (!cert.HasPrivateKey) return "the upstream certificate has no private key";
            // On Linux a certificate's handle is OpenSSL's X509* and an OpenSSL key hands out its EVP_PKEY*: both
            // are the runtime's own, and OpenSSL takes a reference of its own to each.
            using SafeEvpPKeyHandle? key = KeyOf(cert);
            if (key is null) return "the upstream key is not held by OpenSSL";
            if (f.UseCertificate(ctx, cert.Handle) != 1 || f.UsePrivateKey(ctx, key.DangerousGetHandle()) != 1) return "OpenSSL refused the upstream certificate or key";
            if (f.CheckPrivateKey(ctx) != 1) return "the upstream key does not match its certificate";
        }

        return null;
    }

    private static SafeEvpPKeyHandle? KeyOf(X509Certificate2 cert)
    {
        if (!OperatingSystem.IsLinux()) return null;
        using RSA? rsa = cert.GetRSAPrivateKey();
        if (rsa is RSAOpenSsl r) return r.DuplicateKeyHandle();
        using ECDsa? ec = rsa is null ? cert.GetECDsaPrivateKey() : null;
        return ec is ECDsaOpenSsl e ? e.DuplicateKeyHandle() : null;
    }

    /// <summary>A new connection's SSL*, on this context; IntPtr.Zero when OpenSSL could not make one.</summary>
    internal IntPtr NewSsl()
    {
        bool added = false;
        try
        {
            _ctx.DangerousAddRef(ref added);
            return F.SslNew(_ctx.DangerousGetHandle());
        }
        finally
        {
            if (added) _ctx.DangerousRelease();
        }
    }

    /// <summary>Drops this object's reference; connections still open keep the context alive through their own.</summary>
    public void Dispose() => _ctx.Dispose();

    private sealed class SafeCtx : SafeHandle
    {
        private readonly OpenSsl _f;

        public SafeCtx(OpenSsl f)
            : base(IntPtr.Zero, ownsHandle: true)
        {
            _f = f;
            SetHandle(f.CtxNew(f.ClientMethod()));
        }

        public IntPtr Handle => handle;

        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle()
        {
            _f.CtxFree(handle);
            return true;
        }
    }
}

/// <summary>The OpenSSL functions the upstream TLS client calls, bound once from the runtime's libssl (and the libcrypto it links).</summary>
internal sealed class OpenSsl
{
    public const int CtrlMode = 33;                 // SSL_CTRL_MODE
    public const int CtrlSetSessCacheMode = 44;     // SSL_CTRL_SET_SESS_CACHE_MODE
    public const int CtrlSetTlsextHostname = 55;    // SSL_CTRL_SET_TLSEXT_HOSTNAME
    public const int CtrlSetMinProto = 123;         // SSL_CTRL_SET_MIN_PROTO_VERSION
    public const int CtrlSetMaxProto = 124;         // SSL_CTRL_SET_MAX_PROTO_VERSION
    public const long ModeReleaseBuffers = 0x10;    // SSL_MODE_RELEASE_BUFFERS
    public const long Tls12 = 0x0303;
    public const long Tls13 = 0x0304;
    public const ulong OpNoTicket = 1UL << 14;
    public const ulong OpNoRenegotiation = 1UL << 30;
    public const int ErrorWantRead = 2;             // SSL_ERROR_WANT_READ
    public const int ErrorZeroReturn = 6;           // SSL_ERROR_ZERO_RETURN

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr Ptr0();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr Ptr1(IntPtr a);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate void Void1(IntPtr a);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int Int1(IntPtr a);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int Int2(IntPtr a, IntPtr b);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int IntIndex(IntPtr a, int i);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr PtrIndex(IntPtr a, int i);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate long Ctrl(IntPtr a, int cmd, long larg, IntPtr parg);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int SetList(IntPtr ctx, [MarshalAs(UnmanagedType.LPUTF8Str)] string list);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate ulong SetOpts(IntPtr ctx, ulong options);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr Find(IntPtr ssl, byte[] id);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int Io(IntPtr a, ref byte buffer, int count);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate void Bios(IntPtr ssl, IntPtr rbio, IntPtr wbio);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate nuint Pending(IntPtr bio);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int Alpn(IntPtr ssl, byte[] protos, uint length);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate void AlpnSelected(IntPtr ssl, out IntPtr data, out uint length);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int Der(IntPtr x509, IntPtr output);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate ulong ErrGet();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate void ErrString(ulong error, byte[] buffer, nuint length);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate void ErrClear();

    public required Ptr0 ClientMethod { get; init; }
    public required Ptr1 CtxNew { get; init; }
    public required Void1 CtxFree { get; init; }
    public required Ctrl CtxCtrl { get; init; }
    public required SetList SetCipherList { get; init; }
    public required SetList SetSuites { get; init; }
    public required SetOpts SetOptions { get; init; }
    public required Int2 UseCertificate { get; init; }
    public required Int2 UsePrivateKey { get; init; }
    public required Int1 CheckPrivateKey { get; init; }
    public required Ptr1 SslNew { get; init; }
    public required Void1 SslFree { get; init; }
    public required Ctrl SslCtrl { get; init; }
    public required Find CipherFind { get; init; }
    public required Ptr1 CipherName { get; init; }
    public required Void1 SetConnectState { get; init; }
    public required Bios SetBio { get; init; }
    public required Int1 DoHandshake { get; init; }
    public required Io Read { get; init; }
    public required Io Write { get; init; }
    public required Io Peek { get; init; }
    public required IntIndex GetError { get; init; }
    public required Int1 Shutdown { get; init; }
    public required Int1 SslPending { get; init; }
    public required Int1 FreeBuffers { get; init; }
    public required Alpn SetAlpn { get; init; }
    public required AlpnSelected GetAlpn { get; init; }
    public required Ptr1 PeerChain { get; init; }
    public required Ptr0 MemMethod { get; init; }
    public required Ptr1 BioNew { get; init; }
    public required Int1 BioFree { get; init; }
    public required Io BioRead { get; init; }
    public required Io BioWrite { get; init; }
    public required Pending BioPending { get; init; }
    public required Int1 StackCount { get; init; }
    public required PtrIndex StackValue { get; init; }
    public required Der ToDer { get; init; }
    public required ErrGet ErrorGet { get; init; }
    public required ErrString ErrorString { get; init; }
    public required ErrClear ClearErrors { get; init; }

    private static OpenSsl? _bound;

    /// <summary>Every function this needs from <paramref name="lib"/>, or null when one is missing.</summary>
    public static OpenSsl? From(LibSsl.Library lib)
    {
        if (Volatile.Read(ref _bound) is { } bound) return bound;
        try
        {
            bound = new OpenSsl
            {
                ClientMethod = Need<Ptr0>(lib, "TLS_client_method"),
                CtxNew = Need<Ptr1>(lib, "SSL_CTX_new"),
                CtxFree = Need<Void1>(lib, "SSL_CTX_free"),
                CtxCtrl = Need<Ctrl>(lib, "SSL_CTX_ctrl"),
                SetCipherList = Need<SetList>(lib, "SSL_CTX_set_cipher_list"),
                SetSuites = Need<SetList>(lib, "SSL_CTX_set_ciphersuites"),
                SetOptions = Need<SetOpts>(lib, "SSL_CTX_set_options"),
                UseCertificate = Need<Int2>(lib, "SSL_CTX_use_certificate"),
                UsePrivateKey = Need<Int2>(lib, "SSL_CTX_use_PrivateKey"),
                CheckPrivateKey = Need<Int1>(lib, "SSL_CTX_check_private_key"),
                SslNew = Need<Ptr1>(lib, "SSL_new"),
                SslFree = Need<Void1>(lib, "SSL_free"),
                SslCtrl = Need<Ctrl>(lib, "SSL_ctrl"),
                CipherFind = Need<Find>(lib, "SSL_CIPHER_find"),
                CipherName = Need<Ptr1>(lib, "SSL_CIPHER_get_name"),
                SetConnectState = Need<Void1>(lib, "SSL_set_connect_state"),
                SetBio = Need<Bios>(lib, "SSL_set_bio"),
                DoHandshake = Need<Int1>(lib, "SSL_do_handshake"),
                Read = Need<Io>(lib, "SSL_read"),
                Write = Need<Io>(lib, "SSL_write"),
                Peek = Need<Io>(lib, "SSL_peek"),
                GetError = Need<IntIndex>(lib, "SSL_get_error"),
                Shutdown = Need<Int1>(lib, "SSL_shutdown"),
                SslPending = Need<Int1>(lib, "SSL_pending"),
                FreeBuffers = Need<Int1>(lib, "SSL_free_buffers"),
                SetAlpn = Need<Alpn>(lib, "SSL_set_alpn_protos"),
                GetAlpn = Need<AlpnSelected>(lib, "SSL_get0_alpn_selected"),
                PeerChain = Need<Ptr1>(lib, "SSL_get_peer_cert_chain"),
                // libcrypto's, found through libssl, which links the one the runtime uses.
                MemMethod = Need<Ptr0>(lib, "BIO_s_mem"),
                BioNew = Need<Ptr1>(lib, "BIO_new"),
                BioFree = Need<Int1>(lib, "BIO_free"),
                BioRead = Need<Io>(lib, "BIO_read"),
                BioWrite = Need<Io>(lib, "BIO_write"),
                BioPending = Need<Pending>(lib, "BIO_ctrl_pending"),
                StackCount = Need<Int1>(lib, "OPENSSL_sk_num"),
                StackValue = Need<PtrIndex>(lib, "OPENSSL_sk_value"),
                ToDer = Need<Der>(lib, "i2d_X509"),
                ErrorGet = Need<ErrGet>(lib, "ERR_get_error"),
                ErrorString = Need<ErrString>(lib, "ERR_error_string_n"),
                ClearErrors = Need<ErrClear>(lib, "ERR_clear_error"),
            };
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }

        Volatile.Write(ref _bound, bound);
        return bound;
    }

    private static T Need<T>(LibSsl.Library lib, string name) where T : Delegate => lib.Export<T>(name) ?? throw new EntryPointNotFoundException(name);

    /// <summary>OpenSSL's reasons queued on this thread, in one line (the queue is left empty).</summary>
    public string Errors()
    {
        var reasons = new List<string>();
        var buffer = new byte[256];
        for (ulong e = ErrorGet(); e != 0; e = ErrorGet())
        {
            ErrorString(e, buffer, (nuint)buffer.Length);
            int end = Array.IndexOf(buffer, (byte)0);
            reasons.Add(System.Text.Encoding.ASCII.GetString(buffer, 0, end < 0 ? buffer.Length : end));
        }

        return reasons.Count > 0 ? string.Join("; ", reasons) : "no reason given";
    }

    /// <summary>The DER bytes of an X509*.</summary>
    public byte[] DerOf(IntPtr x509)
    {
        // Asked with no output, i2d_X509 gives the length; then it writes through a pointer it advances.
        int length = ToDer(x509, IntPtr.Zero);
        if (length <= 0) return Array.Empty<byte>();
        var der = new byte[length];
        var cursor = new IntPtr[1];
        GCHandle pinDer = GCHandle.Alloc(der, GCHandleType.Pinned);
        GCHandle pinCursor = GCHandle.Alloc(cursor, GCHandleType.Pinned);
        try
        {
            cursor[0] = pinDer.AddrOfPinnedObject();
            return ToDer(x509, pinCursor.AddrOfPinnedObject()) == length ? der : Array.Empty<byte>();
        }
        finally
        {
            pinCursor.Free();
            pinDer.Free();
        }
    }

    /// <summary>OpenSSL's own names for <paramref name="suites"/>, looked up by their IANA numbers, TLS 1.3 and 1.2 apart.</summary>
    /// <returns>Null, or why not (a suite this OpenSSL does not know).</returns>
    public static string? SuiteNames(IntPtr ssl, IReadOnlyList<TlsCipherSuite> suites, Func<IntPtr, byte[], IntPtr> find, Func<IntPtr, IntPtr> name, List<string> tls13, List<string> tls12)
    {
        foreach (TlsCipherSuite suite in suites)
        {
            IntPtr cipher = find(ssl, new[] { (byte)((int)suite >> 8), (byte)suite });
            if (cipher == IntPtr.Zero) return $"this OpenSSL does not know {suite}";
            (TlsPolicy.IsTls13(suite) ? tls13 : tls12).Add(Marshal.PtrToStringUTF8(name(cipher))!);
        }

        return null;
    }

    public static bool IsIpLiteral(string host) => IPAddress.TryParse(host, out _);
}
