using System;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine;

public static class TlsProbe
{
    /// <summary>One TLS handshake to host:port; null when it succeeded, otherwise why it did not.</summary>
    public static async Task<string?> HandshakeAsync(string host, int port, TlsClientIdentity identity, TimeSpan timeout, CancellationToken cancel) =>
        (await ProbeAsync(host, port, null, identity, timeout, askVersion: false, cancel).ConfigureAwait(false)).Reason;

    /// <summary>
    /// Explains why a TLS endpoint cannot be used: refused, silent, certificate refused either way, or the client
    /// certificate rejected after the handshake (TLS 1.3 servers say so only on the first read); null when a plain
    /// HTTPS GET /version gets an answer. Also says whether the failure was only slowness (which a busy member shows
    /// too). <paramref name="connect"/> opens the TCP connection when given (the proxy's probes run on its own loops).
    /// </summary>
    /// <param name="handshake">
    /// Makes the TLS client over the connection when given, with the identity's trust and certificate, reporting a
    /// refused server certificate through its callback; null from it, or no <paramref name="handshake"/>, uses SslStream.
    /// </param>
    /// <param name="serverName">The SNI name to send when it differs from <paramref name="host"/> (a member routed through the proxy).</param>
    public static Task<(string? Reason, bool TimedOut)> DiagnoseWithTimeoutAsync(string host, int port, TlsClientIdentity identity, TimeSpan timeout, CancellationToken cancel, Func<string, int, CancellationToken, Task<Stream>>? connect = null, ProbeHandshake? handshake = null, string? serverName = null) =>
        ProbeAsync(host, port, serverName, identity, timeout, askVersion: true, cancel, connect, handshake);

    /// <summary>A TLS client handshake as <see cref="DiagnoseWithTimeoutAsync"/> takes it: the stream, or null to leave it to SslStream.</summary>
    public delegate Task<Stream?> ProbeHandshake(Stream transport, string host, Action<string> onRejected, CancellationToken cancel);

    private static async Task<(string? Reason, bool TimedOut)> ProbeAsync(string host, int port, string? serverName, TlsClientIdentity identity, TimeSpan timeout, bool askVersion, CancellationToken cancel, Func<string, int, CancellationToken, Task<Stream>>? connect = null, ProbeHandshake? handshake = null)
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
            Action<string> onRejected = r => rejected = r;
            await using Stream ssl = (handshake is null ? null : await handshake(transport, host, onRejected, cts.Token).ConfigureAwait(false))
                ?? await SslHandshakeAsync(transport, identity.ClientOptions(host, serverName, onRejected, SslApplicationProtocol.Http11), cts.Token).ConfigureAwait(false);
            if (!askVersion) return (null, false);

            stage = "request";
            byte[] request = System.Text.Encoding.ASCII.GetBytes($"GET /version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            await ssl.WriteAsync(request, cts.Token).ConfigureAwait(false);
            byte[] answer = new byte[12];
            int n = await ssl.ReadAsync(answer, cts.Token).ConfigureAwait(false);
            if (n > 0) return (null, false);
            return (RejectedClient(identity, host, port, afterHandshake: true), false);
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
            if (stage == "request") return (RejectedClient(identity, host, port, afterHandshake: true), false);
            string why = ex.GetBaseException().Message;
            if (why.Contains("certificate required", StringComparison.OrdinalIgnoreCase) || why.Contains("bad certificate", StringComparison.OrdinalIgnoreCase))
            {
                return (RejectedClient(identity, host, port), false);
            }

            return ($"TLS handshake with {host}:{port} failed: {why} (is it a TLS port?)", false);
        }
    }

    /// <summary>SslStream over <paramref name="transport"/>, which it owns from here on, failure or not.</summary>
    private static async Task<Stream> SslHandshakeAsync(Stream transport, SslClientAuthenticationOptions options, CancellationToken cancel)
    {
        var ssl = new SslStream(transport, false);
        try
        {
            await ssl.AuthenticateAsClientAsync(options, cancel).ConfigureAwait(false);
            return ssl;
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
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

    /// <param name="afterHandshake">
    /// The server ended the connection after a handshake that looked complete: with TLS 1.3 that is how a refused
    /// client certificate shows (etcd closes without an alert the client gets to read), and also how a server that is
    /// shutting down looks, so the reason names both.
    /// </param>
    private static string RejectedClient(TlsClientIdentity identity, string host, int port, bool afterHandshake = false) => identity.ClientCertificate is null
        ? $"{host}:{port} requires a client certificate and none was given"
        : $"{host}:{port} did not accept the client certificate '{identity.ClientCertificate.Subject}' (it must chain to the CA the server trusts and allow client auth)"
            + (afterHandshake ? ", or closed the connection right after the TLS handshake, as a server that is shutting down does" : "");
}
