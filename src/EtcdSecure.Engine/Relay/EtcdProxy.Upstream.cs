using System;
using System.IO;
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

            if (UpstreamContext().Tls is { } shared)
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
                await ssl.AuthenticateAsClientAsync(_upstream.Value.ClientOptions(m.Host, null, r => rejected = r, alpn), cancel).ConfigureAwait(false);
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

    /// <summary>
    /// The shared client context for the upstream certificate in use, made again after it was reloaded. A context
    /// that is replaced is not freed under connections made on it: each of their SSL* holds a reference of its own,
    /// and the proxy's reference goes when the garbage collector finalizes the old one.
    /// </summary>
    private UpstreamContextState UpstreamContext()
    {
        TlsClientIdentity identity = _upstream.Value;
        if (Volatile.Read(ref _upstreamContext) is { } current && ReferenceEquals(current.Identity, identity)) return current;
        lock (_upstreamContextLock)
        {
            if (_upstreamContext is { } raced && ReferenceEquals(raced.Identity, identity)) return raced;
            string? why = _upstreamUnshared;
            UpstreamTls? tls = why is null ? UpstreamTls.Create(identity, _suites, _protocols, out why) : null;
            var made = new UpstreamContextState(identity, tls, why);
            if (why is not null && _upstreamContext?.Why != why) Log(ProxyLogLevel.Verbose, $"each member connection builds its own TLS context: {why}");
            Volatile.Write(ref _upstreamContext, made);
            return made;
        }
    }

    private sealed record UpstreamContextState(TlsClientIdentity Identity, UpstreamTls? Tls, string? Why);

    private static ulong? RouteOf(string? serverName) =>
        serverName is not null && serverName.EndsWith(EtcdEndpointClient.RouteSuffix, StringComparison.OrdinalIgnoreCase)
        && ulong.TryParse(serverName.AsSpan(0, serverName.Length - EtcdEndpointClient.RouteSuffix.Length), System.Globalization.NumberStyles.HexNumber, null, out ulong id)
            ? id
            : null;
}
