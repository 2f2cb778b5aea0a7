using System;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Health;

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
        SslStream? ssl = null;
        string? rejected = null;
        try
        {
            // Beside the client's connection: on a loop, both sockets of a relayed pair are driven by one thread.
            transport = await c.ClientStream.ConnectBesideAsync(m.Host, m.Port, cancel).ConfigureAwait(false);
            KeepAlive(transport.Socket);

            ssl = new SslStream(transport, leaveInnerStreamOpen: false);
            SslApplicationProtocol[] alpn = c.Protocol == default ? Array.Empty<SslApplicationProtocol>() : new[] { c.Protocol };
            await ssl.AuthenticateAsClientAsync(_upstream.Value.ClientOptions(m.Host, null, r => rejected = r, alpn), cancel).ConfigureAwait(false);
            c.UpstreamStream = transport;
            c.Upstream = ssl;
            return null;
        }
        catch (Exception ex) when (ex is SocketException or IOException or AuthenticationException or OperationCanceledException)
        {
            if (ssl is not null) await ssl.DisposeAsync().ConfigureAwait(false);
            transport?.Dispose();
            return rejected ?? (ex is OperationCanceledException ? "no TLS answer in time" : ex.GetBaseException().Message);
        }
    }

    private static ulong? RouteOf(string? serverName) =>
        serverName is not null && serverName.EndsWith(EtcdEndpointClient.RouteSuffix, StringComparison.OrdinalIgnoreCase)
        && ulong.TryParse(serverName.AsSpan(0, serverName.Length - EtcdEndpointClient.RouteSuffix.Length), System.Globalization.NumberStyles.HexNumber, null, out ulong id)
            ? id
            : null;
}
