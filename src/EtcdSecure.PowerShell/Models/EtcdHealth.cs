using System;
using System.Collections.Generic;
using System.Linq;
using EtcdSecure.Engine.Health;

namespace EtcdSecure;

/// <summary>One member's health and status, as Test-EtcdClusterHealth reports it.</summary>
public sealed class EtcdEndpointHealth
{
    public string Endpoint { get; init; } = "";
    /// <summary>The proxy the member was reached through, when it was.</summary>
    public string? Via { get; init; }
    public string? Name { get; init; }
    public string? MemberId { get; init; }
    public bool Healthy { get; init; }
    public bool IsLeader { get; init; }
    public string? Leader { get; init; }
    public ulong? RaftTerm { get; init; }
    public ulong? RaftIndex { get; init; }
    public string? Version { get; init; }
    public long? DbSize { get; init; }
    public TimeSpan? Latency { get; init; }
    public string[] Alarms { get; init; } = Array.Empty<string>();
    public string? Error { get; init; }

    internal static EtcdEndpointHealth From(EndpointHealth h) => new()
    {
        Endpoint = h.Endpoint,
        Via = h.Via,
        Name = h.Name,
        MemberId = h.MemberId is { } id ? ClusterMember.FormatId(id) : null,
        Healthy = h.Healthy,
        IsLeader = h.IsLeader,
        Leader = h.Leader is > 0 ? ClusterMember.FormatId(h.Leader.Value) : null,
        RaftTerm = h.RaftTerm,
        RaftIndex = h.RaftIndex,
        Version = h.Version,
        DbSize = h.DbSize,
        Latency = h.Latency,
        Alarms = h.Alarms.ToArray(),
        Error = h.Error,
    };
}

/// <summary>The cluster as a whole: healthy when a quorum of members is healthy and they agree on one leader.</summary>
public sealed class EtcdClusterHealth
{
    public bool Healthy { get; init; }
    public int Members { get; init; }
    public int HealthyMembers { get; init; }
    public int Quorum { get; init; }
    public string? Leader { get; init; }
    public ulong? RaftTerm { get; init; }
    public string[] Problems { get; init; } = Array.Empty<string>();
    public EtcdEndpointHealth[] Endpoints { get; init; } = Array.Empty<EtcdEndpointHealth>();

    internal static EtcdClusterHealth From(IReadOnlyList<EtcdEndpointHealth> rows)
    {
        int quorum = rows.Count / 2 + 1;
        var healthy = rows.Where(r => r.Healthy).ToList();
        var leaders = healthy.Select(r => r.Leader).Where(l => l is not null).Distinct().ToList();
        var problems = rows.Where(r => !r.Healthy).Select(r => $"{r.Name ?? r.Endpoint}: {r.Error}").ToList();
        if (leaders.Count > 1) problems.Add("members disagree on the leader: " + string.Join(", ", leaders));
        if (healthy.Count > 0 && leaders.Count == 0) problems.Add("no leader");
        return new EtcdClusterHealth
        {
            Healthy = rows.Count > 0 && healthy.Count >= quorum && leaders.Count == 1,
            Members = rows.Count,
            HealthyMembers = healthy.Count,
            Quorum = quorum,
            Leader = leaders.Count == 1 ? rows.FirstOrDefault(r => r.MemberId == leaders[0])?.Name ?? leaders[0] : null,
            RaftTerm = healthy.Max(r => r.RaftTerm),
            Problems = problems.ToArray(),
            Endpoints = rows.ToArray(),
        };
    }
}

/// <summary>A member as the cluster's MemberList reports it.</summary>
public sealed class EtcdClusterMember
{
    public string Id { get; init; } = "";
    public string Name { get; init; } = "";
    public string[] PeerUrls { get; init; } = Array.Empty<string>();
    public string[] ClientUrls { get; init; } = Array.Empty<string>();
    public bool IsLearner { get; init; }
    public bool IsStarted { get; init; }

    internal static EtcdClusterMember From(ClusterMember m) => new()
    {
        Id = m.IdHex,
        Name = m.Name,
        PeerUrls = m.PeerUrls.ToArray(),
        ClientUrls = m.ClientUrls.ToArray(),
        IsLearner = m.IsLearner,
        IsStarted = m.IsStarted,
    };
}
