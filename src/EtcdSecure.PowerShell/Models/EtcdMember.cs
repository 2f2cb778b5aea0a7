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
}
