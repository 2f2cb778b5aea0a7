using System;
using System.Linq;

namespace EtcdSecure;

/// <summary>A TLS cluster made by New-EtcdCluster: its members, where its files are, and how to reach it.</summary>
public sealed class EtcdCluster
{
    public string Name { get; init; } = "";
    /// <summary>Running (every member runs), Degraded (some do), Stopped (none does).</summary>
    public string State { get; init; } = "";
    public string Path { get; init; } = "";
    public EtcdMember[] Members { get; init; } = Array.Empty<EtcdMember>();
    public string[] Endpoints { get; init; } = Array.Empty<string>();
    /// <summary>The leading member's name, as the running members report it; blank when none answered.</summary>
    public string? Leader { get; init; }
    public string CAPath { get; init; } = "";

    /// <summary>The CA that issued the peer certificates (only peers trust it).</summary>
    public string PeerCAPath { get; init; } = "";
    public string ClientCertificatePath { get; init; } = "";
    public string ClientKeyPath { get; init; } = "";

    /// <summary>Lines to paste into a POSIX shell so that etcdctl talks to this cluster.</summary>
    public string[] EnvironmentLines { get; init; } = Array.Empty<string>();

    /// <summary>The same for PowerShell (also read by Test-EtcdClusterHealth when no endpoint is given).</summary>
    public string[] PowerShellEnvironmentLines { get; init; } = Array.Empty<string>();

    internal static EtcdCluster From(Engine.State.ClusterRecord c, string? leader = null)
    {
        var recorded = Engine.Members.ClusterHost.MembersOf(c).ToDictionary(m => m.Spec.Name);
        EtcdMember[] members = c.Members.Select(s => recorded.TryGetValue(s.Name, out var m) ? EtcdMember.From(m) : EtcdMember.Stopped(s)).ToArray();
        int running = members.Count(m => m.State == "Running");
        return new EtcdCluster
        {
            Name = c.Name,
            State = running == members.Length ? "Running" : running > 0 ? "Degraded" : "Stopped",
            Path = c.Path,
            Members = members,
            Endpoints = c.Endpoints.ToArray(),
            Leader = leader,
            CAPath = c.CAPath,
            PeerCAPath = c.PeerCAPath ?? c.CAPath,
            ClientCertificatePath = c.ClientCertificatePath,
            ClientKeyPath = c.ClientKeyPath,
            EnvironmentLines = new[]
            {
                "export ETCDCTL_API=3",
                $"export ETCDCTL_ENDPOINTS={string.Join(",", c.Endpoints)}",
                $"export ETCDCTL_CACERT={Sh(c.CAPath)}",
                $"export ETCDCTL_CERT={Sh(c.ClientCertificatePath)}",
                $"export ETCDCTL_KEY={Sh(c.ClientKeyPath)}",
            },
            PowerShellEnvironmentLines = new[]
            {
                "$env:ETCDCTL_API = '3'",
                $"$env:ETCDCTL_ENDPOINTS = '{string.Join(",", c.Endpoints)}'",
                $"$env:ETCDCTL_CACERT = {Ps(c.CAPath)}",
                $"$env:ETCDCTL_CERT = {Ps(c.ClientCertificatePath)}",
                $"$env:ETCDCTL_KEY = {Ps(c.ClientKeyPath)}",
            },
        };
    }

    private static string Sh(string s) => "'" + s.Replace("'", "'\\''") + "'";

    private static string Ps(string s) => "'" + s.Replace("'", "''") + "'";
}
