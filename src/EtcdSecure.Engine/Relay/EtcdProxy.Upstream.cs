using System;
using System.IO;
using System.Linq;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Health;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

public sealed partial class EtcdProxy
{
    private async Task<bool> ConnectUpstreamAsync(RelayConnection c, CancellationToken cancel)
    {
        ulong? route = RouteOf(c.ServerName);
        Upstream? avoid = null;
        int attempts = route is null ? Math.Max(1, Pool.Members.Count) : 1;
        for (int attempt = 0; attempt < attempts; attempt++)
        {
            Upstream? m = Pool.Pick(route, avoid);
            if (m is null)
            {
                Reject(route is null ? "NoLiveMember" : "RoutedMemberDown");
                return false;
            }

            Interlocked.Increment(ref m.ActiveCount);
            Interlocked.Increment(ref m.TotalCount);
            string? why = await TryConnectAsync(c, m, cancel).ConfigureAwait(false);
            if (why is null)
            {
                c.Member = m;
                if (!m.Alive) Pool.Succeeded(m);
                return true;
            }

            Interlocked.Decrement(ref m.ActiveCount);
            if (cancel.IsCancellationRequested) return false;
            Pool.Failed(m, why);
            avoid = m;
        }

        Reject("NoLiveMember");
        return false;
    }

    private async Task<string?> TryConnectAsync(RelayConnection c, Upstream m, CancellationToken cancel)
    {
        Transport? transport = null;
        Stream? tls = null;
        string? rejected = null;
        bool connected = false;
        try
        {
            // Beside the client's connection: on a loop, both sockets of a relayed pair are driven by one thread.
            transport = await c.ClientStream.ConnectBesideAsync(m.Host, m.Port, cancel).ConfigureAwait(false);
            KeepAlive(transport.Socket);

            TlsClientIdentity identity = c.Identity ?? _upstream.Value;
            if (UpstreamContext(identity).Tls is { } shared)
            {
                UpstreamTlsStream own = await UpstreamTlsStream.OpenAsync(shared, transport, m.Host, c.Protocol, r => rejected = r, cancel).ConfigureAwait(false);
                tls = own;
                c.EndUpstream = own.ShutdownAsync;
            }
            else
            {
                var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
                tls = ssl;
                SslApplicationProtocol[] alpn = c.Protocol == default ? Array.Empty<SslApplicationProtocol>() : new[] { c.Protocol };
                await ssl.AuthenticateAsClientAsync(identity.ClientOptions(m.Host, null, r => rejected = r, alpn), cancel).ConfigureAwait(false);
                c.EndUpstream = ssl.ShutdownAsync;
            }

            c.UpstreamStream = transport;
            c.Upstream = tls;
            connected = true;
            return null;
        }
        catch (Exception ex) when (ex is SocketException or IOException or AuthenticationException or OperationCanceledException)
        {
            return rejected ?? (ex is OperationCanceledException ? "no TLS answer in time" : ex.GetBaseException().Message);
        }
        finally
        {
            // Whatever ended the attempt (a stop disposes the transport under it, too): the proxy's own TLS
            // connection holds an SSL* that nothing but Dispose frees.
            if (!connected)
            {
                if (tls is not null) await tls.DisposeAsync().ConfigureAwait(false);
                transport?.Dispose();
            }
        }
    }

    /// <summary>
    /// The members' probes take the TLS path member connections take: a member is in rotation because a handshake
    /// like the one each client's connection will make has just worked, with the same suites and the same judgment
    /// of its certificate. Null (no shared context) leaves the probe to SslStream, as member connections are then.
    /// </summary>
    private async Task<Stream?> ProbeHandshakeAsync(Stream transport, string host, Action<string> onRejected, CancellationToken cancel) =>
        UpstreamContext().Tls is { } shared && transport is Transport t
            ? await UpstreamTlsStream.OpenAsync(shared, t, host, SslApplicationProtocol.Http11, onRejected, cancel).ConfigureAwait(false)
            : null;

    /// <summary>The shared client context of the proxy's own upstream certificate (its probes, and single-identity clients).</summary>
    private UpstreamContextState UpstreamContext() => UpstreamContext(_upstream.Value);

    /// <summary>
    /// The shared client context for an upstream identity, made again after the identities were reloaded. A context
    /// that is replaced is not freed under connections made on it: each of their SSL* holds a reference of its own,
    /// and the proxy's reference goes when the garbage collector finalizes the old one.
    /// </summary>
    private UpstreamContextState UpstreamContext(TlsClientIdentity identity)
    {
        lock (_upstreamContextLock)
        {
            var now = (_upstream.Value, _identities?.Value);
            if (!ReferenceEquals(now.Item1, _contextsFor.Own) || !ReferenceEquals(now.Item2, _contextsFor.PerClient))
            {
                _upstreamContexts.Clear();
                _contextsFor = now;
            }

            if (_upstreamContexts.TryGetValue(identity, out UpstreamContextState? known)) return known;
            string? why = _upstreamUnshared;
            UpstreamTls? tls = why is null ? UpstreamTls.Create(identity, _suites, _protocols, out why) : null;
            var made = new UpstreamContextState(identity, tls, why);
            if (why is not null && _upstreamContexts.Values.All(c => c.Why != why)) Log(ProxyLogLevel.Verbose, $"each member connection builds its own TLS context: {why}");
            _upstreamContexts[identity] = made;
            return made;
        }
    }

    /// <summary>
    /// The identity a client reaches etcd with: its own (the identity whose user is its certificate's common name),
    /// the fallback identity when one was chosen, or none (null) in per-client mode; the proxy's own without it.
    /// </summary>
    private bool ChooseIdentity(RelayConnection c, out string? why)
    {
        why = null;
        if (_identities is not { } ids) return true;
        // SslStream hands the client's certificate over as an X509Certificate2; a client without one has no user.
        string? user = (c.Client?.RemoteCertificate as System.Security.Cryptography.X509Certificates.X509Certificate2)
            ?.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, false);
        if (user is not null && ids.Value.ByUser.TryGetValue(user, out TlsClientIdentity? own))
        {
            (c.Identity, c.IdentityUser) = (own, user);
            return true;
        }

        if (Options.FallbackIdentity is { } fallback && ids.Value.ByUser.TryGetValue(fallback, out TlsClientIdentity? least))
        {
            (c.Identity, c.IdentityUser) = (least, fallback);
            return true;
        }

        why = user is null ? "it has no certificate common name to map to an etcd user" : $"the proxy holds no upstream identity for user '{user}'";
        return false;
    }

    private sealed record UpstreamContextState(TlsClientIdentity Identity, UpstreamTls? Tls, string? Why);

    private static ulong? RouteOf(string? serverName) =>
        serverName is not null && serverName.EndsWith(EtcdEndpointClient.RouteSuffix, StringComparison.OrdinalIgnoreCase)
        && ulong.TryParse(serverName.AsSpan(0, serverName.Length - EtcdEndpointClient.RouteSuffix.Length), System.Globalization.NumberStyles.HexNumber, null, out ulong id)
            ? id
            : null;
}
