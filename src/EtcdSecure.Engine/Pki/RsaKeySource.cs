using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Security.Cryptography;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Pki;

/// <summary>
/// RSA key generation on every core while a caller waits. A 2048-bit key costs OpenSSL 3 about 370 ms of one core
/// here (its SP 800-56B generator runs 64 Miller-Rabin rounds on each prime), and the search for a prime is luck:
/// one key takes 100 ms, the next a second. So a caller that needs a key starts one generation per core and takes
/// whichever finishes first. The others run on and wait, in memory only, for the next caller asking for the same
/// size: a run of certificates gets a key per core's worth of time instead of one. Work is started only while
/// somebody waits, so when issuing stops at most one key per extra core is made that nobody asked for; a spare
/// older than <see cref="SpareLifetime"/> is thrown away instead of used, so no key lives long in memory unasked.
/// </summary>
internal static class RsaKeySource
{
    internal static readonly TimeSpan SpareLifetime = TimeSpan.FromMinutes(5);

    private sealed record Made(RSA Key, long Timestamp);

    private static readonly object Gate = new();
    private static readonly Dictionary<int, List<Task<Made>>> Running = new();

    /// <summary>How many keys are made at once: one per core, at most 4 (more cores only add spares).</summary>
    internal static int Workers => Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>A new RSA key of <paramref name="bits"/> that no other caller has been or will be given.</summary>
    public static RSA Take(int bits)
    {
        if (Workers == 1) return Generate(bits).Key;

        while (true)
        {
            Task<Made>[] waiting;
            lock (Gate)
            {
                if (!Running.TryGetValue(bits, out List<Task<Made>>? tasks)) Running[bits] = tasks = new List<Task<Made>>();
                if (TryClaim(tasks, out RSA? ready)) return ready!;
                while (tasks.Count < Workers) tasks.Add(Task.Run(() => Generate(bits)));
                waiting = tasks.ToArray();
            }

            Task.WaitAny(waiting);
            lock (Gate)
            {
                if (TryClaim(Running[bits], out RSA? ready)) return ready!;
            }
            // Another caller took the key that finished; wait for the next one.
        }
    }

    /// <summary>Removes and returns one finished key, fresh enough to use; rethrows a generation's failure.</summary>
    private static bool TryClaim(List<Task<Made>> tasks, out RSA? key)
    {
        key = null;
        for (int i = 0; i < tasks.Count; i++)
        {
            Task<Made> t = tasks[i];
            if (!t.IsCompleted) continue;
            tasks.RemoveAt(i--);
            Made made = t.GetAwaiter().GetResult();
            if (Stopwatch.GetElapsedTime(made.Timestamp) > SpareLifetime)
            {
                made.Key.Dispose();
                continue;
            }

            key = made.Key;
            return true;
        }

        return false;
    }

    private static Made Generate(int bits)
    {
        RSA rsa = RSA.Create(bits);
        // The platform makes the key lazily, on first use: use it here, on this thread, not on the caller's.
        _ = rsa.ExportSubjectPublicKeyInfo();
        return new Made(rsa, Stopwatch.GetTimestamp());
    }
}
