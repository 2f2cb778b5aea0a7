using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace EtcdSecure.Engine;

/// <summary>
/// What a command makes under some folders, found by what was not there before it began: a command that fails takes
/// back exactly that, and never a file or folder that was there already.
/// </summary>
public sealed class MadeFiles
{
    private readonly string _root;
    private readonly bool _rootExisted;
    private readonly string[] _folders;
    private readonly HashSet<string> _before;

    private MadeFiles(string root, string[] folders)
    {
        _root = Path.GetFullPath(root);
        _rootExisted = Directory.Exists(_root);
        _folders = folders.Select(f => Path.Combine(_root, f)).ToArray();
        _before = Entries().ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Starts watching <paramref name="folders"/> (relative to <paramref name="root"/>), the root itself included.</summary>
    public static MadeFiles Watch(string root, params string[] folders) => new(root, folders);

    /// <summary>Deletes every file and folder that is new since <see cref="Watch"/>, deepest first; the rest stays.</summary>
    public void TakeBack()
    {
        // Longest paths first: a folder's contents go before the folder itself.
        foreach (string path in Entries().Where(p => !_before.Contains(p)).OrderByDescending(p => p.Length).ToList())
        {
            try
            {
                if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
                else File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Taking back is best effort: the command's own error is what the user must see.
            }
        }

        if (!_rootExisted && Directory.Exists(_root) && !Directory.EnumerateFileSystemEntries(_root).Any()) Directory.Delete(_root);
    }

    private IEnumerable<string> Entries()
    {
        foreach (string folder in _folders)
        {
            if (!Directory.Exists(folder)) continue;
            yield return folder;
            // Not into symbolic links: what they point at was never this command's to take back.
            var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
            foreach (string e in Directory.EnumerateFileSystemEntries(folder, "*", options)) yield return e;
        }
    }
}
