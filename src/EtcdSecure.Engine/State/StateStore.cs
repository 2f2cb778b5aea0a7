using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;

namespace EtcdSecure.Engine.State;

/// <summary>
/// What this module has started, kept on disk so that any later session of the same user finds it: one folder per
/// user, one JSON file per record, in a folder per kind (members, clusters, proxies). Every change is made under a
/// lock that other processes honour (an exclusive lock on <c>.lock</c>), and a file is replaced by a rename, so a
/// reader never sees half a record.
/// </summary>
public sealed class StateStore
{
    public const string Variable = "ETCDSECURE_STATE_DIR";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);

    public StateStore(string root) => Root = Path.GetFullPath(root);

    public string Root { get; }

    /// <summary>
    /// The store in force: ETCDSECURE_STATE_DIR when set, else the platform's place for per-user state
    /// ($XDG_STATE_HOME/etcdsecure or ~/.local/state/etcdsecure on Linux, ~/Library/Application Support/EtcdSecure on
    /// macOS, %LOCALAPPDATA%\EtcdSecure on Windows). Read each time, so a change of the variable takes effect at once.
    /// </summary>
    public static StateStore Current => new(DefaultRoot());

    public static string DefaultRoot()
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } given) return given;
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (OperatingSystem.IsWindows()) return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "EtcdSecure");
        if (OperatingSystem.IsMacOS()) return Path.Combine(home, "Library", "Application Support", "EtcdSecure");
        string state = Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(home, ".local", "state");
        return Path.Combine(state, "etcdsecure");
    }

    /// <summary>Every record of a kind; a file that cannot be read (another version's, damaged) is passed over.</summary>
    public IReadOnlyList<T> List<T>(string kind) where T : class
    {
        string dir = Path.Combine(Root, kind);
        if (!Directory.Exists(dir)) return Array.Empty<T>();
        var list = new List<T>();
        foreach (string file in Directory.EnumerateFiles(dir, "*.json").OrderBy(f => f, StringComparer.Ordinal))
        {
            if (Read<T>(file) is { } record) list.Add(record);
        }

        return list;
    }

    public T? Get<T>(string kind, string name) where T : class => Read<T>(FileOf(kind, name));

    /// <summary>Writes a record whole: to a temporary file beside it, then renamed over the old one.</summary>
    public void Put<T>(string kind, string name, T record) where T : class => WithLock(() =>
    {
        PutLocked(kind, name, record);
        return true;
    });

    /// <summary>Removes a record; true when there was one.</summary>
    public bool Remove(string kind, string name) => WithLock(() => RemoveLocked(kind, name));

    /// <summary>Takes a record out of the store and returns it, so that of two sessions removing it only one gets it.</summary>
    public T? Take<T>(string kind, string name) where T : class => WithLock(() =>
    {
        T? record = Get<T>(kind, name);
        if (record is not null) RemoveLocked(kind, name);
        return record;
    });

    /// <summary>Runs <paramref name="action"/> while holding the store's lock, which other processes honour too.</summary>
    public TResult WithLock<TResult>(Func<TResult> action)
    {
        EnsureRoot();
        return FileLock.With(Path.Combine(Root, ".lock"), LockTimeout, "StateStoreLocked", $"The state store '{Root}'", action);
    }

    internal void PutLocked<T>(string kind, string name, T record)
    {
        EnsureRoot();
        WriteJson(FileOf(kind, name), record);
    }

    /// <summary>Writes <paramref name="value"/> as JSON whole: to a temporary file beside it, then renamed over the old one.</summary>
    public static void WriteJson<T>(string file, T value, JsonSerializerOptions? options = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        string temp = file + "." + Environment.ProcessId + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(value, options ?? Json));
        File.Move(temp, file, overwrite: true);
    }

    internal bool RemoveLocked(string kind, string name)
    {
        string file = FileOf(kind, name);
        if (!File.Exists(file)) return false;
        File.Delete(file);
        return true;
    }

    /// <summary>Creates the store's folder, readable by its owner only, when it is missing.</summary>
    public void EnsureRoot()
    {
        if (Directory.Exists(Root)) return;
        // Records name key files and data dirs: only their owner reads them.
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(Root);
        else Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private string FileOf(string kind, string name)
    {
        // Names are checked by the cmdlets; this keeps a name from ever leaving its folder all the same.
        if (name.Length == 0 || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name is "." or "..")
        {
            throw new EtcdSecureException("InvalidName", ErrorKind.InvalidArgument, $"'{name}' cannot name a {kind} record.", name);
        }

        return Path.Combine(Root, kind, name + ".json");
    }

    private static T? Read<T>(string file) where T : class
    {
        try
        {
            return File.Exists(file) ? JsonSerializer.Deserialize<T>(File.ReadAllText(file), Json) : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException or NotSupportedException)
        {
            return null;
        }
    }
}
