using System;
using System.IO;
using System.Linq;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Threading;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// A value loaded from files that is loaded again when any of them changes. The proxy's background task calls
/// <see cref="Check"/> once a second, so file I/O and parsing never run on a relay thread or inside a handshake,
/// and reading <see cref="Value"/> is only a memory read. A replacement that cannot be loaded (unreadable, half
/// written, key and certificate out of step, expired) keeps the last good value and is reported once per change.
/// </summary>
public sealed class Reloading<T> : IReloading where T : class
{
    private readonly Func<string[]> _paths;
    private readonly Func<T> _load;
    private readonly Action<string> _log;
    private T _value;
    private string[] _stamps;
    private int _checking;

    public Reloading(string what, Func<T> load, Action<string> log, params string[] paths)
        : this(what, load, log, () => paths)
    {
    }

    /// <param name="paths">The files that make up the value, asked again at every look: a folder's changing contents.</param>
    public Reloading(string what, Func<T> load, Action<string> log, Func<string[]> paths)
    {
        What = what;
        _paths = paths;
        _load = load;
        _log = log;
        _stamps = Stamps();
        _value = load();
    }

    public string What { get; }

    public int Reloads { get; private set; }

    /// <summary>Why the files as they are now are not in use; null when the last change loaded.</summary>
    public string? LastError { get; private set; }

    public T Value => Volatile.Read(ref _value);

    /// <summary>Loads the files again if any changed since the last look. Never throws.</summary>
    public void Check()
    {
        if (Interlocked.Exchange(ref _checking, 1) == 1) return;
        try
        {
            string[] now = Stamps();
            if (now.SequenceEqual(_stamps)) return;
            // Whatever happens, this change is dealt with: a file caught mid-write changes again when it is complete.
            _stamps = now;
            T fresh = _load();
            Volatile.Write(ref _value, fresh);
            Reloads++;
            LastError = null;
            _log($"{What}: reloaded from {string.Join(", ", _paths())}; new connections use it, open ones keep theirs.");
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LastError = $"{ex.GetType().Name}: {ex.Message}";
            _log($"{What}: the changed files cannot be loaded ({ex.Message}); still using the previous ones.");
        }
        finally
        {
            Volatile.Write(ref _checking, 0);
        }
    }

    /// <summary>Modification time, size and identity of each file: a replacement within one clock tick still shows.</summary>
    private string[] Stamps() => _paths().Select(p =>
    {
        try
        {
            var info = new FileInfo(p);
            // The mode too (where there is one): a key made unreadable in place is a change worth a reload attempt.
            return info.Exists ? $"{p}/{info.LastWriteTimeUtc.Ticks}/{info.Length}/{(OperatingSystem.IsWindows() ? "" : info.UnixFileMode)}" : $"{p} missing";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.SecurityException)
        {
            return "unreadable: " + ex.Message;
        }
    }).ToArray();
}

/// <summary>What a reloading value tells about itself, whatever it holds.</summary>
public interface IReloading
{
    string What { get; }

    string? LastError { get; }
}
