using System;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Revokes certificates: their CA's ledger records it and the CA's CRL (NAME-crl.pem beside NAME.pem) is written
/// anew. Members started with -CrlPath and Start-EtcdProxy -CrlPath read the new CRL on their next handshake, so a
/// revoked client is refused from then on. Connections already open stay open until they end.
/// </summary>
/// <example>
/// <code>
/// Revoke-EtcdCertificate ./tls/alice.pem -Reason KeyCompromise
/// </code>
/// Revokes alice.pem with the CA beside it and rewrites ./tls/ca-crl.pem.
/// </example>
/// <example>
/// <code>
/// Revoke-EtcdCertificate -SerialNumber 4F1A... -CACertPath ./tls/ca.pem
/// </code>
/// Revokes by serial number, for a certificate whose file is gone (the ledger knows it).
/// </example>
[Cmdlet(VerbsSecurity.Revoke, "EtcdCertificate", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = ByPath)]
[OutputType(typeof(EtcdIssuedCertificate))]
public sealed class RevokeEtcdCertificateCommand : CertificateAuthorityCmdlet
{
    private const string ByPath = "Path";
    private const string BySerial = "SerialNumber";

    /// <summary>The certificate files to revoke.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = ByPath)]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>Serial numbers (hexadecimal, as Get-EtcdCertificate shows them) of certificates the CA's ledger records. Needs -CA or -CACertPath.</summary>
    [Parameter(Mandatory = true, ParameterSetName = BySerial)]
    [ValidateNotNullOrEmpty]
    public string[] SerialNumber { get; set; } = Array.Empty<string>();

    /// <summary>The RFC 5280 reason recorded in the CRL.</summary>
    [Parameter]
    public EtcdRevocationReason Reason { get; set; } = EtcdRevocationReason.Unspecified;

    /// <summary>How long the new CRL is current (its nextUpdate). Default 30 days; Update-EtcdCrl writes a new one.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? CrlValidity { get; set; }

    protected override void Process()
    {
        if (ParameterSetName == BySerial)
        {
            if (CA is null && CACertPath is null)
            {
                throw new EtcdSecureException("CANotFound", ErrorKind.InvalidArgument, "Revoking by serial number needs the CA: give -CA or -CACertPath.", "SerialNumber");
            }

            foreach (string serial in SerialNumber) Revoke(CertificateLedger.NormalizeSerial(serial), null, CAPathFor(null, null), serial);
            return;
        }

        foreach (string p in Path)
        {
            string path = ResolveLocalPath(p);
            X509Certificate2 cert = CertificateFile.LoadFirst(path);
            Revoke(CertificateLedger.NormalizeSerial(cert.SerialNumber), cert, CAPathFor(path, cert), path);
        }
    }

    private void Revoke(string serial, X509Certificate2? cert, string caPath, string target)
    {
        IssuerCredentials issuer = LoadIssuer(caPath);
        if (cert is not null && !CertificateRenewal.IssuedBy(cert, issuer))
        {
            throw new EtcdSecureException("NotIssuedByCA", ErrorKind.InvalidArgument,
                $"'{target}' ({cert!.Subject}) was not issued by the CA '{caPath}': only its own CA can revoke it.", target);
        }

        if (!ShouldProcess(target, $"Revoke serial {serial} ({Reason}) and rewrite {CertificateLedger.CrlPathOf(caPath)}")) return;
        var (entry, crl) = CertificateLedger.Revoke(issuer, serial, cert, (RevocationReason)(int)Reason, DateTime.UtcNow, CrlValidity ?? CertificateLedger.DefaultCrlValidity);
        WriteVerbose($"{crl.Path} now names {crl.RevokedCount} revoked certificate(s); next update due {crl.NextUpdate:u}.");
        WriteObject(EtcdIssuedCertificate.From(entry, caPath, crl.Path));
    }
}
