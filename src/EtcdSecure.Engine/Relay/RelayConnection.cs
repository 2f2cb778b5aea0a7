using System.Collections.Generic;
using System.Net;
using System.Net.Security;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

/// <summary>One client connection and, once chosen, its member connection.</summary>
internal sealed class RelayConnection : System.IAsyncDisposable
{
    private long _lastActivity = System.Environment.TickCount64;

    public RelayConnection(Transport client)
    {
        ClientStream = client;
        EndPoint? remote = client.Socket.RemoteEndPoint;
        Remote = remote?.ToString() ?? "?";
        Source = Admission.SourceOf(remote);
    }

    /// <summary>The client's bytes, under its TLS.</summary>
    public Transport ClientStream { get; }
    public string Remote { get; }

    /// <summary>The scope of the per-address pending cap this connection counts in.</summary>
    public string Source { get; }
    public SslStream? Client { get; set; }

    /// <summary>What the client's SslStream reads its handshake through, when the connection may be relayed directly.</summary>
    public WholeRecords? Records { get; set; }
    public string? ServerName { get; set; }
    public SslApplicationProtocol Protocol { get; set; }
    public Transport? UpstreamStream { get; set; }

    /// <summary>The member's bytes in the clear: an <see cref="UpstreamTlsStream"/>, or an SslStream where the shared context is unavailable.</summary>
    public System.IO.Stream? Upstream { get; set; }

    /// <summary>Sends close_notify to the member.</summary>
    public System.Func<Task>? EndUpstream { get; set; }
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
        ClientStream.Abort();
        UpstreamStream?.Abort();
    }

    public async ValueTask DisposeAsync()
    {
        if (Client is not null) await Client.DisposeAsync().ConfigureAwait(false);
        if (Upstream is not null) await Upstream.DisposeAsync().ConfigureAwait(false);
        await ClientStream.DisposeAsync().ConfigureAwait(false);
        if (UpstreamStream is not null) await UpstreamStream.DisposeAsync().ConfigureAwait(false);
    }
}
