using System;
using System.Collections.Generic;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine;

/// <summary>TLS client settings for talking to etcd: trust only the cluster's CA bundle, present a client certificate.</summary>
public sealed class TlsClientIdentity
{
    private SslStreamCertificateContext? _clientContext;

    public TlsClientIdentity(TrustedCAs trust, X509Certificate2? clientCertificate, CipherSuitesPolicy? cipherSuites = null, SslProtocols protocols = TlsPolicy.Protocols)
    {
        Trust = trust;
        ClientCertificate = clientCertificate;
        CipherSuites = cipherSuites ?? TlsPolicy.Default;
        Protocols = protocols;
    }

    public TlsClientIdentity(X509Certificate2 caCertificate, X509Certificate2? clientCertificate)
        : this(new TrustedCAs(new[] { caCertificate }), clientCertificate)
    {
    }

    public TrustedCAs Trust { get; }

    /// <summary>The first certificate of the trust bundle.</summary>
    public X509Certificate2 CA => Trust.First;

    public X509Certificate2? ClientCertificate { get; }

    public CipherSuitesPolicy? CipherSuites { get; }

    public SslProtocols Protocols { get; }

    /// <summary>
    /// Built once: given only a certificate collection, SslStream builds a new context (and its chain) on every
    /// handshake, which the proxy pays on every connection to a member, in time and in memory for as long as the
    /// connection lives. Offline: nothing is fetched to complete the chain.
    /// </summary>
    private SslStreamCertificateContext? ClientContext => ClientCertificate is null ? null
        : _clientContext ??= SslStreamCertificateContext.Create(ClientCertificate, additionalCertificates: null, offline: true);

    public static TlsClientIdentity Load(string caPath, string? certPath, string? keyPath, CipherSuitesPolicy? cipherSuites = null)
    {
        TrustedCAs trust = TrustedCAs.Load(caPath);
        X509Certificate2? client = certPath is null || keyPath is null ? null : LoadWithKey(certPath, keyPath);
        return new TlsClientIdentity(trust, client, cipherSuites);
    }

    public static X509Certificate2 LoadWithKey(string certPath, string keyPath)
    {
        try
        {
            X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            // OpenSSL takes a PEM-loaded key as it is (the round trip below cost a first use about 40 ms here).
            if (OperatingSystem.IsLinux()) return pem;
            // Elsewhere an ephemeral key is refused by Windows' TLS stack (SChannel), and may be by macOS's; a PKCS#12
            // round trip makes it usable by every TLS stack.
            using (pem)
            {
                return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            }
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            throw new EtcdSecureException("CertificateNotUsable", ErrorKind.InvalidData, $"'{certPath}' with key '{keyPath}' cannot be used for TLS: {ex.Message}", certPath, ex);
        }
    }

    /// <summary>
    /// Judges a server certificate that SslStream has checked against this bundle (custom root trust, the server
    /// auth usage, nothing downloaded): the host-name check is kept, and the chain's own reasons are given.
    /// </summary>
    /// <param name="dialledHost">
    /// When the TLS server name (SNI) is not the host that was dialled, as when a member is addressed through the proxy,
    /// the certificate must still name the dialled host: that check is done here instead of by the TLS stack.
    /// </param>
    public static bool ValidateServer(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, out string? reason, string? dialledHost = null)
    {
        reason = null;
        if (certificate is null)
        {
            reason = "the server sent no certificate";
            return false;
        }

        if (dialledHost is not null)
        {
            using var named = new X509Certificate2(certificate);
            if (!named.MatchesHostname(dialledHost))
            {
                reason = $"the server certificate does not name {dialledHost} (SAN mismatch)";
                return false;
            }
        }
        else if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            reason = "the server certificate does not name the host that was dialled (SAN mismatch)";
            return false;
        }

        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0) return true;
        reason = "the server certificate does not chain to the given CA for server auth: " + (chain is null ? "no chain" : TrustedCAs.Describe(chain));
        return false;
    }

    public SslClientAuthenticationOptions ClientOptions(string host, params SslApplicationProtocol[] alpn) => ClientOptions(host, null, null, alpn);

    /// <param name="serverName">The SNI name to send when it differs from <paramref name="host"/> (routing through the proxy).</param>
    /// <param name="onRejected">Told why the server certificate was refused, so errors can say more than "handshake failed".</param>
    public SslClientAuthenticationOptions ClientOptions(string host, string? serverName, Action<string>? onRejected, params SslApplicationProtocol[] alpn) => new()
    {
        TargetHost = serverName ?? host,
        EnabledSslProtocols = Protocols,
        CipherSuitesPolicy = CipherSuites,
        ClientCertificateContext = ClientContext,
        ApplicationProtocols = alpn.Length > 0 ? new List<SslApplicationProtocol>(alpn) : null,
        CertificateChainPolicy = Trust.ChainPolicy(TrustedCAs.ServerAuth),
        RemoteCertificateValidationCallback = (_, cert, chain, errors) =>
        {
            bool ok = ValidateServer(cert, chain, errors, out string? reason, serverName is null ? null : host);
            if (!ok && reason is not null) onRejected?.Invoke(reason);
            return ok;
        },
    };
}
