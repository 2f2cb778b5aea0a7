using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.State;

namespace EtcdSecure.Engine.Members;

/// <summary>A member this module started, in this session or any other, and how to reach and stop it.</summary>
public sealed class RunningMember
{
    internal RunningMember(MemberRecord record) => Record = record;

    internal MemberRecord Record { get; }
    public MemberSpec Spec => Record.Spec;
    public int ProcessId => Record.ProcessId;
    public string CommandLine => Record.CommandLine;
    public EtcdBinaryInfo Etcd => Record.Etcd;
    public DateTime StartTime => Record.StartTime;

    /// <summary>Set once Stop-EtcdMember stopped it (its record is gone from the store then).</summary>
    public bool StoppedByUser { get; internal set; }

    /// <summary>Gone, or its PID now belongs to another process.</summary>
    public bool HasExited => !ProcessIdentity.IsRunning(ProcessId, Record.ProcessStart);

    /// <summary>Known only to the session that started it (the parent); other sessions see null.</summary>
    public int? ExitCode => MemberHost.ExitCodeOf(ProcessId);

    public IReadOnlyList<string> LastLogLines(int count) => MemberHost.Tail(Spec.LogPath, count);
}

/// <summary>
/// Starts etcd members detached from the shell, records them in the state store, and stops them by PID once the
/// PID is known to still be theirs. Any session of the same user sees the same members.
/// </summary>
public static class MemberHost
{
    // Only the processes this session started: the parent alone learns an exit code, and reaps the process.
    private static readonly ConcurrentDictionary<int, Process> Children = new();

    public static IReadOnlyList<RunningMember> All => StateStore.Current.List<MemberRecord>(MemberRecord.Kind).Select(r => new RunningMember(r)).OrderBy(m => m.StartTime).ToList();

    public static RunningMember? Find(string name) => StateStore.Current.Get<MemberRecord>(MemberRecord.Kind, name) is { } r ? new RunningMember(r) : null;

    public static (string Executable, IReadOnlyList<string> Arguments) Plan(MemberSpec spec, EtcdBinaryInfo etcd) => (etcd.Path, EtcdCommandLine.Build(spec, etcd));

    internal static int? ExitCodeOf(int pid) => Children.TryGetValue(pid, out Process? p) && p.HasExited ? p.ExitCode : null;

    public static async Task<RunningMember> StartAsync(MemberSpec spec, EtcdBinaryInfo etcd, TimeSpan timeout, CancellationToken cancel, bool rejoining = false)
    {
        StateStore store = StateStore.Current;
        if (Find(spec.Name) is { HasExited: false } running)
        {
            throw new EtcdSecureException("MemberAlreadyRunning", ErrorKind.ResourceExists, $"Member '{spec.Name}' is already running as process {running.ProcessId}.", spec.Name);
        }

        MemberPreflight.Check(spec);
        IReadOnlyList<string> args = EtcdCommandLine.Build(spec, etcd);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(spec.DataDir))!);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(spec.LogPath))!);

        Process process = Launch(spec, etcd, args);
        Children[process.Id] = process;
        var member = new RunningMember(new MemberRecord
        {
            Spec = spec,
            ProcessId = process.Id,
            ProcessStart = ProcessIdentity.StartToken(process.Id),
            CommandLine = EtcdCommandLine.Quote(etcd.Path, args),
            Etcd = etcd,
            StartTime = DateTime.Now,
        });
        store.Put(MemberRecord.Kind, spec.Name, member.Record);
        try
        {
            await WaitUntilServingAsync(member, timeout, rejoining, cancel).ConfigureAwait(false);
        }
        catch (EtcdSecureException ex) when (ex.ErrorId == "MemberExited")
        {
            // It is gone already; its record stays, as Exited with its last log lines, until Stop-EtcdMember.
            throw;
        }
        catch
        {
            // No process left behind: a member that did not come up is stopped before the error is reported.
            Kill(member);
            store.Remove(MemberRecord.Kind, spec.Name);
            throw;
        }

        return member;
    }

    private static Process Launch(MemberSpec spec, EtcdBinaryInfo etcd, IReadOnlyList<string> args) =>
        DetachedProcess.Start(etcd.Path, args, spec.LogPath, spec.Name, without: StrayEnvironment());

    /// <summary>
    /// The ETCD_* variables of this session's environment. etcd takes any flag it is not given from ETCD_FLAG_NAME, so
    /// one left over in the shell (ETCD_UNSAFE_NO_FSYNC, ETCD_LISTEN_METRICS_URLS) would change a member without a
    /// trace in its command line, -WhatIf or an exported unit: members are started without them.
    /// </summary>
    public static IReadOnlyList<string> StrayEnvironment() =>
        Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.StartsWith("ETCD_", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();

    private static async Task WaitUntilServingAsync(RunningMember member, TimeSpan timeout, bool rejoining, CancellationToken cancel)
    {
        MemberSpec s = member.Spec;
        var clientIdentity = TlsClientIdentity.Load(s.TrustedCAPath, s.Server.CertificatePath, s.Server.KeyPath);
        var peerIdentity = TlsClientIdentity.Load(s.PeerTrustedCAPath, s.Peer.CertificatePath, s.Peer.KeyPath);
        Uri client = s.AdvertiseClientUrls[0];
        Uri peer = s.AdvertisePeerUrls[0];
        // etcd opens its client port only once the cluster has quorum, so a member of a cluster that is still
        // forming can only show it is up on its peer port. A lone member must answer on its client port.
        // A member rejoining a running cluster must be back in it (its client port open) before it counts as up:
        // a rolling restart that went on sooner could stop the next member while this one is still catching up.
        bool peersSuffice = !rejoining && MemberSpec.ParseInitialCluster(s.InitialCluster).Select(kv => kv.Key).Distinct().Count() > 1;
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

    /// <summary>
    /// Stops a member and starts it again with <paramref name="spec"/> (its own, with other trust or CRL files), keeping
    /// its data, so it rejoins its cluster. The new files are checked before anything is stopped. etcd reads its
    /// trusted CA files only when it starts, so this is how a member comes to trust a new CA bundle.
    /// </summary>
    public static async Task<RunningMember> RestartAsync(RunningMember member, MemberSpec spec, TimeSpan grace, TimeSpan startTimeout, CancellationToken cancel)
    {
        MemberPreflight.CheckCertificates(spec);
        await StopAsync(member, grace, cancel).ConfigureAwait(false);
        RunningMember started = await StartAsync(spec, member.Record.Etcd, startTimeout, cancel, rejoining: true).ConfigureAwait(false);
        foreach (ClusterRecord c in ClusterHost.All.Where(c => c.Members.Any(m => m.Name == spec.Name && m.DataDir == spec.DataDir)))
        {
            var members = c.Members.Select(m => m.Name == spec.Name ? spec : m).ToList();
            // Once every member trusts the same file, that is what the cluster's clients verify the members with.
            string[] trusted = members.Select(m => m.TrustedCAPath).Distinct().ToArray();
            ClusterHost.Record(c with { Members = members, CAPath = trusted.Length == 1 ? trusted[0] : c.CAPath });
        }

        return started;
    }

    /// <summary>
    /// SIGTERM, then SIGKILL after <paramref name="grace"/> (etcd flushes its WAL on SIGTERM); then the record goes.
    /// Signals go only to the process the record names, checked by its start time just before each one.
    /// </summary>
    public static async Task StopAsync(RunningMember member, TimeSpan grace, CancellationToken cancel)
    {
        member.StoppedByUser = true;
        if (!member.HasExited)
        {
            if (!OperatingSystem.IsWindows() && Signal(member.ProcessId, 15) == 0)
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                cts.CancelAfter(grace);
                try
                {
                    await WaitForExitAsync(member, cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                {
                    // Did not exit in time: the kill below.
                }
            }

            Kill(member);
        }

        Forget(member);
    }

    /// <summary>Takes the member's record out of the store.</summary>
    public static void Forget(RunningMember member)
    {
        StateStore.Current.Remove(MemberRecord.Kind, member.Spec.Name);
        if (Children.TryRemove(member.ProcessId, out Process? child)) child.Dispose();
    }

    private static async Task WaitForExitAsync(RunningMember member, CancellationToken cancel)
    {
        if (Children.TryGetValue(member.ProcessId, out Process? child))
        {
            await child.WaitForExitAsync(cancel).ConfigureAwait(false);
            return;
        }

        await ProcessIdentity.WaitForExitAsync(member.ProcessId, member.Record.ProcessStart, cancel).ConfigureAwait(false);
    }

    private static void Kill(RunningMember member)
    {
        ProcessIdentity.Kill(member.ProcessId, member.Record.ProcessStart);
        // This session's own child is reaped too, so its exit code is known.
        if (Children.TryGetValue(member.ProcessId, out Process? child)) child.WaitForExit(10_000);
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
