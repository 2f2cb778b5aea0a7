using System;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Restarts members this module started, one after the other, each with its data so it rejoins its cluster, and
/// optionally with other trust files: -CA, -PeerCA (a bundle of old and new CA during a rotation), -CrlPath,
/// -PeerCrlPath. etcd reads its trusted CA files only when it starts (certificates and CRLs it reads on every
/// handshake), so this is the step of a CA rotation that needs a restart. The new files are checked before a member
/// is stopped, and each member answers again before the next one is stopped, so a cluster of three or more keeps
/// its quorum throughout. Connections to the member being restarted are cut; etcd clients and Start-EtcdProxy
/// reconnect to another member.
/// </summary>
/// <example>
/// <code>
/// Get-Content ./tls/ca.pem, ./tls/ca-2.pem | Set-Content ./tls/trust.pem
/// Restart-EtcdMember prod-* -CA ./tls/trust.pem
/// </code>
/// Makes every member of prod trust the old and the new client CA, one member at a time.
/// </example>
/// <example>
/// <code>
/// Restart-EtcdMember n1 -CrlPath ./tls/ca-2-crl.pem
/// </code>
/// Restarts n1 with the CRL of the new CA once the old CA is no longer trusted.
/// </example>
[Cmdlet(VerbsLifecycle.Restart, "EtcdMember", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(EtcdMember))]
public sealed class RestartEtcdMemberCommand : EtcdCmdlet
{
    /// <summary>Names of members started by this module, in any session; wildcards allowed.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>The CA (or bundle of CAs) client certificates must chain to from now on. Default: as before.</summary>
    [Parameter]
    [CertificateTransformation]
    public EtcdCertificate? CA { get; set; }

    /// <summary>The CA (or bundle) peer certificates must chain to from now on. Default: as before.</summary>
    [Parameter]
    [CertificateTransformation]
    public EtcdCertificate? PeerCA { get; set; }

    /// <summary>The client CRL from now on (--client-crl-file). Default: as before.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CrlPath { get; set; }

    /// <summary>The peer CRL from now on (--peer-crl-file). Default: as before.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? PeerCrlPath { get; set; }

    /// <summary>How long a member may take to exit after SIGTERM before it is killed ('10s', '1m' or a TimeSpan).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a member may take to answer again ('30s', '2m' or a TimeSpan).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    protected override void Process()
    {
        var targets = MatchByName(Name, () => MemberHost.All, m => m.Spec.Name,
            n => new EtcdSecureException("MemberNotFound", ErrorKind.ObjectNotFound, $"No member named '{n}' was started by this module (state store: {Engine.State.StateStore.Current.Root}).", n)).Distinct().ToList();
        foreach (RunningMember m in targets)
        {
            MemberSpec spec = m.Spec with
            {
                TrustedCAPath = CA?.Path ?? m.Spec.TrustedCAPath,
                PeerTrustedCAPath = PeerCA?.Path ?? m.Spec.PeerTrustedCAPath,
                ClientCrlPath = CrlPath is null ? m.Spec.ClientCrlPath : ResolveLocalPath(CrlPath),
                PeerCrlPath = PeerCrlPath is null ? m.Spec.PeerCrlPath : ResolveLocalPath(PeerCrlPath),
            };
            string change = spec == m.Spec ? "Restart" : $"Restart trusting {spec.TrustedCAPath} (clients) and {spec.PeerTrustedCAPath} (peers)";
            if (!ShouldProcess($"member {m.Spec.Name} (process {m.ProcessId})", change)) continue;
            WriteVerbose($"Restarting {m.Spec.Name}: SIGTERM, then etcd again with its data.");
            WarnStrayEnvironment();
            RunningMember started = MemberHost.RestartAsync(m, spec, Timeout, StartTimeout, CancelToken).GetAwaiter().GetResult();
            WriteObject(EtcdMember.From(started));
        }
    }
}
