using System;
using System.Collections.Generic;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.Engine.State;

/// <summary>A cluster New-EtcdCluster made: its folder, its members' specs (so it can be stopped and removed from any session) and how to reach it.</summary>
public sealed record ClusterRecord
{
    public const string Kind = "clusters";

    public required string Name { get; init; }
    public required string Path { get; init; }
    public required IReadOnlyList<MemberSpec> Members { get; init; }
    public required IReadOnlyList<string> Endpoints { get; init; }
    public required string CAPath { get; init; }

    /// <summary>The CA of the peer certificates; clusters recorded before it existed used <see cref="CAPath"/> for both.</summary>
    public string? PeerCAPath { get; init; }
    public required string ClientCertificatePath { get; init; }
    public required string ClientKeyPath { get; init; }
    public DateTime Created { get; init; }
}
