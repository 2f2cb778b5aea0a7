using System;
using System.IO;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Writes an etcd YAML config file for a member, with the same secure flags Start-EtcdMember uses, for deployments
/// on real hosts (etcd --config-file FILE). Certificate paths are written as given, so they can be the paths on the host.
/// </summary>
/// <example>
/// <code>
/// New-EtcdMemberConfig etcd-1 -ClientUrl https://10.0.0.1:2379 -PeerUrl https://10.0.0.1:2380 -InitialCluster 'etcd-1=https://10.0.0.1:2380,etcd-2=https://10.0.0.2:2380' -Certificate ./tls/etcd-1.pem -CA ./tls/ca.pem -DataDir /var/lib/etcd -EtcdVersion 3.5.17 -Path ./etcd-1.yaml
/// </code>
/// Writes a config for a member on a real host; start it there with etcd --config-file etcd-1.yaml.
/// </example>
/// <example>
/// <code>
/// New-EtcdMemberConfig n1 -Certificate $node -CA $ca -Path ./n1.yaml -Force
/// </code>
/// Replaces an existing file, for the installed etcd's version.
/// </example>
[Cmdlet(VerbsCommon.New, "EtcdMemberConfig", SupportsShouldProcess = true)]
[OutputType(typeof(FileInfo))]
public sealed class NewEtcdMemberConfigCommand : MemberSpecCmdlet
{
    /// <summary>The file to write. Default: NAME.etcd.yaml in the current location.</summary>
    [Parameter]
    [Alias("OutFile")]
    public string? Path { get; set; }

    /// <summary>The etcd version the file is for (which keys it may hold). Default: the installed etcd, else 3.5.</summary>
    [Parameter]
    public Version? EtcdVersion { get; set; }

    /// <summary>Replace an existing file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override EtcdBinaryInfo LocateEtcd()
    {
        if (EtcdVersion is not null) return new EtcdBinaryInfo("etcd", "etcd", Normalize(EtcdVersion), null);
        try
        {
            return base.LocateEtcd();
        }
        catch (EtcdSecureException ex) when (ex.Kind == ErrorKind.NotInstalled)
        {
            // Config files are often written on a workstation for hosts elsewhere.
            WriteWarning("etcd is not installed here; writing a config for etcd 3.5. Give -EtcdVersion to choose.");
            return new EtcdBinaryInfo("etcd", "etcd", new Version(3, 5, 0), null);
        }
    }

    protected override void Process()
    {
        var (spec, etcd) = BuildSpec();
        string file = ResolveLocalPath(Path ?? Name + ".etcd.yaml");
        PemFileSet.EnsureWritable(new[] { file }, Force.IsPresent);
        if (!ShouldProcess(file, $"Write the etcd {etcd.Version.ToString(3)} config of member {Name}")) return;
        PemFileSet.Write(new[] { new PemFileSet.Entry(file, EtcdConfigFile.Render(spec, etcd), Secret: false) }, Force.IsPresent);
        WriteFile(file);
    }

    private static Version Normalize(Version v) => new(v.Major, Math.Max(v.Minor, 0), Math.Max(v.Build, 0));
}
