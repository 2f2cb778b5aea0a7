using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// Connections that have not finished client authentication, kept apart from relayed ones: a total cap and a cap per
/// source address (per /64 for IPv6, where one host commonly holds a whole prefix). When a cap is full, the oldest
/// pending connection of that scope is dropped to make room, never the newcomer: a flood of clients that connect
/// and say nothing can then only push out its own stale connections, while a real client's handshake, which takes
/// milliseconds, gets through. Authenticated clients never count here.
/// </summary>
internal sealed class Admission
{
    private readonly object _gate = new();
    private readonly LinkedList<RelayConnection> _all = new(); // oldest first
    private readonly Dictionary<string, LinkedList<RelayConnection>> _bySource = new();
    private readonly int _maxPending;
    private readonly int _maxPerSource;

    public Admission(int maxPending, int maxPerSource)
    {
        _maxPending = maxPending;
        _maxPerSource = maxPerSource;
    }

    public int Pending
    {
        get
        {
            lock (_gate) return _all.Count;
        }
    }

    /// <summary>Counts <paramref name="c"/> as pending; returns the connection to drop to make room for it, and why.</summary>
    public (RelayConnection? Drop, string? Reason) Enter(RelayConnection c)
    {
        lock (_gate)
        {
            RelayConnection? drop = null;
            string? reason = null;
            if (!_bySource.TryGetValue(c.Source, out LinkedList<RelayConnection>? mine)) _bySource[c.Source] = mine = new LinkedList<RelayConnection>();
            if (mine.Count >= _maxPerSource)
            {
                (drop, reason) = (mine.First!.Value, "PendingPerAddressLimit");
            }
            else if (_all.Count >= _maxPending)
            {
                (drop, reason) = (_all.First!.Value, "PendingLimit");
            }

            if (drop is not null)
            {
                // Decided under the lock that also decides authentication (Authenticated): a connection is either
                // dropped here or let through there, never both.
                drop.EvictedReason = reason;
                LeaveLocked(drop);
            }

            c.PendingNode = _all.AddLast(c);
            c.SourceNode = mine.AddLast(c);
            return (drop, reason);
        }
    }

    /// <summary>The client has authenticated: true when it goes on, false when admission dropped it already.</summary>
    public bool Authenticated(RelayConnection c)
    {
        lock (_gate)
        {
            if (c.EvictedReason is not null) return false;
            LeaveLocked(c);
            return true;
        }
    }

    /// <summary>The connection is gone; calling it again does nothing.</summary>
    public void Leave(RelayConnection c)
    {
        lock (_gate) LeaveLocked(c);
    }

    private void LeaveLocked(RelayConnection c)
    {
        if (c.PendingNode is { } node)
        {
            _all.Remove(node);
            c.PendingNode = null;
        }

        if (c.SourceNode is { List: { } list } source)
        {
            list.Remove(source);
            if (list.Count == 0) _bySource.Remove(c.Source);
            c.SourceNode = null;
        }
    }

    /// <summary>The scope a source address is capped in: the address itself, or its /64 for IPv6.</summary>
    public static string SourceOf(EndPoint? remote)
    {
        if (remote is not IPEndPoint ip) return "?";
        IPAddress a = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
        if (a.AddressFamily != AddressFamily.InterNetworkV6) return a.ToString();
        byte[] bytes = a.GetAddressBytes();
        System.Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }
}
