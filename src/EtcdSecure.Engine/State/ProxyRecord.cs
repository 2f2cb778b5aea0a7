using System;

namespace EtcdSecure.Engine.State;

/// <summary>A detached proxy as the state store keeps it: its process, where clients reach it, and its control socket.</summary>
public sealed record ProxyRecord
{
    public const string Kind = "proxies";

    public required string Name { get; init; }
    public required int ProcessId { get; init; }
    public string? ProcessStart { get; init; }
    public required string Endpoint { get; init; }
    public required string ControlSocket { get; init; }
    public required string LogPath { get; init; }
    public DateTime StartTime { get; init; }
}
