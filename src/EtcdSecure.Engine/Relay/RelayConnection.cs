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

    /// <summary>What the member connection presents for this client; null for the proxy's own upstream certificate.</summary>
    public TlsClientIdentity? Identity { get; set; }

    /// <summary>The etcd user whose identity <see cref="Identity"/> is (the client's own, or the fallback).</summary>
    public string? IdentityUser { get; set; }

    /// <summary>Counted against MaxConnections (it passed client authentication).</summary>
    public bool Relayed { get; set; }

    // Admission's bookkeeping, under its lock.
    public LinkedListNode<RelayConnection>? AdmissionNode { get; set; }
    public LinkedListNode<RelayConnection>? SourceNode { get; set; }

    /// <summary>Counted as handshaking (not waiting for its turn). Set under admission's lock.</summary>
    public bool Admitted { get; set; }

    /// <summary>Completed when a waiting connection may start its handshake (true) or was shed while it waited (false).</summary>
    public TaskCompletionSource<bool>? Turn { get; set; }

    /// <summary>When the connection was accepted (Environment.TickCount64).</summary>
    public long AcceptedAt { get; } = System.Environment.TickCount64;

    private volatile bool _clientSpoke;
    private long _spokeAt;

    /// <summary>Whether any of the client's handshake bytes have arrived.</summary>
    public bool ClientSpoke => _clientSpoke;

    /// <summary>When the proxy last sent handshake bytes to the client; 0 before it did.</summary>
    public long SpokeAt => Volatile.Read(ref _spokeAt);

    private volatile bool _proxySpokeLast;

    /// <summary>Whether the proxy's handshake bytes came after the client's last ones: the client's turn to answer.</summary>
    public bool ProxySpokeLast => _proxySpokeLast;

    public void Heard()
    {
        _clientSpoke = true;
        _proxySpokeLast = false;
    }

    // Both in the same clock tick is common (a handshake step takes about a millisecond): the order is kept apart.
    public void Spoke()
    {
        Volatile.Write(ref _spokeAt, System.Environment.TickCount64);
        _proxySpokeLast = true;
    }

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
