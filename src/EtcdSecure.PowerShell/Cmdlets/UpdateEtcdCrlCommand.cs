using System;
using System.Management.Automation;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Writes a CA's CRL (NAME-crl.pem beside NAME.pem) anew from its ledger, with a new nextUpdate: run it before the
/// CRL's NextUpdate, from a timer or CI. A CA that has revoked nothing gets an empty CRL, which members and the
/// proxy can be started with from day one, so that a later revocation needs no restart.
/// </summary>
/// <example>
/// <code>
/// Get-EtcdCertificate ./tls/ca.pem | Update-EtcdCrl -Validity 720h
/// </code>
/// Publishes ./tls/ca-crl.pem, current for 30 days.
/// </example>
/// <example>
/// <code>
/// Update-EtcdCrl -CACertPath ./tls/ca.pem; Start-EtcdMember n1 -Certificate $node -CA ./tls/ca.pem -CrlPath ./tls/ca-crl.pem
/// </code>
/// Starts a member with an empty CRL, so that Revoke-EtcdCertificate later takes effect at once, without a restart.
/// </example>
[Cmdlet(VerbsData.Update, "EtcdCrl", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(EtcdCrl))]
public sealed class UpdateEtcdCrlCommand : CertificateAuthorityCmdlet
{
    /// <summary>The CA whose CRL is written (the same as -CA, from the pipeline).</summary>
    [Parameter(ValueFromPipeline = true, Position = 0)]
    [ValidateNotNull]
    public EtcdCertificate? InputObject { get; set; }

    /// <summary>How long the CRL is current (its nextUpdate). Default 30 days.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? Validity { get; set; }

    protected override void Process()
    {
        if (InputObject is not null) CA ??= InputObject;
        string caPath = CAPathFor(null, null);
        IssuerCredentials issuer = LoadIssuer(caPath);
        if (!ShouldProcess(CertificateLedger.CrlPathOf(caPath), "Write the CRL")) return;
        WriteObject(EtcdCrl.From(CertificateLedger.WriteCrl(issuer, DateTime.UtcNow, Validity ?? CertificateLedger.DefaultCrlValidity)));
    }
}
