using System;
using System.Management.Automation;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Renews certificates in place, as kubeadm certs renew does: the same subject, SANs, usages and CA, a new key
/// (unless -ReuseKey) and a new expiry. The files are replaced by rename and the old ones kept under
/// previous/STAMP-NAME/ beside them. etcd (3.2 and later) and Start-EtcdProxy read their certificate files on
/// every new handshake, so running members and proxies use the new certificate without a restart, and open
/// connections stay up.
/// </summary>
/// <example>
/// <code>
/// Update-EtcdCertificate ./tls/etcd-1.pem
/// </code>
/// Renews etcd-1.pem and etcd-1-key.pem from the CA beside them, valid as long as the old one was.
/// </example>
/// <example>
/// <code>
/// Test-EtcdCertificate ./tls -ExpiringWithin '30d' | Where-Object { -not $_.Valid } | Update-EtcdCertificate -Validity 8760h
/// </code>
/// Renews, for a year, every certificate in ./tls that expires within 30 days.
/// </example>
[Cmdlet(VerbsData.Update, "EtcdCertificate", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(EtcdCertificate))]
public sealed class UpdateEtcdCertificateCommand : CertificateAuthorityCmdlet
{
    /// <summary>The certificate files to renew (their keys are NAME-key.pem beside them).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>How long the renewed certificate is valid, as a Go duration ("8760h") or a TimeSpan. Default: as long as the old one was issued for.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? Validity { get; set; }

    /// <summary>Keep the existing private key instead of making a new one. A new key is the default: a renewal then also ends the use of a key that may have leaked.</summary>
    [Parameter]
    public SwitchParameter ReuseKey { get; set; }

    /// <summary>
    /// Reissue from -CA even though another CA issued the current certificate: the step of a CA rotation in which
    /// the members' and clients' certificates move to the new CA (which everything must trust by then).
    /// </summary>
    [Parameter]
    public SwitchParameter ChangeCA { get; set; }

    protected override void Process()
    {
        foreach (string p in Path)
        {
            string path = ResolveLocalPath(p);
            var old = CertificateFile.LoadFirst(path);
            if (ChangeCA && CA is null && CACertPath is null)
            {
                throw new Engine.EtcdSecureException("CANotFound", Engine.ErrorKind.InvalidArgument, "-ChangeCA needs the new CA: give -CA or -CACertPath.", "ChangeCA");
            }

            string caPath = CAPathFor(path, old);
            IssuerCredentials issuer = LoadIssuer(caPath);
            TimeSpan validity = Validity ?? CertificateRenewal.LifetimeOf(old);
            if (!ShouldProcess(path, $"Renew \"{old.Subject}\" from {caPath} ({(ReuseKey ? "same key" : "new key")}, valid {validity.TotalHours:0}h); the old files go to previous/")) continue;

            RenewedCertificate renewed = CertificateRenewal.Renew(path, issuer, validity, ReuseKey, DateTime.UtcNow, ChangeCA);
            foreach (string w in renewed.Issued.Warnings) WriteWarning(w);
            WriteVerbose($"Renewed {path} (serial {renewed.PreviousSerial} -> {renewed.Issued.Certificate.SerialNumber}); the old files are in {renewed.PreviousFolder}.");
            WriteObject(EtcdCertificate.From(CertificateDetails.From(renewed.Issued.Certificate), renewed.Files.Certificate, renewed.Files.Key,
                System.IO.File.Exists(renewed.Files.Csr) ? renewed.Files.Csr : null, renewed.Profile));
        }
    }
}
