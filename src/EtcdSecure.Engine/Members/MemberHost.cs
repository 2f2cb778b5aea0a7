using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Members;

/// <summary>A member this module started, and how to reach and stop it.</summary>
public sealed class RunningMember
{
    internal RunningMember(MemberSpec spec, Process process, string commandLine, EtcdBinaryInfo etcd)
    {
        Spec = spec;
        Process = process;
        CommandLine = commandLine;
        Etcd = etcd;
        StartTime = DateTime.Now;
    }

    public MemberSpec Spec { get; }
    internal Process Process { get; }
    public int ProcessId => Process.Id;
    public string CommandLine { get; }
    public EtcdBinaryInfo Etcd { get; }
    public DateTime StartTime { get; }
    public bool StoppedByUser { get; internal set; }
    public bool HasExited => Process.HasExited;
    public int? ExitCode => Process.HasExited ? Process.ExitCode : null;

    public IReadOnlyList<string> LastLogLines(int count) => MemberHost.Tail(Spec.LogPath, count);
}

/// <summary>Starts etcd members detached from the shell, keeps track of them, and stops them by PID.</summary>
public static class MemberHost
{
    private static readonly ConcurrentDictionary<string, RunningMember> Members = new(StringComparer.Ordinal);

    public static IReadOnlyList<RunningMember> All => Members.Values.OrderBy(m => m.StartTime).ToList();

    public static RunningMember? Find(string name) => Members.TryGetValue(name, out RunningMember? m) ? m : null;

    public static (string Executable, IReadOnlyList<string> Arguments) Plan(MemberSpec spec, EtcdBinaryInfo etcd) => (etcd.Path, EtcdCommandLine.Build(spec, etcd));

    public static async Task<RunningMember> StartAsync(MemberSpec spec, EtcdBinaryInfo etcd, TimeSpan timeout, CancellationToken cancel)
    {
        if (Find(spec.Name) is { HasExited: false } running)
        {
            throw new EtcdSecureException("MemberAlreadyRunning", ErrorKind.ResourceExists, $"Member '{spec.Name}' is already running as process {running.ProcessId}.", spec.Name);
        }

        MemberPreflight.Check(spec);
        IReadOnlyList<string> args = EtcdCommandLine.Build(spec, etcd);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(spec.DataDir))!);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(spec.LogPath))!);

        // setsid puts etcd in its own session: Ctrl+C in the shell and closing the terminal do not reach it,
        // and the shell redirect sends its output to the log file on every etcd version (3.4 has no --log-outputs file default).
        var psi = new ProcessStartInfo { UseShellExecute = false };
        string launcher = EtcdBinary.FindOnPath("setsid") is { } setsid ? setsid : "/bin/sh";
        psi.FileName = launcher;
        if (launcher != "/bin/sh") psi.ArgumentList.Add("/bin/sh");
        foreach (string a in new[] { "-c", "log=$1; shift; exec \"$@\" </dev/null >>\"$log\" 2>&1", "sh", spec.LogPath, etcd.Path }.Concat(args))
        {
            psi.ArgumentList.Add(a);
        }

        Process process = Process.Start(psi) ?? throw new EtcdSecureException("MemberStartFailed", ErrorKind.InvalidOperation, $"Could not start '{etcd.Path}'.", spec.Name);
        var member = new RunningMember(spec, process, EtcdCommandLine.Quote(etcd.Path, args), etcd);
        Members[spec.Name] = member;
        try
        {
            await WaitUntilServingAsync(member, timeout, cancel).ConfigureAwait(false);
        }
        catch
        {
            // No process left behind: a member that did not come up is stopped before the error is reported.
            Kill(member);
            throw;
        }

        return member;
    }

    private static async Task WaitUntilServingAsync(RunningMember member, TimeSpan timeout, CancellationToken cancel)
    {
        MemberSpec s = member.Spec;
        var clientIdentity = TlsClientIdentity.Load(s.TrustedCAPath, s.Server.CertificatePath, s.Server.KeyPath);
        var peerIdentity = TlsClientIdentity.Load(s.PeerTrustedCAPath, s.Peer.CertificatePath, s.Peer.KeyPath);
        Uri client = s.AdvertiseClientUrls[0];
        Uri peer = s.AdvertisePeerUrls[0];
        // etcd opens its client port only once the cluster has quorum, so a member of a cluster that is still
        // forming can only show it is up on its peer port. A lone member must answer on its client port.
        bool peersSuffice = MemberSpec.ParseInitialCluster(s.InitialCluster).Select(kv => kv.Key).Distinct().Count() > 1;
        var deadline = Stopwatch.StartNew();
        string? last = null;
        while (deadline.Elapsed < timeout)
        {
            cancel.ThrowIfCancellationRequested();
            if (member.HasExited)
            {
                throw new EtcdSecureException("MemberExited", ErrorKind.InvalidOperation,
                    $"etcd member '{s.Name}' exited with code {member.ExitCode} while starting. Last lines of {s.LogPath}:{Environment.NewLine}{string.Join(Environment.NewLine, member.LastLogLines(15))}",
                    s.Name);
            }

            last = await TlsProbe.HandshakeAsync(client.DialHost(), client.Port, clientIdentity, TimeSpan.FromSeconds(2), cancel).ConfigureAwait(false);
            if (last is null) return;
            if (peersSuffice && await TlsProbe.HandshakeAsync(peer.DialHost(), peer.Port, peerIdentity, TimeSpan.FromSeconds(2), cancel).ConfigureAwait(false) is null) return;
            await Task.Delay(100, cancel).ConfigureAwait(false);
        }

        throw new EtcdSecureException("MemberStartTimeout", ErrorKind.OperationTimeout,
            $"etcd member '{s.Name}' did not answer TLS on {client}{(peersSuffice ? $" or {peer}" : "")} within {timeout.TotalSeconds:0} s ({last}); it was stopped. Log: {s.LogPath}", s.Name);
    }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>: etcd flushes its WAL on SIGTERM.</summary>
    public static async Task StopAsync(RunningMember member, TimeSpan grace, CancellationToken cancel)
    {
        member.StoppedByUser = true;
        if (member.HasExited) return;
        if (!OperatingSystem.IsWindows() && Signal(member.ProcessId, 15) == 0)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            cts.CancelAfter(grace);
            try
            {
                await member.Process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
            {
                // Did not exit in time: fall through to the kill.
            }
        }

        Kill(member);
    }

    public static void Forget(RunningMember member) => Members.TryRemove(new KeyValuePair<string, RunningMember>(member.Spec.Name, member));

    private static void Kill(RunningMember member)
    {
        try
        {
            if (!member.HasExited)
            {
                member.Process.Kill(entireProcessTree: true);
                member.Process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    internal static IReadOnlyList<string> Tail(string path, int count)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long start = Math.Max(0, fs.Length - 64 * 1024);
            fs.Seek(start, SeekOrigin.Begin);
            using var reader = new StreamReader(fs);
            string[] lines = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return lines.Skip(Math.Max(0, lines.Length - count)).ToArray();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Array.Empty<string>();
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Signal(int pid, int signal);
}
