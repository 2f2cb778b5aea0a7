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

    internal static EtcdClusterHealth From(IReadOnlyList<EndpointHealth> results)
    {
        ClusterVerdict v = ClusterVerdict.Of(results);
        return new EtcdClusterHealth
        {
            Healthy = v.Healthy,
            Members = v.Members,
            HealthyMembers = v.HealthyMembers,
            Quorum = v.Quorum,
            Leader = v.Leader,
            RaftTerm = v.RaftTerm,
            Problems = v.Problems.ToArray(),
            Endpoints = results.Select(EtcdEndpointHealth.From).ToArray(),
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
