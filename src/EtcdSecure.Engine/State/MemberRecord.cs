using System;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.Engine.State;

/// <summary>A member as the state store keeps it: how it was started, and which process it is.</summary>
public sealed record MemberRecord
{
    public const string Kind = "members";

    public required MemberSpec Spec { get; init; }
    public required int ProcessId { get; init; }

    /// <summary>When that process started (see <see cref="ProcessIdentity"/>): a reused PID never passes for the member.</summary>
    public string? ProcessStart { get; init; }
    public required string CommandLine { get; init; }
    public required EtcdBinaryInfo Etcd { get; init; }
    public DateTime StartTime { get; init; }
}
