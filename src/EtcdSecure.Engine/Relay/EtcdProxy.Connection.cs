using System;
using System.IO;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

public sealed partial class EtcdProxy
{
    private async Task ServeAsync(RelayConnection c)
    {
        _open[c] = 0;
        Interlocked.Increment(ref _total);
        try
        {
            await HandshakeAndRelayAsync(c).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or AuthenticationException or System.Security.Cryptography.CryptographicException)
        {
            // A peer went away or the proxy is stopping; the connection simply ends.
        }
        catch (Exception ex)
        {
            Log(ProxyLogLevel.Warning, $"connection from {c.Remote} ended unexpectedly: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            _admission.Leave(c);
            _open.TryRemove(c, out _);
            if (c.Relayed) Interlocked.Decrement(ref _relayed);
            if (c.Member is { } m) Interlocked.Decrement(ref m.ActiveCount);
            await c.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task HandshakeAndRelayAsync(RelayConnection c)
    {
        using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token))
        {
            handshake.CancelAfter(Options.HandshakeTimeout);
            // A client that waits for a handshake place waits within its handshake timeout, not beyond it.
            bool turn;
            try
            {
                turn = await _admission.TurnAsync(c, handshake.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
            {
                Reject("HandshakeTimeout");
                Log(ProxyLogLevel.Verbose, $"refused {c.Remote}: no handshake place came free within the handshake timeout");
                return;
            }

            if (!turn) return;
            (string Reason, string? Detail)? failure = await AcceptTlsAsync(c, handshake.Token).ConfigureAwait(false);
            if (failure is { } f)
            {
                // An evicted connection was counted and logged when it was dropped.
                if (c.EvictedReason is null)
                {
                    Reject(f.Reason);
                    Log(ProxyLogLevel.Verbose, $"refused {c.Remote}: {f.Detail ?? f.Reason}");
                }

                return;
            }

            if (!_admission.Authenticated(c)) return;
            if (Interlocked.Increment(ref _relayed) > Options.MaxConnections)
            {
                Interlocked.Decrement(ref _relayed);
                Reject("MaxConnections");
                Log(ProxyLogLevel.Verbose, $"refused {c.Remote}: {Options.MaxConnections} connections are relayed already (MaxConnections)");
                return;
            }

            c.Relayed = true;
            if (!ChooseIdentity(c, out string? noIdentity))
            {
                Reject("NoUpstreamIdentity");
                Log(ProxyLogLevel.Verbose, $"refused {c.Remote}: {noIdentity}");
                return;
            }

            if (!await ConnectUpstreamAsync(c, handshake.Token).ConfigureAwait(false)) return;
        }

        // From here on the client is authenticated, and its connection is driven by its loop's thread alone. The
        // handshakes may have finished on a thread-pool thread (the client's always runs there, and the member's
        // goes on there when its answer was already waiting), so the pumps move to the loop first: their reads must
        // wait on the loop's thread for the idle free to run.
        await c.ClientStream.BeginRelay();

        // Both handshakes are done and no pump runs yet: the one moment nothing else touches either SSL*.
        ReleaseBuffersWhenIdle(c.Client!, c.ClientStream);
        ReleaseBuffersWhenIdle(c.Upstream!, c.UpstreamStream!);

        c.Touch();
        if (c.Records is { } records)
        {
            if (DirectRelay.TryStart(this, c, out string? why) is { } relayed)
            {
                Interlocked.Increment(ref _directRelays);
                await relayed.ConfigureAwait(false);
                return;
            }

            Volatile.Write(ref _lastNotDirect, why);
            records.Bounded = false;
        }

        Task up = PumpAsync(c, c.Client!, c.Upstream!, c.EndUpstream!, c.UpstreamStream!, up: true);
        Task down = PumpAsync(c, c.Upstream!, c.Client!, c.Client!.ShutdownAsync, c.ClientStream, up: false);
        // When one side fails outright the other pump is stuck in a read; tearing the connection down ends it.
        Task first = await Task.WhenAny(up, down).ConfigureAwait(false);
        if (first.IsFaulted) c.Abort();
        await Task.WhenAll(up, down).ConfigureAwait(false);
    }
}
