using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// How a proxy's client handshakes get their cipher suites: from one OpenSSL server context (SSL_CTX) they all share,
/// or from a policy passed with each handshake.
/// </summary>
/// <remarks>
/// SslStream shares one SSL_CTX among the connections of a server certificate only when no CipherSuitesPolicy is
/// given; with one, every connection builds a context of its own, which it keeps for its whole life: about 12 KiB per
/// connection (idle benchmark: 77 against 65 KiB per connection) and the work of loading the certificate and key
/// into it on each handshake. So the proxy passes no policy and sets its suites on the shared context itself:
/// <list type="number">
/// <item>a handshake with itself, in memory, makes SslStream create that context before any client can reach it;</item>
/// <item>the suites are set on it, and session resumption is turned off there, as it is with a context per
/// connection (a resumed session would come back without its client certificate being judged again);</item>
/// <item>a second handshake checks that SslStream hands out that very context, offering exactly those suites.</item>
/// </list>
/// If any step fails, each handshake passes the policy as before and <see cref="SharedUnavailable"/> says why.
/// Either way, every client handshake is checked afterwards for a suite on the list.
/// </remarks>
public sealed class ServerTls
{
    private ServerTls(CipherSuitesPolicy? perHandshake, IReadOnlyList<TlsCipherSuite>? allowed, string? sharedUnavailable)
    {
        PerHandshake = perHandshake;
        Allowed = allowed is null ? null : new HashSet<TlsCipherSuite>(allowed);
        SharedUnavailable = sharedUnavailable;
    }

    /// <summary>The policy each handshake passes to SslStream; null when the shared context carries the suites.</summary>
    public CipherSuitesPolicy? PerHandshake { get; }

    /// <summary>The suites a client may end up with; null where the platform chooses (Windows).</summary>
    public IReadOnlySet<TlsCipherSuite>? Allowed { get; }

    /// <summary>Why handshakes do not share one context; null when they do.</summary>
    public string? SharedUnavailable { get; }

    /// <summary>Whether a finished handshake got a suite on the list.</summary>
    public bool Permits(TlsCipherSuite suite) => Allowed is null || Allowed.Contains(suite);

    /// <param name="policy">The same suites as a policy (<see cref="TlsPolicy.Create"/>): null where the system chooses them.</param>
    /// <param name="turnedOff">Why a setting keeps handshakes from sharing a context, or null.</param>
    public static ServerTls Prepare(SslStreamCertificateContext context, IReadOnlyList<TlsCipherSuite> suites, CipherSuitesPolicy? policy, SslProtocols protocols, List<SslApplicationProtocol> alpn, string? turnedOff)
    {
        if (policy is null) return new ServerTls(null, null, "the system chooses the cipher suites (Windows)");
        if (turnedOff is not null) return new ServerTls(policy, suites, turnedOff);
        string? why;
        try
        {
            why = Share(context, suites, protocols, alpn);
        }
        catch (Exception ex) when (ex is AggregateException or AuthenticationException or IOException or OperationCanceledException or ExternalException or InvalidOperationException)
        {
            why = $"the handshake that sets it up failed: {ex.GetBaseException().Message}";
        }

        return why is null ? new ServerTls(null, suites, null) : new ServerTls(policy, suites, why);
    }

    /// <returns>Null when every handshake with this certificate context now shares one SSL_CTX with the suites set; otherwise why not.</returns>
    private static string? Share(SslStreamCertificateContext context, IReadOnlyList<TlsCipherSuite> suites, SslProtocols protocols, List<SslApplicationProtocol> alpn)
    {
        // No policy, the same versions and ALPN as every client handshake: SslStream keys its shared context by those.
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            EnabledSslProtocols = protocols,
            ApplicationProtocols = alpn,
            AllowRenegotiation = false,
        };

        OpenSsl? f = null;
        string? why = null;
        IntPtr shared = IntPtr.Zero;
        string[] expected = Array.Empty<string>();

        // The first handshake makes SslStream create the context; libssl is loaded once it ran.
        HandshakeWithSelf(options, server =>
        {
            if (LibSsl.Bind() is not { } lib) { why = LibSsl.Why; return; }
            f = OpenSsl.From(lib);
            if (f is null) { why = $"{lib.Path} lacks a function this needs (OpenSSL 1.1.1 and later have them all)"; return; }
            if (LibSsl.HandleOf(server) is not { } handle) { why = "SslStream's OpenSSL handle cannot be reached"; return; }
            LibSsl.Call(handle, f, (ssl, f) =>
            {
                IntPtr ctx = f.GetCtx(ssl);
                var tls13 = new List<string>();
                var tls12 = new List<string>();
                if (OpenSsl.SuiteNames(ssl, suites, f.CipherFind.Invoke, f.CipherName.Invoke, tls13, tls12) is { } unknown) { why = unknown; return false; }

                // An empty TLS 1.2 list is refused by OpenSSL; a policy per handshake turns TLS 1.2 off instead.
                if (tls12.Count == 0) { why = "the suites given are all TLS 1.3 ones"; return false; }
                if (ctx == IntPtr.Zero || f.SetSuites(ctx, string.Join(':', tls13)) != 1 || f.SetCipherList(ctx, string.Join(':', tls12)) != 1)
                {
                    why = "OpenSSL refused the suites on the shared context";
                    return false;
                }

                f.CtxCtrl(ctx, OpenSsl.CtrlSetSessCacheMode, 0, IntPtr.Zero);
                f.SetOptions(ctx, OpenSsl.OpNoTicket);
                f.SetTickets(ctx, 0);
                shared = ctx;
                expected = tls13.Concat(tls12).ToArray();
                return true;
            });
        });
        if (why is not null) return why;
        if (f is null || shared == IntPtr.Zero) return "SslStream's OpenSSL handle was gone before it could be used";

        // The second handshake must get that very context, offering exactly those suites, and end on one of them.
        bool verified = false;
        HandshakeWithSelf(options, server =>
        {
            if (LibSsl.HandleOf(server) is not { } handle) { why = "SslStream's OpenSSL handle cannot be reached"; return; }
            if (!suites.Contains(server.NegotiatedCipherSuite)) { why = $"a check handshake ended on {server.NegotiatedCipherSuite}"; return; }
            LibSsl.Call(handle, f, (ssl, f) =>
            {
                if (f.GetCtx(ssl) != shared) { why = "SslStream did not reuse its server context"; return false; }
                var offered = new List<string>();
                for (int i = 0; f.CipherList(ssl, i) is var p && p != IntPtr.Zero; i++) offered.Add(Marshal.PtrToStringUTF8(p)!);
                if (!offered.ToHashSet(StringComparer.Ordinal).SetEquals(expected))
                {
                    why = $"the shared context offers {string.Join(':', offered)} instead of {string.Join(':', expected)}";
                    return false;
                }

                verified = true;
                return true;
            });
        });
        return why ?? (verified ? null : "SslStream's OpenSSL handle was gone before the check");
    }

    /// <summary>A TLS handshake between two SslStreams over in-memory pipes; <paramref name="look"/> sees the server side before both close.</summary>
    private static void HandshakeWithSelf(SslServerAuthenticationOptions options, Action<SslStream> look)
    {
        var up = new Pipe();
        var down = new Pipe();
        using var server = new SslStream(new DuplexPipe(up.Reader, down.Writer));
        using var client = new SslStream(new DuplexPipe(down.Reader, up.Writer));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var clientOptions = new SslClientAuthenticationOptions
        {
            TargetHost = "etcdsecure-self-check",
            EnabledSslProtocols = options.EnabledSslProtocols,
            // Both ends are this process, in memory: there is nobody to authenticate.
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        };
        Task.WaitAll(new[] { server.AuthenticateAsServerAsync(options, timeout.Token), client.AuthenticateAsClientAsync(clientOptions, timeout.Token) }, timeout.Token);
        look(server);
    }

    /// <summary>One end of an in-memory connection: reads from one pipe, writes to the other.</summary>
    private sealed class DuplexPipe : DuplexStream
    {
        private readonly Stream _in;
        private readonly Stream _out;

        public DuplexPipe(PipeReader reader, PipeWriter writer)
        {
            _in = reader.AsStream();
            _out = writer.AsStream();
        }

        public override int Read(byte[] buffer, int offset, int count) => _in.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _in.ReadAsync(buffer, cancellationToken);
        public override void Write(byte[] buffer, int offset, int count) => _out.Write(buffer, offset, count);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _out.WriteAsync(buffer, cancellationToken);
        public override void Flush() => _out.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => _out.FlushAsync(cancellationToken);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _in.Dispose();
                _out.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
