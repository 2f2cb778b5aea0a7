using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

public sealed partial class EtcdProxy
{
    private static readonly List<SslApplicationProtocol> ServerAlpn = new() { SslApplicationProtocol.Http2, SslApplicationProtocol.Http11 };
    private static readonly byte[] PlainHttpAnswer = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"u8.ToArray();

    /// <returns>Null when the client is in, otherwise the reason it was refused (the counter name) and what was seen.</returns>
    private async Task<(string Reason, string? Detail)?> AcceptTlsAsync(RelayConnection c, CancellationToken cancel)
    {
        // Peek at the first byte: a TLS handshake record starts with 22. Anything else is most likely plain HTTP,
        // which deserves the same plain answer Go's servers give instead of a silent close.
        byte[] first = new byte[1];
        int n;
        try
        {
            n = await c.ClientStream.PeekAsync(first, cancel).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            return ("HandshakeTimeout", "sent nothing within the handshake timeout");
        }

        if (n == 0) return ("ClosedBeforeHandshake", null);
        c.Heard();
        if (first[0] != 22)
        {
            if (first[0] is >= (byte)'A' and <= (byte)'Z')
            {
                await c.ClientStream.WriteAsync(PlainHttpAnswer, cancel).ConfigureAwait(false);
                // Closing with the request still unread would send a reset and lose the answer: read it first.
                byte[] discard = new byte[Math.Clamp(c.ClientStream.Socket.Available, 1, 8192)];
                await c.ClientStream.ReadAsync(discard, cancel).ConfigureAwait(false);
                await c.ClientStream.ShutdownSendAsync().ConfigureAwait(false);
                return ("PlainHttp", "sent plain HTTP to the TLS port");
            }

            return ("NotTls", $"the first byte ({first[0]}) does not start a TLS handshake");
        }

        (string Reason, string Detail)? refused = null;
        // The same credentials decide the suites offered and the suites accepted, should a reload land mid-handshake.
        ServerCredentials server = _server.Value;
        // Read record by record when the connection may be relayed directly, so that SslStream holds nothing past its handshake.
        if (_directOff is null && c.ClientStream.Direct is not null) c.Records = new WholeRecords(c.ClientStream);
        var ssl = new SslStream(new HandshakeWatch(c, c.Records ?? (System.IO.Stream)c.ClientStream), leaveInnerStreamOpen: false);
        c.Client = ssl;
        try
        {
            await ssl.AuthenticateAsServerAsync((_, hello, _, _) =>
            {
                c.ServerName = hello.ServerName;
                return ValueTask.FromResult(ServerOptions(server, r => refused = r));
            }, null, cancel).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            return ("HandshakeTimeout", "did not finish its TLS handshake within the handshake timeout");
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            return refused is { } r ? r : ("TlsHandshakeFailed", ex.GetBaseException().Message);
        }

        if (!server.Tls.Permits(ssl.NegotiatedCipherSuite))
        {
            // Cannot happen while the shared context holds the list; checked so that nothing relays over a suite outside it.
            return ("CipherSuiteRefused", $"ended its handshake on {ssl.NegotiatedCipherSuite}, which is not on the proxy's list");
        }

        c.Protocol = ssl.NegotiatedApplicationProtocol;
        return null;
    }

    /// <summary>
    /// The TLS settings for one client. The client's chain is built by SslStream with the client CA bundle alone,
    /// for client auth, with nothing downloaded; this runs on a thread-pool thread (the client stream's
    /// continuations do not run on its loop until it is authenticated), so no client can hold up a relay thread.
    /// </summary>
    private SslServerAuthenticationOptions ServerOptions(ServerCredentials server, Action<(string, string)> refuse)
    {
        ClientPolicy? clients = _clients?.Value;
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = server.Context,
            EnabledSslProtocols = _protocols,
            CipherSuitesPolicy = server.Tls.PerHandshake,
            AllowRenegotiation = false,
            ApplicationProtocols = ServerAlpn,
            ClientCertificateRequired = clients is not null,
            CertificateChainPolicy = clients?.Trust.ChainPolicy(TrustedCAs.ClientAuth),
            RemoteCertificateValidationCallback = clients is null ? null : (_, cert, chain, errors) =>
            {
                if (clients.Judge(cert, chain, errors) is not { } why) return true;
                refuse(why);
                return false;
            },
        };
    }
}
