using System;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Lists what a CA has issued, from its ledger (NAME-index.json beside NAME.pem): serial, subject, SANs, profile,
/// expiry, where the file is, and whether it was revoked or renewed. Certificates issued by this module are
/// recorded; ones made elsewhere appear once revoked.
/// </summary>
/// <example>
/// <code>
/// Get-EtcdIssuedCertificate ./tls/ca.pem | Where-Object Status -eq Valid | Sort-Object NotAfter
/// </code>
/// The CA's certificates still in use, the soonest to expire first.
/// </example>
/// <example>
/// <code>
/// Get-EtcdCluster prod | ForEach-Object CAPath | Get-EtcdIssuedCertificate | Where-Object Status -eq Revoked
/// </code>
/// What has been revoked in the client CA of the cluster prod, with when and why.
/// </example>
[Cmdlet(VerbsCommon.Get, "EtcdIssuedCertificate")]
[OutputType(typeof(EtcdIssuedCertificate))]
public sealed class GetEtcdIssuedCertificateCommand : EtcdCmdlet
{
    /// <summary>The CA certificate whose ledger is read.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("CA", "CACertPath")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    protected override void Process()
    {
        string ca = ResolveLocalPath(Path);
        if (!System.IO.File.Exists(ca))
        {
            throw new EtcdSecureException("FileNotFound", ErrorKind.ObjectNotFound, $"There is no CA certificate '{ca}'.", ca);
        }

        string crl = CertificateLedger.CrlPathOf(ca);
        foreach (LedgerEntry e in CertificateLedger.Read(ca).Certificates.OrderBy(e => e.IssuedAt))
        {
            WriteObject(EtcdIssuedCertificate.From(e, ca, System.IO.File.Exists(crl) ? crl : null));
        }
    }
}
