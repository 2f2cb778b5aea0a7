using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// Connections that have not finished client authentication, kept apart from relayed ones. At most maxPending of
/// them handshake at once, and maxPerSource from one source address (per /64 for IPv6, where one host commonly holds
/// a whole prefix); the others wait their turn, up to four times as many in all and twice as many from one address.
/// What decides who goes when a cap is full is progress, not arrival: a connection that has sent nothing for a
/// while is shed to make room, and so is one that stalls in its handshake after the proxy's answer when the place is
/// wanted by another address (within one address that is most often the host's own CPU behind a burst); one that is
/// handshaking, or
/// whose handshake only waits for the CPU, is never dropped for being old, and a newcomer that finds no one to shed
/// waits rather than being refused. A burst of real clients from one host therefore all get in, in turn, while a
/// flood of silent connections (from another address or the same one) is what gives way. Authenticated clients
/// never count here.
/// </summary>
internal sealed class Admission
{
    public enum Entry { Handshake, Wait, Refused }

    private sealed class Scope
    {
        public readonly LinkedList<RelayConnection> Pending = new(); // oldest first
        public readonly LinkedList<RelayConnection> Waiting = new(); // oldest first
    }

    // Scanning for someone to shed stops after this many candidates: a crowd that is all busy is not searched whole
    // for every newcomer, and the oldest, where silent connections gather, are looked at first.
    private const int ScanLimit = 256;

    // The caps' names, as refusals are counted under them in Get-EtcdProxy.
    private const string PerAddress = "PendingPerAddressLimit";
    private const string Total = "PendingLimit";

    private readonly object _gate = new();
    private readonly LinkedList<RelayConnection> _pending = new();
    private readonly LinkedList<RelayConnection> _waiting = new();
    private readonly Dictionary<string, Scope> _bySource = new();
    private readonly HashSet<Scope> _withWaiters = new();
    private readonly int _maxPending;
    private readonly int _maxPerSource;
    private readonly int _maxWaiting;
    private readonly int _maxWaitingPerSource;
    private readonly long _idleAfterMs;

    /// <param name="idleAfter">How long a connection may be silent (or stalled on its side) before it may be shed.</param>
    public Admission(int maxPending, int maxPerSource, TimeSpan idleAfter)
    {
        _maxPending = maxPending;
        _maxPerSource = maxPerSource;
        _maxWaiting = 4 * maxPending;
        _maxWaitingPerSource = 2 * maxPending;
        _idleAfterMs = Math.Max(1, (long)idleAfter.TotalMilliseconds);
    }

    public int Pending
    {
        get
        {
            lock (_gate) return _pending.Count;
        }
    }

    public int Waiting
    {
        get
        {
            lock (_gate) return _waiting.Count;
        }
    }

    /// <summary>
    /// Takes <paramref name="c"/> in: to handshake now, to wait for its turn, or refused (every place taken by clients
    /// that are all making progress). Returns the connection shed to make room for it, if one was, and why.
    /// </summary>
    public (Entry Entry, RelayConnection? Drop, string? Reason) Enter(RelayConnection c)
    {
        long now = Environment.TickCount64;
        lock (_gate)
        {
            Scope mine = ScopeOf(c.Source);
            RelayConnection? drop = null;
            string? full = PendingFull(mine);
            if (full is not null && Idlest(full, mine.Pending, now) is { } idle)
            {
                Evict(idle, full);
                drop = idle;
            }

            if (PendingFull(mine) is null)
            {
                Admit(c, mine);
                return (Entry.Handshake, drop, full);
            }

            string? waitFull = _waiting.Count >= _maxWaiting ? Total : mine.Waiting.Count >= _maxWaitingPerSource ? PerAddress : null;
            if (waitFull is not null)
            {
                if (Idlest(waitFull, mine.Waiting, now, _waiting) is not { } idleWaiter)
                {
                    if (mine.Pending.Count == 0 && mine.Waiting.Count == 0) _bySource.Remove(c.Source);
                    return (Entry.Refused, null, full);
                }

                Evict(idleWaiter, waitFull);
                drop = idleWaiter;
            }

            c.Turn = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            c.AdmissionNode = _waiting.AddLast(c);
            c.SourceNode = mine.Waiting.AddLast(c);
            _withWaiters.Add(mine);
            return (Entry.Wait, drop, full);
        }
    }

    /// <summary>Waits until a waiting connection may handshake: true then, false when it was shed meanwhile.</summary>
    public async ValueTask<bool> TurnAsync(RelayConnection c, CancellationToken cancel)
    {
        if (c.Turn is not { } turn) return c.EvictedReason is null;
        using (cancel.Register(() => turn.TrySetCanceled(cancel)))
        {
            try
            {
                return await turn.Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                lock (_gate)
                {
                    // Its turn may have come in the same instant: then it handshakes after all.
                    if (c.Admitted) return c.EvictedReason is null;
                    LeaveLocked(c);
                }

                throw;
            }
        }
    }

    /// <summary>
    /// Gives a waiting client that has spoken the place of a pending connection that has gone idle: the newcomers
    /// of a burst may have found only busy connections, and some of those have stalled since. Returns those shed,
    /// for the caller to end outside the lock.
    /// </summary>
    public List<(RelayConnection Drop, string Reason)> Rebalance()
    {
        var shed = new List<(RelayConnection, string)>();
        long now = Environment.TickCount64;
        lock (_gate)
        {
            foreach (Scope s in new List<Scope>(_withWaiters))
            {
                // Waiting means there is no room: what waits in silence past the idle time only holds a place, and goes.
                for (LinkedListNode<RelayConnection>? n = s.Waiting.First; n is not null;)
                {
                    LinkedListNode<RelayConnection>? next = n.Next;
                    if (IsIdle(n.Value, now))
                    {
                        string why = PendingFull(s) ?? Total;
                        RelayConnection gone = n.Value;
                        Evict(gone, why);
                        shed.Add((gone, why));
                    }

                    n = next;
                }

                while (FirstSpeaking(s) is { } waiter)
                {
                    if (PendingFull(s) is { } full)
                    {
                        if (Idlest(full, s.Pending, now) is not { } idle) break;
                        Evict(idle, full);
                        shed.Add((idle, full));
                    }

                    Promote(waiter);
                }
            }
        }

        return shed;
    }

    /// <summary>The client has authenticated: true when it goes on, false when admission dropped it already.</summary>
    public bool Authenticated(RelayConnection c)
    {
        lock (_gate)
        {
            if (c.EvictedReason is not null) return false;
            LeaveLocked(c);
            PromoteLocked();
            return true;
        }
    }

    /// <summary>The connection is gone; calling it again does nothing.</summary>
    public void Leave(RelayConnection c)
    {
        lock (_gate)
        {
            bool wasPending = c.Admitted && c.AdmissionNode is not null;
            LeaveLocked(c);
            if (wasPending) PromoteLocked();
        }
    }

    private string? PendingFull(Scope s) =>
        s.Pending.Count >= _maxPerSource ? PerAddress : _pending.Count >= _maxPending ? Total : null;

    private Scope ScopeOf(string source)
    {
        if (!_bySource.TryGetValue(source, out Scope? s)) _bySource[source] = s = new Scope();
        return s;
    }

    private void Admit(RelayConnection c, Scope s)
    {
        c.Admitted = true;
        c.AdmissionNode = _pending.AddLast(c);
        c.SourceNode = s.Pending.AddLast(c);
    }

    /// <summary>
    /// Lets waiting connections in while the caps have room: of each address, the oldest that has spoken first (a
    /// silent one would only hold the place), then the oldest.
    /// </summary>
    private void PromoteLocked()
    {
        while (_withWaiters.Count > 0 && _pending.Count < _maxPending)
        {
            bool moved = false;
            foreach (Scope s in new List<Scope>(_withWaiters))
            {
                if (_pending.Count >= _maxPending) return;
                if (s.Pending.Count >= _maxPerSource || s.Waiting.First is not { } first) continue;
                Promote(FirstSpeaking(s) ?? first.Value);
                moved = true;
            }

            if (!moved) return;
        }
    }

    private void Promote(RelayConnection waiter)
    {
        LeaveLocked(waiter);
        Admit(waiter, ScopeOf(waiter.Source));
        waiter.Turn!.TrySetResult(true);
    }

    /// <summary>The oldest waiting connection of the address whose bytes have arrived, if any.</summary>
    private static RelayConnection? FirstSpeaking(Scope s)
    {
        for (LinkedListNode<RelayConnection>? n = s.Waiting.First; n is not null; n = n.Next)
        {
            if (HasBytes(n.Value)) return n.Value;
        }

        return null;
    }

    /// <summary>Decided under the lock that also decides authentication: a connection is either shed here or let through there, never both.</summary>
    private void Evict(RelayConnection c, string reason)
    {
        c.EvictedReason = reason;
        LeaveLocked(c);
        c.Turn?.TrySetResult(false);
    }

    /// <summary>
    /// The oldest connection that may be shed for a newcomer held back by <paramref name="cap"/>, if any. Within one
    /// address only a silent one goes: a host's own clients that stall are most often that host's CPU catching up with
    /// a burst of them (seen with a thousand grpc-js clients in one node process), and shedding one for another of the
    /// same host gains nothing. Across addresses, one that stalls goes too, so no address holds places by stalling.
    /// </summary>
    private RelayConnection? Idlest(string cap, LinkedList<RelayConnection> own, long now, LinkedList<RelayConnection>? all = null)
    {
        bool perAddress = cap == PerAddress;
        LinkedList<RelayConnection> list = perAddress ? own : all ?? _pending;
        int looked = 0;
        for (LinkedListNode<RelayConnection>? n = list.First; n is not null && looked < ScanLimit; n = n.Next, looked++)
        {
            if (IsIdle(n.Value, now, stalledToo: !perAddress)) return n.Value;
        }

        return null;
    }

    /// <summary>
    /// Silent (nothing received, nothing waiting in the socket) for longer than the idle time since it connected, or
    /// stalled: the proxy answered last, and the client has said nothing for that long. A client whose bytes wait to be
    /// read, or whose handshake waits for the proxy's CPU, is busy, however old.
    /// </summary>
    private bool IsIdle(RelayConnection c, long now, bool stalledToo = true)
    {
        if (!c.ClientSpoke) return now - c.AcceptedAt >= _idleAfterMs && !HasBytes(c);
        return stalledToo && c.ProxySpokeLast && now - c.SpokeAt >= _idleAfterMs && !HasBytes(c);
    }

    private static bool HasBytes(RelayConnection c)
    {
        try
        {
            return c.ClientStream.Socket.Available > 0;
        }
        catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
        {
            return false;
        }
    }

    private void LeaveLocked(RelayConnection c)
    {
        if (c.AdmissionNode is { List: { } all } node)
        {
            all.Remove(node);
            c.AdmissionNode = null;
        }

        if (c.SourceNode is { List: { } list } source)
        {
            list.Remove(source);
            c.SourceNode = null;
            if (_bySource.TryGetValue(c.Source, out Scope? s))
            {
                if (s.Waiting.Count == 0) _withWaiters.Remove(s);
                if (s.Pending.Count == 0 && s.Waiting.Count == 0) _bySource.Remove(c.Source);
            }
        }
    }

    /// <summary>The scope a source address is capped in: the address itself, or its /64 for IPv6.</summary>
    public static string SourceOf(EndPoint? remote)
    {
        if (remote is not IPEndPoint ip) return "?";
        IPAddress a = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
        if (a.AddressFamily != AddressFamily.InterNetworkV6) return a.ToString();
        byte[] bytes = a.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }
}
