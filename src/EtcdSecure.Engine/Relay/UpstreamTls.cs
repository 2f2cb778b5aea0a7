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
/// before; ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT=0 when the proxy starts does that on purpose (the proxy checks it).
/// </para>
/// </remarks>
internal sealed class UpstreamTls
{
    // Freed by the finalizer once a reload replaced this context; each connection's SSL* holds a reference of its own.
    private readonly OpenSslPointer _ctx;

    private UpstreamTls(TlsClientIdentity identity, OpenSslPointer ctx, OpenSsl f)
    {
        Identity = identity;
        _ctx = ctx;
        F = f;
    }

    public TlsClientIdentity Identity { get; }

    /// <summary>Member chains found good under this context's trust; a reload makes a new context, and with it a new set.</summary>
    internal JudgedChains Judged { get; } = new();

    internal OpenSsl F { get; }

    public static UpstreamTls? Create(TlsClientIdentity identity, IReadOnlyList<TlsCipherSuite> suites, SslProtocols protocols, out string? why)
    {
        why = null;
        if (!OperatingSystem.IsLinux()) { why = "only on Linux, where SslStream runs on OpenSSL"; return null; }
        if (LibSsl.Bind() is not { } lib) { why = LibSsl.Why; return null; }
        if (OpenSsl.From(lib) is not { } f) { why = $"{lib.Path} lacks a function this needs (OpenSSL 1.1.1 and later have them all)"; return null; }

        // Buffer release is no setting of the context: the relay turns it on per connection, where it is safe.
        var ctx = new OpenSslPointer(f.CtxNew(f.ClientMethod()), f.CtxFree);
        try
        {
            why = Configure(f, ctx.DangerousGetHandle(), identity, suites, protocols);
            if (why is not null)
            {
                ctx.Dispose();
                return null;
            }

            return new UpstreamTls(identity, ctx, f);
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
}
