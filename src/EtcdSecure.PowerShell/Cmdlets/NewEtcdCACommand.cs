using System;
using System.Management.Automation;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Creates a self-signed certificate authority, as cfssl gencert -initca | cfssljson -bare ca does. New-EtcdCertificate
/// issues from it; its ledger and CRL (Get-EtcdIssuedCertificate, Revoke-EtcdCertificate) start empty.
/// </summary>
/// <example>
/// <code>
/// $ca = New-EtcdCA -Path ./tls
/// </code>
/// Makes ca.pem, ca-key.pem (mode 0600) and ca.csr in ./tls: ECDSA P-256, CN etcd-ca, valid 87600h (ten years, as kubeadm's CAs; cfssl gencert -initca makes 43800h).
/// </example>
/// <example>
/// <code>
/// New-EtcdCA -Path ./pki -CommonName Etcd -Organization Infra -KeyAlgorithm RSA -KeySize 2048 -Validity '8760h'
/// </code>
/// Reference workflow A's CA: RSA 2048 with subject names, valid one year. Quote durations: PowerShell reads 1s or 30d as numbers.
/// </example>
[Cmdlet(VerbsCommon.New, "EtcdCA", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(EtcdCertificate))]
public sealed class NewEtcdCACommand : IssuingCmdlet
{
    /// <summary>The folder the files go into (created when missing). Default: the current location.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    /// <summary>Maximum number of intermediate CAs below this one; omitted means no limit, as cfssl's default.</summary>
    [Parameter]
    [ValidateRange(0, 16)]
    public int? PathLength { get; set; }

    protected override void Process()
    {
        CertificateRequestSpec request = BuildRequest();
        // A CA needs no particular name; workflow B's "etcd-ca" is a sensible default.
        SubjectName subject = (request with { CommonName = request.CommonName ?? "etcd-ca" }).Subject("The CA");
        KeySpec key = request.Key;
        TimeSpan validity = Validity ?? request.CaExpiry ?? SigningConfig.CAExpiry;
        var hosts = Engine.Pki.Hosts.Parse(request.Hosts);
        BareFileNames files = BareFileNames.For(ResolveLocalPath(Path ?? "."), Name ?? "ca");
        PemFileSet.EnsureWritable(files.All, Force.IsPresent);
        if (!ShouldProcess(Describe(files), $"Create CA \"{subject}\" ({key}, valid {validity.TotalHours:0}h)")) return;

        IssuedCertificate issued = CertificateIssuer.CreateCertificateAuthority(subject, hosts, key, validity, PathLength ?? request.CaPathLength, DateTime.UtcNow);
        EtcdCertificate saved = Save(issued, files, profile: "CA");
        // The ledger and CRL of a CA that -Force replaced speak for a key that is gone; the new CA starts its own.
        foreach (string stale in CertificateLedger.ForgetReplaced(files.Certificate)) WriteVerbose($"Removed {stale}, which belonged to the CA this one replaced.");

        WriteObject(saved);
    }
}
