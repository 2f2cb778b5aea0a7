using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Threading;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// The OpenSSL functions the proxy calls itself (the upstream TLS client, and the shared server context's set-up),
/// bound once from the runtime's libssl and the libcrypto it links.
/// </summary>
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
    public const int BioTypeMem = 0x0401;           // BIO_TYPE_MEM: (1 | BIO_TYPE_SOURCE_SINK)

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr Ptr0();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr Ptr1(IntPtr a);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate void Void1(IntPtr a);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int Int1(IntPtr a);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate void VoidInt(IntPtr a, int i);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int Int2(IntPtr a, IntPtr b);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int IntIndex(IntPtr a, int i);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr PtrIndex(IntPtr a, int i);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate long Ctrl(IntPtr a, int cmd, long larg, IntPtr parg);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int Tickets(IntPtr ctx, nuint count);
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
    public required Ptr1 GetCtx { get; init; }
    public required Tickets SetTickets { get; init; }
    public required PtrIndex CipherList { get; init; }
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
    public required Ptr1 GetRbio { get; init; }
    public required Ptr1 GetWbio { get; init; }
    public required Int1 BioMethodType { get; init; }
    public required VoidInt SetQuietShutdown { get; init; }
    public required SetOpts SslSetOptions { get; init; }
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
                GetCtx = Need<Ptr1>(lib, "SSL_get_SSL_CTX"),
                SetTickets = Need<Tickets>(lib, "SSL_CTX_set_num_tickets"),
                CipherList = Need<PtrIndex>(lib, "SSL_get_cipher_list"),
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
                GetRbio = Need<Ptr1>(lib, "SSL_get_rbio"),
                GetWbio = Need<Ptr1>(lib, "SSL_get_wbio"),
                BioMethodType = Need<Int1>(lib, "BIO_method_type"),
                SetQuietShutdown = Need<VoidInt>(lib, "SSL_set_quiet_shutdown"),
                SslSetOptions = Need<SetOpts>(lib, "SSL_set_options"),
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

/// <summary>An OpenSSL object this process owns (an SSL_CTX*, an SSL*), freed by its free function on Dispose or by the finalizer.</summary>
internal sealed class OpenSslPointer : SafeHandle
{
    private readonly OpenSsl.Void1 _free;

    public OpenSslPointer(IntPtr pointer, OpenSsl.Void1 free)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        _free = free;
        SetHandle(pointer);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        _free(handle);
        return true;
    }
}
