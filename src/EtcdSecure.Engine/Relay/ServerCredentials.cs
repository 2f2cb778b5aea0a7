using System;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace EtcdSecure.Engine.Relay;

/// <summary>What the proxy presents to clients.</summary>
public sealed class ServerCredentials
{
    private ServerCredentials(X509Certificate2 certificate, SslStreamCertificateContext context, ServerTls tls)
    {
        Certificate = certificate;
        Context = context;
        Tls = tls;
    }

    public X509Certificate2 Certificate { get; }

    public SslStreamCertificateContext Context { get; }

    /// <summary>How handshakes with this certificate get their cipher suites, set up before any client sees it.</summary>
    public ServerTls Tls { get; }

    public static ServerCredentials Load(string certPath, string keyPath, Func<SslStreamCertificateContext, ServerTls> prepare)
    {
        X509Certificate2 cert = LoadCurrent(certPath, keyPath);
        // offline: no AIA fetches while building the chain (traffic stays on loopback and startup stays fast).
        var context = SslStreamCertificateContext.Create(cert, additionalCertificates: null, offline: true);
        return new ServerCredentials(cert, context, prepare(context));
    }

    /// <summary>A certificate with its key that is valid now: a reload never swaps a working certificate for an expired one.</summary>
    public static X509Certificate2 LoadCurrent(string certPath, string keyPath)
    {
        X509Certificate2 cert = TlsClientIdentity.LoadWithKey(certPath, keyPath);
        DateTime now = DateTime.UtcNow;
        if (cert.NotAfter.ToUniversalTime() < now || cert.NotBefore.ToUniversalTime() > now)
        {
            throw new EtcdSecureException("CertificateNotValidNow", ErrorKind.InvalidData,
                $"'{certPath}' is valid from {cert.NotBefore.ToUniversalTime():u} to {cert.NotAfter.ToUniversalTime():u}, not now.", certPath);
        }

        return cert;
    }
}
