using System;
using System.Collections.Generic;
using System.Linq;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// The member certificate chains one upstream context has found good, so that a probe every half second and each new
/// member connection need not decode the same certificates and build the same chain again: that was a quarter to a
/// third of an idle proxy's CPU.
/// </summary>
/// <remarks>
/// The verdict on a chain depends on nothing but the bytes the member sent, the host dialled, the trust of the context
/// and the time: no revocation or download is part of it. So a chain counts as known only byte for byte, for the same
/// host, and only while every certificate in the chain that was built is within its validity. A reload of the upstream
/// certificate, key or CA makes a new context, and with it an empty set. Refusals are never kept: each is judged again
/// and says why.
/// </remarks>
internal sealed class JudgedChains
{
    // One per member, as a rule (several members may share a host); past this many, the oldest goes.
    private const int Capacity = 64;

    private readonly List<Good> _good = new();

    /// <summary>Whether <paramref name="sent"/> is, byte for byte, a chain found good for <paramref name="host"/>, and still valid at <paramref name="now"/>.</summary>
    public bool IsKnownGood(string host, IReadOnlyList<byte[]> sent, DateTime now)
    {
        lock (_good)
        {
            int i = IndexOf(host, sent);
            if (i < 0) return false;
            if (now >= _good[i].ValidFrom && now < _good[i].ValidUntil) return true;
            _good.RemoveAt(i);
            return false;
        }
    }

    /// <param name="validFrom">The latest NotBefore of the certificates in the chain that was built, in UTC.</param>
    /// <param name="validUntil">The earliest NotAfter of them, in UTC.</param>
    public void RememberGood(string host, IReadOnlyList<byte[]> sent, DateTime validFrom, DateTime validUntil)
    {
        lock (_good)
        {
            if (IndexOf(host, sent) >= 0) return;
            if (_good.Count >= Capacity) _good.RemoveAt(0);
            _good.Add(new Good(host, sent.ToArray(), validFrom, validUntil));
        }
    }

    /// <summary>Where the chain <paramref name="sent"/> for <paramref name="host"/> is kept, or -1; call under the lock.</summary>
    private int IndexOf(string host, IReadOnlyList<byte[]> sent) =>
        _good.FindIndex(g => string.Equals(g.Host, host, StringComparison.OrdinalIgnoreCase) && SameChain(g.Sent, sent));

    private static bool SameChain(byte[][] known, IReadOnlyList<byte[]> sent)
    {
        if (known.Length != sent.Count) return false;
        for (int i = 0; i < known.Length; i++)
        {
            if (!known[i].AsSpan().SequenceEqual(sent[i])) return false;
        }

        return true;
    }

    private sealed record Good(string Host, byte[][] Sent, DateTime ValidFrom, DateTime ValidUntil);
}
