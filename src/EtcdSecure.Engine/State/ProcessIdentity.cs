using System;
using System.Diagnostics;
using System.IO;

namespace EtcdSecure.Engine.State;

/// <summary>
/// A process id together with when that process started: PIDs are reused, so a record of ours names a process only
/// while both still match. On Linux the start time is the kernel's own count of clock ticks since boot (field 22 of
/// /proc/PID/stat), exact and unaffected by clock changes; elsewhere it is the start time the runtime reports.
/// </summary>
public static class ProcessIdentity
{
    /// <summary>The start-time token of a running process, or null when no process has that id.</summary>
    public static string? StartToken(int pid)
    {
        if (pid <= 0) return null;
        if (OperatingSystem.IsLinux())
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{pid}/stat");
                // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
                string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // rest[0] is field 3 (state); field 22 is rest[19]. A zombie has exited: it is no longer running.
                return rest[0] == "Z" ? null : "linux:" + rest[19];
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
            {
                return null;
            }
        }

        try
        {
            using Process p = Process.GetProcessById(pid);
            return p.HasExited ? null : "start:" + p.StartTime.ToUniversalTime().ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Whether the process a record names is still the one running under its id.</summary>
    public static bool IsRunning(int pid, string? token) => token is not null && StartToken(pid) == token;

    /// <summary>Waits until the process a record names is gone (its PID may be another session's child: nothing to wait on but the PID).</summary>
    public static async System.Threading.Tasks.Task WaitForExitAsync(int pid, string? token, System.Threading.CancellationToken cancel)
    {
        while (IsRunning(pid, token)) await System.Threading.Tasks.Task.Delay(50, cancel).ConfigureAwait(false);
    }

    /// <summary>Kills the process a record names, with its children, only while the PID is still that process.</summary>
    public static void Kill(int pid, string? token)
    {
        if (!IsRunning(pid, token)) return;
        try
        {
            using Process p = Process.GetProcessById(pid);
            // Checked once more right before the kill: the PID must still be the recorded process.
            if (!IsRunning(pid, token)) return;
            p.Kill(entireProcessTree: true);
            p.WaitForExit(10_000);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Gone meanwhile.
        }
    }
}
