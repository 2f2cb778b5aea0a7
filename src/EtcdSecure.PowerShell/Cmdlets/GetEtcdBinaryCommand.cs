using System.Management.Automation;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Finds etcd and etcdctl and reports their versions and the TLS flags they support. Start-EtcdMember and
/// New-EtcdCluster choose their etcd flags from what it reports (-EtcdPath picks another binary).
/// </summary>
/// <example>
/// <code>
/// Get-EtcdBinary
/// </code>
/// Finds etcd and etcdctl on PATH and shows their versions and which TLS flags this etcd supports.
/// </example>
/// <example>
/// <code>
/// Get-EtcdBinary etcd -Path /opt/etcd-v3.5.17/etcd
/// </code>
/// Inspects a particular etcd binary instead of the one on PATH.
/// </example>
[Cmdlet(VerbsCommon.Get, "EtcdBinary")]
[OutputType(typeof(EtcdBinary))]
public sealed class GetEtcdBinaryCommand : EtcdCmdlet
{
    /// <summary>Which binaries to look for. Default: etcd and etcdctl.</summary>
    [Parameter(Position = 0)]
    [ValidateSet("etcd", "etcdctl")]
    public string[] Name { get; set; } = { "etcd", "etcdctl" };

    /// <summary>A binary to inspect instead of the one on PATH.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    protected override void Process()
    {
        foreach (string name in Name)
        {
            var info = Engine.Members.EtcdBinary.Locate(name, Path is null ? null : ResolveLocalPath(Path));
            WriteObject(new EtcdBinary
            {
                Name = info.Name,
                Path = info.Path,
                Version = info.Version,
                GoVersion = info.GoVersion,
                SupportsTlsMinVersion = info.SupportsTlsMinVersion,
                SupportsClientCertFile = info.SupportsClientCertFile,
                SupportsV2 = info.SupportsV2,
            });
        }
    }
}
