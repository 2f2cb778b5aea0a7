using System;

namespace EtcdSecure;

/// <summary>A TLS cluster made by New-EtcdCluster: its members, where its files are, and how to reach it.</summary>
public sealed class EtcdCluster
{
    public string Name { get; init; } = "";
    public string Path { get; init; } = "";
    public EtcdMember[] Members { get; init; } = Array.Empty<EtcdMember>();
    public string[] Endpoints { get; init; } = Array.Empty<string>();
    public string? Leader { get; init; }
    public string CAPath { get; init; } = "";
    public string ClientCertificatePath { get; init; } = "";
    public string ClientKeyPath { get; init; } = "";

    /// <summary>Lines to paste into a POSIX shell so that etcdctl talks to this cluster.</summary>
    public string[] EnvironmentLines { get; init; } = Array.Empty<string>();

    /// <summary>The same for PowerShell (also read by Test-EtcdClusterHealth when no endpoint is given).</summary>
    public string[] PowerShellEnvironmentLines { get; init; } = Array.Empty<string>();
}
