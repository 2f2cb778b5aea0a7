using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

/// <summary>One client connection and, once chosen, its member connection.</summary>
internal sealed class RelayConnection : System.IAsyncDisposable
{
    private long _lastActivity = System.Environment.TickCount64;

    public RelayConnection(Socket client, EventLoop? loop)
    {
        ClientSocket = client;
        EndPoint? remote = client.RemoteEndPoint;
        Remote = remote?.ToString() ?? "?";
        Source = Admission.SourceOf(remote);
        Loop = loop;
        // Until the client is authenticated its stream's continuations leave the loop's thread (see LoopStream.Inline).
        ClientStream = loop is null ? new NetworkStream(client, ownsSocket: false) : loop.Attach(client, inline: false);
    }

    public Socket ClientSocket { get; }
    public EventLoop? Loop { get; }

    /// <summary>The client's bytes: on the connection's event loop, or a NetworkStream without one.</summary>
    public Stream ClientStream { get; }
    public string Remote { get; }

    /// <summary>The scope of the per-address pending cap this connection counts in.</summary>
    public string Source { get; }
    public SslStream? Client { get; set; }
    public string? ServerName { get; set; }
    public SslApplicationProtocol Protocol { get; set; }
    public Socket? UpstreamSocket { get; set; }
    public Stream? UpstreamStream { get; set; }
    public SslStream? Upstream { get; set; }
    public Upstream? Member { get; set; }

    /// <summary>Counted against MaxConnections (it passed client authentication).</summary>
    public bool Relayed { get; set; }

    // Admission's bookkeeping, under its lock.
    public LinkedListNode<RelayConnection>? PendingNode { get; set; }
    public LinkedListNode<RelayConnection>? SourceNode { get; set; }

    /// <summary>Why admission dropped this connection before it authenticated; null while it was not. Set under admission's lock.</summary>
    public string? EvictedReason { get; set; }

    public long LastActivity => Interlocked.Read(ref _lastActivity);

    public void Touch() => Interlocked.Exchange(ref _lastActivity, System.Environment.TickCount64);

    /// <summary>Ends both sides at once (RST), waking any pending reads.</summary>
    public void Abort()
    {
        Kill(ClientStream, ClientSocket);
        if (UpstreamSocket is { } u) Kill(UpstreamStream, u);
    }

    private static void Kill(Stream? stream, Socket s)
    {
        if (stream is LoopStream loop)
        {
            // Its pending reads and writes must fail too: the loop would never hear of this socket again.
            loop.Abort();
            return;
        }

        try
        {
            s.LingerState = new LingerOption(true, 0);
        }
        catch (System.Exception ex) when (ex is SocketException or System.ObjectDisposedException)
        {
        }

        s.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (Client is not null) await Client.DisposeAsync().ConfigureAwait(false);
        if (Upstream is not null) await Upstream.DisposeAsync().ConfigureAwait(false);
        await ClientStream.DisposeAsync().ConfigureAwait(false);
        ClientSocket.Dispose();
        UpstreamSocket?.Dispose();
    }
}
