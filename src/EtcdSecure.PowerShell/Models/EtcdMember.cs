using System;
using System.Linq;
using EtcdSecure.Engine.Members;

namespace EtcdSecure;

/// <summary>An etcd member started by Start-EtcdMember.</summary>
public sealed class EtcdMember
{
    public string Name { get; init; } = "";
    public string State { get; init; } = "";
    public int ProcessId { get; init; }
    public int? ExitCode { get; init; }
    /// <summary>Why an Exited member ended, as far as is known: its exit code (only the session that started it learns it) and the last error its log shows.</summary>
    public string? ExitReason { get; init; }
    public string[] ClientUrls { get; init; } = Array.Empty<string>();
    public string[] PeerUrls { get; init; } = Array.Empty<string>();
    public string DataDir { get; init; } = "";
    public string LogPath { get; init; } = "";
    public Version? Version { get; init; }
    public DateTime StartTime { get; init; }
    public string CommandLine { get; init; } = "";
    public string CAPath { get; init; } = "";
    public string CertificatePath { get; init; } = "";
    public string KeyPath { get; init; } = "";
    public string[] LastLogLines { get; init; } = Array.Empty<string>();

    internal static EtcdMember From(RunningMember m)
    {
        bool exited = m.HasExited;
        return new EtcdMember
        {
            Name = m.Spec.Name,
            State = !exited ? "Running" : m.StoppedByUser ? "Stopped" : "Exited",
            ProcessId = m.ProcessId,
            ExitCode = m.ExitCode,
            ExitReason = exited && !m.StoppedByUser ? ExitReasonOf(m) : null,
            ClientUrls = m.Spec.AdvertiseClientUrls.Select(u => u.GetLeftPart(UriPartial.Authority)).ToArray(),
            PeerUrls = m.Spec.AdvertisePeerUrls.Select(u => u.GetLeftPart(UriPartial.Authority)).ToArray(),
            DataDir = m.Spec.DataDir,
            LogPath = m.Spec.LogPath,
            Version = m.Etcd.Version,
            StartTime = m.StartTime,
            CommandLine = m.CommandLine,
            CAPath = m.Spec.TrustedCAPath,
            CertificatePath = m.Spec.Server.CertificatePath,
            KeyPath = m.Spec.Server.KeyPath,
            LastLogLines = exited && !m.StoppedByUser ? m.LastLogLines(20).ToArray() : Array.Empty<string>(),
        };
    }

    /// <summary>A member of a cluster whose record is gone because it was stopped: what its spec says.</summary>
    internal static EtcdMember Stopped(Engine.Members.MemberSpec spec) => new()
    {
        Name = spec.Name,
        State = "Stopped",
        ClientUrls = spec.AdvertiseClientUrls.Select(u => u.GetLeftPart(UriPartial.Authority)).ToArray(),
        PeerUrls = spec.AdvertisePeerUrls.Select(u => u.GetLeftPart(UriPartial.Authority)).ToArray(),
        DataDir = spec.DataDir,
        LogPath = spec.LogPath,
        CAPath = spec.TrustedCAPath,
        CertificatePath = spec.Server.CertificatePath,
        KeyPath = spec.Server.KeyPath,
    };

    private static string ExitReasonOf(RunningMember m)
    {
        string? code = m.ExitCode is { } c ? $"exited with code {c}" : null;
        // etcd logs JSON (zap) on 3.4+; the last fatal, panic or error line says why it ended.
        string? logged = m.LastLogLines(50).LastOrDefault(l => l.Contains("\"level\":\"fatal\"", StringComparison.Ordinal) || l.Contains("\"level\":\"panic\"", StringComparison.Ordinal)
            || l.Contains("\"level\":\"error\"", StringComparison.Ordinal) || l.StartsWith("panic:", StringComparison.Ordinal));
        return (code, logged) switch
        {
            (not null, not null) => $"{code}; last error logged: {logged}",
            (not null, null) => code,
            (null, not null) => $"last error logged: {logged}",
            _ => $"process {m.ProcessId} is gone; it was started by another session, so its exit code is unknown (log: {m.Spec.LogPath})",
        };
    }
}
