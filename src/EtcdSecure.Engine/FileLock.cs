using System;
using System.Diagnostics;
using System.IO;
using System.Threading;

namespace EtcdSecure.Engine;

/// <summary>
/// A lock other processes honour: a lock file held open with FileShare.None, which is flock on Unix and a sharing
/// lock on Windows. It is a file of its own and never the data it guards, because data files are replaced by
/// rename and a lock on a replaced file guards nothing.
/// </summary>
internal static class FileLock
{
    public static TResult With<TResult>(string lockPath, TimeSpan timeout, string lockedId, string what, Func<TResult> action)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            FileStream? held;
            try
            {
                held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (waited.Elapsed < timeout)
            {
                Thread.Sleep(20);
                continue;
            }
            catch (IOException ex)
            {
                throw new EtcdSecureException(lockedId, ErrorKind.ResourceUnavailable,
                    $"{what} stayed locked by another process for {timeout.TotalSeconds:0} s ({lockPath}).", lockPath, ex);
            }

            using (held)
            {
                return action();
            }
        }
    }
}
