using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Pki;

/// <summary>
/// RSA key generation on every core while a caller waits. A 2048-bit key costs OpenSSL 3 about 370 ms of one core
/// here (its SP 800-56B generator runs 64 Miller-Rabin rounds on each prime), and the search for a prime is luck:
/// one key takes 100 ms, the next a second. So a caller that needs a key starts one generation per core and takes
/// whichever finishes first. The others run on and wait, in memory only, for the next caller asking for the same
/// size: a run of certificates gets a key per core's worth of time instead of one. Work is started only while
/// somebody waits, so when issuing stops at most one key per extra core is made that nobody asked for; a spare is
/// disposed <see cref="SpareLifetime"/> after it was made if nobody took it, so no key lives long in memory unasked.
/// </summary>
internal static class RsaKeySource
{
    internal static readonly TimeSpan SpareLifetime = TimeSpan.FromMinutes(5);

    private static readonly object Gate = new();
    private static readonly Dictionary<int, List<Task<RSA>>> Running = new();

    /// <summary>How many keys are made at once: one per core, at most 4 (more cores only add spares).</summary>
    internal static int Workers => Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>A new RSA key of <paramref name="bits"/> that no other caller has been or will be given.</summary>
    public static RSA Take(int bits)
    {
        if (Workers == 1) return Generate(bits);

        while (true)
        {
            Task<RSA>[] waiting;
            lock (Gate)
            {
                if (!Running.TryGetValue(bits, out List<Task<RSA>>? tasks)) Running[bits] = tasks = new List<Task<RSA>>();
                if (TryClaim(tasks, out RSA? ready)) return ready!;
                while (tasks.Count < Workers) tasks.Add(Start(bits));
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

    /// <summary>Removes and returns one finished key; rethrows a generation's failure.</summary>
    private static bool TryClaim(List<Task<RSA>> tasks, out RSA? key)
    {
        key = null;
        int i = tasks.FindIndex(t => t.IsCompleted);
        if (i < 0) return false;
        Task<RSA> done = tasks[i];
        tasks.RemoveAt(i);
        key = done.GetAwaiter().GetResult();
        return true;
    }

    private static Task<RSA> Start(int bits)
    {
        Task<RSA> t = Task.Run(() => Generate(bits));
        _ = t.ContinueWith(_ => Task.Delay(SpareLifetime).ContinueWith(__ => Expire(bits, t)), TaskScheduler.Default);
        return t;
    }

    /// <summary>Disposes a key nobody took in time; one already taken is its caller's.</summary>
    private static void Expire(int bits, Task<RSA> t)
    {
        lock (Gate)
        {
            if (!Running[bits].Remove(t)) return;
        }

        if (t.IsCompletedSuccessfully) t.Result.Dispose();
    }

    private static RSA Generate(int bits)
    {
        RSA rsa = RSA.Create(bits);
        // The platform makes the key lazily, on first use: use it here, on this thread, not on the caller's.
        _ = rsa.ExportSubjectPublicKeyInfo();
        return rsa;
    }
}
