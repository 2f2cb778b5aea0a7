using System;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace EtcdSecure.Engine.Relay;

/// <summary>What the proxy presents to clients.</summary>
public sealed class ServerCredentials
{
    private ServerCredentials(X509Certificate2 certificate, SslStreamCertificateContext context)
    {
        Certificate = certificate;
        Context = context;
    }

    public X509Certificate2 Certificate { get; }

    public SslStreamCertificateContext Context { get; }

    public static ServerCredentials Load(string certPath, string keyPath)
    {
        X509Certificate2 cert = LoadCurrent(certPath, keyPath);
        // offline: no AIA fetches while building the chain (traffic stays on loopback and startup stays fast).
        return new ServerCredentials(cert, SslStreamCertificateContext.Create(cert, additionalCertificates: null, offline: true));
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
