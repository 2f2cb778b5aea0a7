using System;
using System.Diagnostics;

namespace EtcdSecure.Engine;

/// <summary>One bound for a whole call: each step gets what is left of it, so steps never add up to several timeouts.</summary>
public readonly struct Deadline
{
    private readonly long _start;

    public Deadline(TimeSpan timeout)
    {
        Timeout = timeout;
        _start = Stopwatch.GetTimestamp();
        Utc = DateTime.UtcNow + timeout;
    }

    /// <summary>The whole call's bound, as the user gave it (for messages).</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The same bound as a wall-clock time, as gRPC deadlines take it.</summary>
    public DateTime Utc { get; }

    /// <summary>What is left, never negative.</summary>
    public TimeSpan Left
    {
        get
        {
            TimeSpan left = Timeout - Stopwatch.GetElapsedTime(_start);
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }
}
