using System;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Parameters and steps shared by New-EtcdCA and New-EtcdCertificate: the subject (from parameters or a cfssl
/// CSR JSON, parameters winning), the key, the validity, and where the three cfssljson -bare files go.
/// </summary>
public abstract class IssuingCmdlet : EtcdCmdlet
{
    /// <summary>The subject common name (CN). For client certificates it is the etcd user name.</summary>
    [Parameter]
    [Alias("CN")]
    [ValidateNotNullOrEmpty]
    public string? CommonName { get; set; }

    /// <summary>Subject country (C).</summary>
    [Parameter]
    [Alias("C")]
    public string? Country { get; set; }

    /// <summary>Subject state or province (ST).</summary>
    [Parameter]
    [Alias("ST", "Province")]
    public string? State { get; set; }

    /// <summary>Subject locality (L).</summary>
    [Parameter]
    [Alias("L", "City")]
    public string? Locality { get; set; }

    /// <summary>Subject organization (O).</summary>
    [Parameter]
    [Alias("O")]
    public string? Organization { get; set; }

    /// <summary>Subject organizational unit (OU).</summary>
    [Parameter]
    [Alias("OU")]
    public string? OrganizationalUnit { get; set; }

    /// <summary>DNS names and IP addresses for the subject alternative names (cfssl "hosts" / -hostname).</summary>
    [Parameter]
    [Alias("Hostname", "SAN")]
    public string[]? Hosts { get; set; }

    /// <summary>ECDSA (default, as cfssl) or RSA.</summary>
    [Parameter]
    [ValidateSet("ECDSA", "RSA")]
    public string? KeyAlgorithm { get; set; }

    /// <summary>Key size: 256, 384 or 521 for ECDSA (default 256); 2048, 3072 or 4096 for RSA (default 2048).</summary>
    [Parameter]
    [ValidateSet("256", "384", "521", "2048", "3072", "4096")]
    public int? KeySize { get; set; }

    /// <summary>How long the certificate is valid, as a Go duration ("8760h") or a TimeSpan. Quote it. Default: the profile's expiry (one year for the built-in profiles, ten years for a CA; a ca-config.json's own expiry wins).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? Validity { get; set; }

    /// <summary>A cfssl CSR JSON file; parameters given on the command line override its values.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CsrJson { get; set; }

    /// <summary>Base name of the files, as cfssljson -bare NAME: NAME.pem, NAME-key.pem, NAME.csr.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    /// <summary>Replace existing files of the same name.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected CertificateRequestSpec BuildRequest()
    {
        var fromParameters = new CertificateRequestSpec
        {
            CommonName = CommonName,
            Country = Country,
            State = State,
            Locality = Locality,
            Organization = Organization,
            OrganizationalUnit = OrganizationalUnit,
            Hosts = Hosts,
            KeyAlgorithm = KeyAlgorithm is null ? null : Enum.Parse<KeyAlgorithm>(KeyAlgorithm, ignoreCase: true),
            KeySize = KeySize,
        };
        return fromParameters.Over(CsrJson is null ? null : CertificateRequestSpec.LoadCfsslJson(ResolveLocalPath(CsrJson)));
    }

    /// <summary>Writes the three files all-or-nothing and describes the result as the pipeline sees it.</summary>
    protected EtcdCertificate Save(IssuedCertificate issued, BareFileNames files, string? profile)
    {
        PemFileSet.Write(files, issued, Force.IsPresent);
        foreach (string warning in issued.Warnings) WriteWarning(warning);
        WriteVerbose($"Wrote {string.Join(", ", files.All)}.");
        return EtcdCertificate.From(CertificateDetails.From(issued.Certificate), files.Certificate, files.Key, files.Csr, profile);
    }

    protected static string Describe(BareFileNames files) => string.Join(", ", files.All.Select(System.IO.Path.GetFileName)) + " in " + System.IO.Path.GetDirectoryName(files.Certificate);
}
