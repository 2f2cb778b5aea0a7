using System;

namespace EtcdSecure.Engine.Relay;

/// <summary>The environment variables that turn a part of the relay off, named as Get-EtcdProxy gives the reason.</summary>
internal static class EnvironmentSwitch
{
    /// <summary>"NAME=value" when the environment sets <paramref name="name"/> to <paramref name="value"/>; otherwise null.</summary>
    public static string? Set(string name, string value) =>
        Environment.GetEnvironmentVariable(name) == value ? $"{name}={value}" : null;
}
