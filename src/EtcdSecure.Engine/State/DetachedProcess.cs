using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.Engine.State;

/// <summary>
/// Starts a program that outlives this session: in a session of its own, so Ctrl+C in the shell and closing the
/// terminal do not reach it, with stdin from /dev/null and its output appended to a log file by a shell redirect
/// (etcd 3.4 has no log-file default). setsid where it exists (Linux); elsewhere perl's POSIX::setsid, which every
/// macOS has.
/// </summary>
public static class DetachedProcess
{
    private const string Redirect = "log=$1; shift; exec \"$@\" </dev/null >>\"$log\" 2>&1";

    /// <param name="without">Variables of this session's environment the program must not inherit.</param>
    public static Process Start(string executable, IEnumerable<string> arguments, string logPath, string target, IReadOnlyDictionary<string, string>? environment = null, IEnumerable<string>? without = null)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new EtcdSecureException("PlatformNotSupported", ErrorKind.NotImplemented,
                "Starting a process detached from the console is not implemented on Windows yet; run etcd with the flags New-EtcdMemberConfig writes, and Start-EtcdProxy -Wait as a service.", target);
        }

        var psi = new ProcessStartInfo { UseShellExecute = false };
        var prefix = new List<string>();
        if (EtcdBinary.FindOnPath("setsid") is { } setsid)
        {
            psi.FileName = setsid;
            prefix.Add("/bin/sh");
        }
        else if (EtcdBinary.FindOnPath("perl") is { } perl)
        {
            psi.FileName = perl;
            prefix.AddRange(new[] { "-MPOSIX=setsid", "-e", "setsid(); exec @ARGV or die $!", "/bin/sh" });
        }
        else
        {
            throw new EtcdSecureException("PlatformNotSupported", ErrorKind.NotInstalled,
                "Neither setsid nor perl is on PATH, so the process cannot get a session of its own (Ctrl+C in this shell would stop it). Install util-linux (setsid) or perl.", target);
        }

        foreach (string a in prefix.Concat(new[] { "-c", Redirect, "sh", logPath, executable }).Concat(arguments)) psi.ArgumentList.Add(a);
        foreach (string name in without ?? Enumerable.Empty<string>()) psi.Environment.Remove(name);
        if (environment is not null)
        {
            foreach (var (k, v) in environment) psi.Environment[k] = v;
        }

        try
        {
            return Process.Start(psi) ?? throw new EtcdSecureException("StartFailed", ErrorKind.InvalidOperation, $"Could not start '{executable}'.", target);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new EtcdSecureException("StartFailed", ErrorKind.InvalidOperation, $"Could not start '{psi.FileName}' for '{executable}': {ex.Message}", target, ex);
        }
    }
}
