using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Audit;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Audits the TLS and access posture of any etcd cluster, built by this module or not, the way an attacker would
/// try it: plain HTTP on the client and peer ports, TLS without a client certificate, a client certificate from a
/// CA made on the spot, a client certificate on a peer port, the servers' certificates (expiry, self-signed as
/// --auto-tls makes them, usages, SANs, key size), whether etcd's auth is off while certificates are the only gate,
/// and on this machine the modes of data dirs and key files and CA keys lying beside members. One finding per check
/// and target, each with a stable Id, a Severity, the Evidence seen and the Remedy; docs/security.md lists them all.
/// Everything runs in parallel, the whole audit bounded by -Timeout; a target that does not answer is a finding
/// (TargetUnreachable, HandshakeNotCompleted), and -Quiet and -Summary never pass what could not be checked.
/// Without -CA and -Certificate (or ETCDCTL_CACERT and ETCDCTL_CERT) the checks that need to get in are skipped.
/// Endpoints may be http:// URLs too: a plaintext port is reported (ClientPlaintext, Critical), not refused.
/// </summary>
/// <example>
/// <code>
/// Test-EtcdSecurity -Endpoint https://10.0.0.5:2379 -PeerUrl https://10.0.0.5:2380 -CA ./ca.pem -Certificate ./root.pem
/// </code>
/// Audits a cluster from the outside; the findings come sorted, the most severe first.
/// </example>
/// <example>
/// <code>
/// Get-EtcdMember | Test-EtcdSecurity -Quiet
/// </code>
/// $true when no check finds anything High or Critical on the members this module started, ports and local files, and
/// every check could be made: for CI.
/// </example>
[Cmdlet(VerbsDiagnostic.Test, "EtcdSecurity")]
[OutputType(typeof(EtcdSecurityFinding), typeof(EtcdSecuritySummary), typeof(bool))]
public sealed class TestEtcdSecurityCommand : EtcdClientCmdlet
{
    private readonly List<string> _peers = new();
    private readonly List<string> _dataDirs = new();
    private readonly List<string> _certificateFiles = new();

    /// <summary>Peer URLs to check as well (https://host:2380). Default: the members' peer URLs from MemberList, when -CA and -Certificate get in.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("PeerUrls")]
    public string[]? PeerUrl { get; set; }

    /// <summary>Data dirs on this machine whose modes are checked.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string[]? DataDir { get; set; }

    /// <summary>Certificate files on this machine whose keys (NAME-key.pem) and neighbours are checked. The -Certificate of a piped member counts too.</summary>
    [Parameter]
    public string[]? CertificateFile { get; set; }

    /// <summary>Report served certificates that expire within this time ('30d', '720h' quoted, or a TimeSpan; a number alone is refused). Default 30 days.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan ExpiringWithin { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Only findings at least this severe.</summary>
    [Parameter]
    public EtcdSeverity MinimumSeverity { get; set; } = EtcdSeverity.Info;

    /// <summary>One object with the counts per severity, NotChecked (checks that could not be made) and Passed (nothing High or Critical, and every check made).</summary>
    [Parameter]
    public SwitchParameter Summary { get; set; }

    /// <summary>
    /// $true when nothing High or Critical was found and every check could be made, else $false: for CI. A target that
    /// did not answer, a port that never completed a TLS handshake, or auth that could not be checked is not a pass.
    /// </summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void Collect()
    {
        if (PeerUrl is not null) _peers.AddRange(PeerUrl.SelectMany(e => e.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
        if (DataDir is not null) _dataDirs.AddRange(DataDir.Select(ResolveLocalPath));
        if (CertificateFile is not null) _certificateFiles.AddRange(CertificateFile.Select(ResolveLocalPath));
        if (Certificate is not null) _certificateFiles.Add(Certificate.Path);
    }

    protected override void End()
    {
        var request = new AuditRequest
        {
            ClientUrls = Endpoints(allowPlainHttp: true),
            PeerUrls = _peers.Distinct(StringComparer.OrdinalIgnoreCase).Select(p => new Uri(p.Contains("://", StringComparison.Ordinal) ? p : "https://" + p)).ToList(),
            Identity = OptionalIdentity(),
            DataDirs = _dataDirs.Distinct().ToList(),
            CertificateFiles = _certificateFiles.Distinct().ToList(),
            ExpiringWithin = ExpiringWithin,
            Timeout = Timeout,
        };
        AuditResult result = SecurityAudit.RunAsync(request, CancelToken).GetAwaiter().GetResult();
        IReadOnlyList<Finding> findings = result.Findings;
        bool passed = result.Passed;
        if (Quiet)
        {
            WriteObject(passed);
            return;
        }

        if (Summary)
        {
            WriteObject(new EtcdSecuritySummary
            {
                Critical = findings.Count(f => f.Severity == Severity.Critical),
                High = findings.Count(f => f.Severity == Severity.High),
                Medium = findings.Count(f => f.Severity == Severity.Medium),
                Low = findings.Count(f => f.Severity == Severity.Low),
                Info = findings.Count(f => f.Severity == Severity.Info),
                NotChecked = result.NotChecked.Count,
                Passed = passed,
                Targets = result.Targets.ToArray(),
            });
            return;
        }

        foreach (Finding f in findings.Where(f => (int)f.Severity >= (int)MinimumSeverity))
        {
            WriteObject(new EtcdSecurityFinding { Id = f.Id, Severity = (EtcdSeverity)(int)f.Severity, Target = f.Target, Evidence = f.Evidence, Remedy = f.Remedy });
        }
    }
}
