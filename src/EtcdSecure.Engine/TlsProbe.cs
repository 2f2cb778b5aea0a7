using System;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine;

/// <summary>TLS client settings for talking to etcd: trust only the cluster's CA, present a client certificate.</summary>
public sealed class TlsClientIdentity
{
    public TlsClientIdentity(X509Certificate2 caCertificate, X509Certificate2? clientCertificate)
    {
        CA = caCertificate;
        ClientCertificate = clientCertificate;
    }

    public X509Certificate2 CA { get; }
    public X509Certificate2? ClientCertificate { get; }

    public static TlsClientIdentity Load(string caPath, string? certPath, string? keyPath)
    {
        X509Certificate2 ca = Pki.CertificateFile.LoadFirst(caPath);
        X509Certificate2? client = certPath is null || keyPath is null ? null : LoadWithKey(certPath, keyPath);
        return new TlsClientIdentity(ca, client);
    }

    public static X509Certificate2 LoadWithKey(string certPath, string keyPath)
    {
        try
        {
            using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            // A PEM-loaded key is ephemeral; a PKCS#12 round trip makes it usable by every TLS stack (PITFALLS.md, item 12).
#pragma warning disable SYSLIB0057
            return new X509Certificate2(pem.Export(X509ContentType.Pkcs12));
#pragma warning restore SYSLIB0057
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            throw new EtcdSecureException("CertificateNotUsable", ErrorKind.InvalidData, $"'{certPath}' with key '{keyPath}' cannot be used for TLS: {ex.Message}", certPath, ex);
        }
    }

    /// <summary>Validates a server certificate against this CA only (not the system store), with the host-name check kept.</summary>
    public bool ValidateServer(X509Certificate? certificate, SslPolicyErrors errors, out string? reason)
    {
        reason = null;
        if (certificate is null)
        {
            reason = "the server sent no certificate";
            return false;
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            reason = "the server certificate does not name the host that was dialled (SAN mismatch)";
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(CA);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        if (chain.Build(leaf)) return true;
        reason = "the server certificate does not chain to the given CA: " + string.Join("; ", Array.ConvertAll(chain.ChainStatus, s => s.StatusInformation.Trim()));
        return false;
    }

    public SslClientAuthenticationOptions ClientOptions(string host, params SslApplicationProtocol[] alpn) => new()
    {
        TargetHost = host,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ClientCertificates = ClientCertificate is null ? null : new X509CertificateCollection { ClientCertificate },
        ApplicationProtocols = alpn.Length > 0 ? new System.Collections.Generic.List<SslApplicationProtocol>(alpn) : null,
        RemoteCertificateValidationCallback = (_, cert, _, errors) => ValidateServer(cert, errors, out _),
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };
}

public static class TlsProbe
{
    /// <summary>One TLS handshake to host:port; null when it succeeded, otherwise why it did not.</summary>
    public static async Task<string?> HandshakeAsync(string host, int port, TlsClientIdentity identity, TimeSpan timeout, CancellationToken cancel)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(timeout);
        using var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            await using var ssl = new SslStream(tcp.GetStream(), false);
            await ssl.AuthenticateAsClientAsync(identity.ClientOptions(host), cts.Token).ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return $"no TLS answer from {host}:{port} within {timeout.TotalSeconds:0.#} s";
        }
        catch (SocketException ex)
        {
            return $"{host}:{port}: {ex.SocketErrorCode}";
        }
        catch (Exception ex) when (ex is AuthenticationException or System.IO.IOException)
        {
            return $"TLS handshake with {host}:{port} failed: {ex.GetBaseException().Message}";
        }
    }
}
