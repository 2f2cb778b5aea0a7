using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

public sealed partial class EtcdProxy
{
    private void Bind()
    {
        string host = Options.Listen.DialHost();
        IPAddress address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out IPAddress? ip) ? ip
            : throw new EtcdSecureException("InvalidListenAddress", ErrorKind.InvalidArgument, $"Listen on an IP address or localhost, not '{host}'.", Options.Listen);
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6) _listener.DualMode = IPAddress.IPv6Any.Equals(address);
            _listener.Bind(new IPEndPoint(address, Options.Listen.Port));
            _listener.Listen(4096);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new EtcdSecureException("PortInUse", ErrorKind.ResourceUnavailable, $"{Options.Listen.GetLeftPart(UriPartial.Authority)} is already in use by another process.", Options.Listen, ex);
        }
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken stop = _stopping.Token;
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException && stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of file descriptors and the like: say so, and keep accepting once it passes.
                Log(ProxyLogLevel.Warning, $"accept failed: {ex.SocketErrorCode}");
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            RelayConnection c;
            try
            {
                client.NoDelay = true;
                KeepAlive(client);
                c = new RelayConnection(_transports.Accept(client));
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                Log(ProxyLogLevel.Warning, $"cannot take a connection: {ex.Message}");
                client.Dispose();
                continue;
            }

            // When the caps are full, room is made by shedding a connection that has gone silent or stalled, never
            // one that is handshaking; a newcomer that finds none waits its turn, and is refused only when even the
            // waiting places are all taken by clients that are making progress.
            var (entry, drop, why) = _admission.Enter(c);
            if (drop is not null)
            {
                Reject(drop.EvictedReason!);
                Log(ProxyLogLevel.Verbose, $"dropped {drop.Remote}, silent or stalled before it authenticated ({drop.EvictedReason}), to make room for {c.Remote}");
                drop.Abort();
            }

            if (entry == Admission.Entry.Refused)
            {
                Reject(why!);
                Log(ProxyLogLevel.Verbose, $"refused {c.Remote} before its handshake ({why}): every handshaking and waiting place is taken by clients that are making progress");
                c.Abort();
                await c.DisposeAsync().ConfigureAwait(false);
                continue;
            }

            _ = ServeAsync(c);
        }
    }

    /// <summary>
    /// TCP keepalive, so a peer that vanished without a FIN or RST (a host that died, a dropped NAT entry) is found
    /// and its connection freed: idle time as configured, then probes every 10 s, three unanswered end it.
    /// </summary>
    private void KeepAlive(Socket s)
    {
        if (Options.TcpKeepAlive <= TimeSpan.Zero) return;
        try
        {
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, Math.Max(1, (int)Options.TcpKeepAlive.TotalSeconds));
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 10);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
        }
        catch (Exception ex) when (ex is SocketException or PlatformNotSupportedException)
        {
            // A platform without the per-socket settings keeps the system's keepalive timing.
        }
    }

    /// <summary>
    /// While clients wait for a handshake place, gives each that has spoken the place of one that has gone silent or
    /// stalled since the waiter arrived. Cheap when nobody waits: one count under a lock, four times a second.
    /// </summary>
    private async Task AdmissionSweepAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                if (_admission.Waiting == 0) continue;
                foreach (var (drop, why) in _admission.Rebalance())
                {
                    Reject(why);
                    Log(ProxyLogLevel.Verbose, $"dropped {drop.Remote}, silent or stalled before it authenticated ({why}), for a client that waited");
                    drop.Abort();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task IdleSweepAsync()
    {
        if (Options.IdleTimeout <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Clamp(Options.IdleTimeout.TotalSeconds / 4, 0.05, 1)));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                long cutoff = Environment.TickCount64 - (long)Options.IdleTimeout.TotalMilliseconds;
                foreach (RelayConnection c in _open.Keys)
                {
                    if (c.LastActivity < cutoff && c.Upstream is not null)
                    {
                        Reject("IdleTimeout");
                        c.Abort();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
