using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using EtcdSecure.Engine.Relay;

namespace EtcdSecure.PowerShell;

/// <summary>
/// A running proxy as a PowerShell job: Get-Job lists it, Stop-Job stops it, Receive-Job returns its log (member
/// state changes and reloads as information and warnings; refused clients as verbose). The relay itself runs on the
/// thread pool, not in a runspace: no script runs there, so a runspace would only cost memory and start-up time.
/// </summary>
public sealed class EtcdProxyJob : Job2
{
    /// <summary>Records kept per stream: the newest ones; older ones are dropped and counted.</summary>
    internal const int MaxRecords = 1000;

    private long _dropped;

    public EtcdProxyJob(string name, string command)
        : base(command, name)
    {
        PSJobTypeName = "EtcdProxy";
    }

    internal EtcdProxy? Proxy { get; private set; }

    internal string Endpoint { get; set; } = "";

    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0 || Warning.Count > 0 || Verbose.Count > 0 || Information.Count > 0;

    public override string Location => Endpoint;

    public override string StatusMessage => Proxy is { } p ? $"{p.Active} active, {p.Total} total connections" : "";

    /// <summary>Log records dropped because nobody called Receive-Job while more than <see cref="MaxRecords"/> came in.</summary>
    public long DroppedRecords => Interlocked.Read(ref _dropped);

    internal void Attach(EtcdProxy proxy)
    {
        Proxy = proxy;
        SetJobState(JobState.Running);
    }

    /// <summary>
    /// Where the proxy's log goes while it runs as a job. Each stream keeps its newest records, as a ring: a flood of
    /// refused clients cannot grow the job without bound while nobody calls Receive-Job.
    /// </summary>
    internal void Write(ProxyLogLevel level, string message)
    {
        string line = $"{DateTime.Now:HH:mm:ss.fff} {Name}: {message}";
        switch (level)
        {
            case ProxyLogLevel.Warning:
                Keep(Warning, new WarningRecord(line));
                break;
            case ProxyLogLevel.Information:
                Keep(Information, new InformationRecord(line, Name));
                break;
            default:
                Keep(Verbose, new VerboseRecord(line));
                break;
        }
    }

    private void Keep<T>(PSDataCollection<T> stream, T record)
    {
        stream.Add(record);
        // Another writer may add at the same time; each removes at most what it added, so the ring stays bounded.
        if (stream.Count > MaxRecords)
        {
            try
            {
                stream.RemoveAt(0);
                Interlocked.Increment(ref _dropped);
            }
            catch (ArgumentOutOfRangeException)
            {
                // Receive-Job emptied it meanwhile.
            }
        }
    }

    public override void StopJob()
    {
        if (IsFinishedState(JobStateInfo.State)) return;
        SetJobState(JobState.Stopping);
        Proxy?.StopAsync().GetAwaiter().GetResult();
        SetJobState(JobState.Stopped);
    }

    public override void StopJob(bool force, string reason) => StopJob();

    public override void StartJob() { }

    public override void StartJobAsync() => OnStartJobCompleted(new System.ComponentModel.AsyncCompletedEventArgs(null, false, null));

    public override void StopJobAsync()
    {
        StopJob();
        OnStopJobCompleted(new System.ComponentModel.AsyncCompletedEventArgs(null, false, null));
    }

    public override void StopJobAsync(bool force, string reason) => StopJobAsync();

    public override void SuspendJob() => throw new NotSupportedException("A proxy cannot be suspended; stop it and start it again.");

    public override void SuspendJobAsync() => SuspendJob();

    public override void SuspendJob(bool force, string reason) => SuspendJob();

    public override void SuspendJobAsync(bool force, string reason) => SuspendJob();

    public override void ResumeJob() { }

    public override void ResumeJobAsync() => OnResumeJobCompleted(new System.ComponentModel.AsyncCompletedEventArgs(null, false, null));

    public override void UnblockJob() { }

    public override void UnblockJobAsync() => OnUnblockJobCompleted(new System.ComponentModel.AsyncCompletedEventArgs(null, false, null));

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            StopJob();
            // Remove-Job disposes the job: its name no longer names anything in this session.
            ProxyRegistry.Remove(this);
        }

        base.Dispose(disposing);
    }

    private static bool IsFinishedState(JobState s) => s is JobState.Completed or JobState.Failed or JobState.Stopped;
}

/// <summary>The proxies of this session (jobs, by name), and the detached ones any session started.</summary>
internal static class ProxyRegistry
{
    /// <summary>
    /// This session's jobs, then the detached proxies in the state store: one per name. A name is one proxy, so where a
    /// name is both a live proxy and a stopped job kept for Receive-Job, the live one is what the name means.
    /// </summary>
    public static IReadOnlyList<object> Everything
    {
        get
        {
            var all = All.Cast<object>().Concat(Engine.Relay.ProxyHost.All).ToList();
            var live = all.Where(IsRunning).Select(NameOf).ToHashSet(StringComparer.OrdinalIgnoreCase);
            return all.Where(p => IsRunning(p) || !live.Contains(NameOf(p))).ToList();
        }
    }

    public static bool IsRunning(object proxy) => proxy switch
    {
        EtcdProxyJob j => j.JobStateInfo.State is JobState.Running or JobState.Stopping,
        Engine.State.ProxyRecord r => Engine.Relay.ProxyHost.IsRunning(r),
        _ => false,
    };

    /// <summary>The live proxy of that name, a job of this session or a detached one, if there is one.</summary>
    public static object? Running(string name) => Everything.FirstOrDefault(p => IsRunning(p) && string.Equals(NameOf(p), name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Refuses a name that is a live proxy already, whichever kind it is.</summary>
    public static void EnsureFree(string name)
    {
        switch (Running(name))
        {
            case EtcdProxyJob j:
                throw new Engine.EtcdSecureException("ProxyAlreadyRunning", Engine.ErrorKind.ResourceExists, $"A proxy named '{name}' runs as job {j.Id} in this session; stop it first or pick another -Name.", name);
            case Engine.State.ProxyRecord r:
                throw new Engine.EtcdSecureException("ProxyAlreadyRunning", Engine.ErrorKind.ResourceExists, $"A detached proxy named '{name}' runs as process {r.ProcessId}; stop it first or pick another -Name.", name);
        }
    }

    public static string NameOf(object proxy) => proxy switch
    {
        EtcdProxyJob j => j.Name,
        Engine.State.ProxyRecord r => r.Name,
        _ => "",
    };

    /// <summary>What Get-EtcdProxy shows: a job's own counters, or a detached proxy's over its control socket.</summary>
    public static EtcdProxyInfo Info(object proxy, System.Threading.CancellationToken cancel) => proxy switch
    {
        EtcdProxyJob j => EtcdProxyInfo.From(j),
        Engine.State.ProxyRecord r when Engine.Relay.ProxyHost.IsRunning(r) =>
            EtcdProxyInfo.From(r, Engine.Relay.ControlClient.StatsAsync(r.ControlSocket, TimeSpan.FromSeconds(5), cancel).GetAwaiter().GetResult(), running: true),
        Engine.State.ProxyRecord r => EtcdProxyInfo.From(r, null, running: false),
        _ => throw new ArgumentException("not a proxy", nameof(proxy)),
    };

    private static readonly ConcurrentDictionary<string, EtcdProxyJob> Jobs = new(StringComparer.OrdinalIgnoreCase);

    public static IReadOnlyList<EtcdProxyJob> All => Jobs.Values.OrderBy(j => j.Id).ToList();

    private static readonly object Adding = new();

    /// <summary>Registers a starting job under its name, refused (ProxyAlreadyRunning) while that name is a live proxy.</summary>
    public static void Add(EtcdProxyJob job)
    {
        lock (Adding)
        {
            EnsureFree(job.Name);
            Jobs[job.Name] = job;
        }
    }

    public static void Remove(EtcdProxyJob job) => Jobs.TryRemove(new KeyValuePair<string, EtcdProxyJob>(job.Name, job));

    public static string NextName()
    {
        for (int i = 1; ; i++)
        {
            string name = i == 1 ? "etcd-proxy" : $"etcd-proxy-{i}";
            if (Running(name) is null) return name;
        }
    }
}
