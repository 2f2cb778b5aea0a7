using System;
using System.IO;
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
    private SslStreamCertificateContext? _clientContext;

    public TlsClientIdentity(X509Certificate2 caCertificate, X509Certificate2? clientCertificate)
    {
        CA = caCertificate;
        ClientCertificate = clientCertificate;
    }

    public X509Certificate2 CA { get; }
    public X509Certificate2? ClientCertificate { get; }

    /// <summary>
    /// Built once: given only a certificate collection, SslStream builds a new context (and its chain) on every
    /// handshake, which the proxy pays on every connection to a member, in time and in memory for as long as the
    /// connection lives. Offline: nothing is fetched to complete the chain.
    /// </summary>
    private SslStreamCertificateContext? ClientContext => ClientCertificate is null ? null
        : _clientContext ??= SslStreamCertificateContext.Create(ClientCertificate, additionalCertificates: null, offline: true);

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
    /// <param name="dialledHost">
    /// When the TLS server name (SNI) is not the host that was dialled, as when a member is addressed through the proxy,
    /// the certificate must still name the dialled host: that check is done here instead of by the TLS stack.
    /// </param>
    public bool ValidateServer(X509Certificate? certificate, SslPolicyErrors errors, out string? reason, string? dialledHost = null)
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

        if (ChainsTo(certificate, CA, requiredUsage: null, out string? problem)) return true;
        reason = "the server certificate does not chain to the given CA: " + problem;
        return false;
    }

    /// <summary>
    /// Whether a peer's certificate chains to <paramref name="ca"/> alone (never the system store, no revocation fetch),
    /// optionally for one extended key usage; when not, <paramref name="problem"/> holds the chain's own reasons.
    /// </summary>
    public static bool ChainsTo(X509Certificate certificate, X509Certificate2 ca, string? requiredUsage, out string? problem)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (requiredUsage is not null) chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(requiredUsage));
        using var leaf = new X509Certificate2(certificate);
        problem = chain.Build(leaf) ? null : string.Join("; ", Array.ConvertAll(chain.ChainStatus, s => s.StatusInformation.Trim()));
        return problem is null;
    }

    public SslClientAuthenticationOptions ClientOptions(string host, params SslApplicationProtocol[] alpn) => ClientOptions(host, null, null, alpn);

    /// <param name="serverName">The SNI name to send when it differs from <paramref name="host"/> (routing through the proxy).</param>
    /// <param name="onRejected">Told why the server certificate was refused, so errors can say more than "handshake failed".</param>
    public SslClientAuthenticationOptions ClientOptions(string host, string? serverName, Action<string>? onRejected, params SslApplicationProtocol[] alpn) => new()
    {
        TargetHost = serverName ?? host,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ClientCertificateContext = ClientContext,
        ApplicationProtocols = alpn.Length > 0 ? new System.Collections.Generic.List<SslApplicationProtocol>(alpn) : null,
        RemoteCertificateValidationCallback = (_, cert, _, errors) =>
        {
            bool ok = ValidateServer(cert, errors, out string? reason, serverName is null ? null : host);
            if (!ok && reason is not null) onRejected?.Invoke(reason);
            return ok;
        },
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };
}

public static class TlsProbe
{
    /// <summary>One TLS handshake to host:port; null when it succeeded, otherwise why it did not.</summary>
    public static async Task<string?> HandshakeAsync(string host, int port, TlsClientIdentity identity, TimeSpan timeout, CancellationToken cancel) =>
        (await ProbeAsync(host, port, null, identity, timeout, askVersion: false, cancel).ConfigureAwait(false)).Reason;

    /// <summary>
    /// Explains why a TLS endpoint cannot be used: refused, silent, certificate refused either way, or the client
    /// certificate rejected after the handshake (TLS 1.3 servers say so only on the first read). Null when a plain
    /// HTTPS GET /version gets an answer.
    /// </summary>
    public static async Task<string?> DiagnoseAsync(string host, int port, string? serverName, TlsClientIdentity identity, TimeSpan timeout, CancellationToken cancel) =>
        (await ProbeAsync(host, port, serverName, identity, timeout, askVersion: true, cancel).ConfigureAwait(false)).Reason;

    /// <summary>
    /// As <see cref="DiagnoseAsync"/>, also saying whether the failure was only slowness (which a busy member shows
    /// too). <paramref name="connect"/> opens the TCP connection when given (the proxy's probes run on its own loops).
    /// </summary>
    public static Task<(string? Reason, bool TimedOut)> DiagnoseWithTimeoutAsync(string host, int port, TlsClientIdentity identity, TimeSpan timeout, CancellationToken cancel, Func<string, int, CancellationToken, Task<Stream>>? connect = null) =>
        ProbeAsync(host, port, null, identity, timeout, askVersion: true, cancel, connect);

    private static async Task<(string? Reason, bool TimedOut)> ProbeAsync(string host, int port, string? serverName, TlsClientIdentity identity, TimeSpan timeout, bool askVersion, CancellationToken cancel, Func<string, int, CancellationToken, Task<Stream>>? connect = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(timeout);
        connect ??= ConnectAsync;
        string? rejected = null;
        string stage = "connect";
        try
        {
            Stream transport = await connect(host, port, cts.Token).ConfigureAwait(false);
            stage = "handshake";
            await using var ssl = new SslStream(transport, false);
            var options = identity.ClientOptions(host, serverName, r => rejected = r, SslApplicationProtocol.Http11);
            await ssl.AuthenticateAsClientAsync(options, cts.Token).ConfigureAwait(false);
            if (!askVersion) return (null, false);

            stage = "request";
            byte[] request = System.Text.Encoding.ASCII.GetBytes($"GET /version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            await ssl.WriteAsync(request, cts.Token).ConfigureAwait(false);
            byte[] answer = new byte[12];
            int n = await ssl.ReadAsync(answer, cts.Token).ConfigureAwait(false);
            if (n > 0) return (null, false);
            return (RejectedClient(identity, host, port), false);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return ($"no {(stage == "connect" ? "TCP" : "TLS")} answer from {host}:{port} within {timeout.TotalSeconds:0.#} s", true);
        }
        catch (SocketException ex)
        {
            return (ex.SocketErrorCode == SocketError.ConnectionRefused ? $"connection refused by {host}:{port} (nothing listens there)" : $"{host}:{port}: {ex.SocketErrorCode}", false);
        }
        catch (Exception ex) when (ex is AuthenticationException or System.IO.IOException)
        {
            if (rejected is not null) return ($"TLS with {host}:{port} failed: {rejected}", false);
            if (stage == "request") return (RejectedClient(identity, host, port), false);
            string why = ex.GetBaseException().Message;
            if (why.Contains("certificate required", StringComparison.OrdinalIgnoreCase) || why.Contains("bad certificate", StringComparison.OrdinalIgnoreCase))
            {
                return (RejectedClient(identity, host, port), false);
            }

            return ($"TLS handshake with {host}:{port} failed: {why} (is it a TLS port?)", false);
        }
    }

    /// <summary>A TCP connection through .NET's sockets, as a stream that owns its socket.</summary>
    internal static async Task<Stream> ConnectAsync(string host, int port, CancellationToken cancel)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancel).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static string RejectedClient(TlsClientIdentity identity, string host, int port) => identity.ClientCertificate is null
        ? $"{host}:{port} requires a client certificate and none was given"
        : $"{host}:{port} did not accept the client certificate '{identity.ClientCertificate.Subject}' (it must chain to the CA the server trusts and allow client auth)";
}
