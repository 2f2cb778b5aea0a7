using System;

namespace EtcdSecure;

/// <summary>An etcd or etcdctl executable found by Get-EtcdBinary.</summary>
public sealed class EtcdBinary
{
    public string Name { get; init; } = "";
    public string Path { get; init; } = "";
    public Version Version { get; init; } = new();
    public string? GoVersion { get; init; }
    public bool SupportsTlsMinVersion { get; init; }
    public bool SupportsClientCertFile { get; init; }
    public bool SupportsV2 { get; init; }
}
