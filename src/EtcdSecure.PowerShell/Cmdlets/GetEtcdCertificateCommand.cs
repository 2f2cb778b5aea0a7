using System.Collections.ObjectModel;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>Reads PEM certificates (made by this module, cfssl or openssl) into objects.</summary>
/// <example>
/// <code>
/// Get-EtcdCertificate ./tls/*.pem
/// </code>
/// Reads every certificate in ./tls (made by EtcdSecure, cfssl or openssl): subject, SANs, usages, expiry, key and CSR paths.
/// </example>
/// <example>
/// <code>
/// Get-EtcdCertificate ./tls/*.pem | Where-Object DaysLeft -lt 30
/// </code>
/// Lists the certificates that expire within 30 days.
/// </example>
[Cmdlet(VerbsCommon.Get, "EtcdCertificate", DefaultParameterSetName = ByPath)]
[OutputType(typeof(EtcdCertificate))]
public sealed class GetEtcdCertificateCommand : EtcdCmdlet
{
    private const string ByPath = "Path";
    private const string ByLiteralPath = "LiteralPath";

    /// <summary>PEM files to read; wildcards allowed, and a wildcard passes over the files that hold no certificate (keys, CRLs, CSRs).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = ByPath)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = System.Array.Empty<string>();

    /// <summary>PEM files to read, taken literally (no wildcards).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = ByLiteralPath)]
    [Alias("PSPath", "FullName")]
    [ValidateNotNullOrEmpty]
    public string[] LiteralPath { get; set; } = System.Array.Empty<string>();

    protected override void Process()
    {
        foreach (string p in ParameterSetName == ByPath ? Path : LiteralPath)
        {
            Collection<string> files;
            if (ParameterSetName == ByPath)
            {
                try
                {
                    files = GetResolvedProviderPathFromPSPath(p, out _);
                }
                catch (ItemNotFoundException ex)
                {
                    WriteError(new ErrorRecord(ex, "FileNotFound", ErrorCategory.ObjectNotFound, p));
                    continue;
                }
            }
            else
            {
                files = new Collection<string> { ResolveLocalPath(p) };
            }

            bool wildcard = ParameterSetName == ByPath && WildcardPattern.ContainsWildcardCharacters(p);
            foreach (string file in files)
            {
                // ./tls/*.pem over a cfssljson folder matches the keys and CRLs too: a wildcard passes over them
                // quietly, while such a file named on its own still gets its error.
                if (wildcard && !CertificateFile.HoldsCertificate(file)) continue;
                try
                {
                    foreach (var cert in CertificateFile.Load(file))
                    {
                        WriteObject(EtcdCertificate.From(CertificateDetails.From(cert), file, BareFileNames.Beside(file, "-key.pem"), BareFileNames.Beside(file, ".csr")));
                    }
                }
                catch (EtcdSecureException ex)
                {
                    // One bad file in a wildcard must not hide the others.
                    WriteError(Errors.ToRecord(ex));
                }
            }
        }
    }
}
