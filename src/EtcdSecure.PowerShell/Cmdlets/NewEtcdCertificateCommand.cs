using System;
using System.IO;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Issues a certificate from a profile (Server, Client, Peer, or a profile of a cfssl ca-config.json), as
/// cfssl gencert -ca ca.pem -ca-key ca-key.pem -config ca-config.json -profile P | cfssljson -bare NAME does.
/// </summary>
/// <example>
/// <code>
/// $ca = New-EtcdCA -Path ./tls
/// $ca | New-EtcdCertificate -Profile Peer -CommonName etcd-node -Hosts localhost, 127.0.0.1
/// </code>
/// Issues etcd-node.pem, etcd-node-key.pem and etcd-node.csr beside the CA, for server and client auth, with a DNS SAN and an IP SAN.
/// </example>
/// <example>
/// <code>
/// New-EtcdCertificate -Profile etcd-proxy -Config ./ca-config.json -CACertPath ./ca.pem -CAKeyPath ./ca-key.pem -CsrJson ./proxy-csr.json
/// </code>
/// Uses a profile of a cfssl ca-config.json and a cfssl CSR JSON, as cfssl gencert -profile does.
/// </example>
/// <example>
/// <code>
/// $ca | New-EtcdCertificate -Profile Client -CommonName root
/// </code>
/// A client certificate whose CN is the etcd user name root.
/// </example>
[Cmdlet(VerbsCommon.New, "EtcdCertificate", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = FromCAObject)]
[OutputType(typeof(EtcdCertificate))]
public sealed class NewEtcdCertificateCommand : IssuingCmdlet
{
    private const string FromCAObject = "CA";
    private const string FromCAPath = "CAPath";

    /// <summary>Server, Client, Peer, or a profile of the -Config file (such as etcd-node). An unknown profile is an error.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ArgumentCompleter(typeof(ProfileCompleter))]
    [ValidateNotNullOrEmpty]
    public string Profile { get; set; } = "";

    /// <summary>The issuing CA, usually piped from New-EtcdCA or Get-EtcdCertificate.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = FromCAObject)]
    [ValidateNotNull]
    public EtcdCertificate? CA { get; set; }

    /// <summary>The CA certificate, when the CA is given as files rather than an object.</summary>
    [Parameter(Mandatory = true, ParameterSetName = FromCAPath)]
    [Alias("CACert")]
    [ValidateNotNullOrEmpty]
    public string? CACertPath { get; set; }

    /// <summary>The CA key, when the CA is given as files rather than an object.</summary>
    [Parameter(Mandatory = true, ParameterSetName = FromCAPath)]
    [Alias("CAKey")]
    [ValidateNotNullOrEmpty]
    public string? CAKeyPath { get; set; }

    /// <summary>A cfssl signing config (ca-config.json) whose profiles can be named in -Profile.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Config { get; set; }

    /// <summary>The folder the files go into (created when missing). Default: the CA's folder.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    protected override void Process()
    {
        SigningConfig config = Config is null ? SigningConfig.BuiltInOnly : SigningConfig.Load(ResolveLocalPath(Config));
        CertificateProfile profile = config.Resolve(Profile);
        CertificateRequestSpec request = BuildRequest();
        SubjectName subject = request.Subject($"A {profile.Name} certificate");
        KeySpec key = request.Key;
        var hosts = Engine.Pki.Hosts.Parse(request.Hosts);

        (string caCert, string caKey) = IssuerPaths();
        string directory = Path is null ? System.IO.Path.GetDirectoryName(caCert)! : ResolveLocalPath(Path);
        BareFileNames files = BareFileNames.For(directory, Name ?? subject.CommonName);
        PemFileSet.EnsureWritable(files.All, Force.IsPresent);
        DateTime now = DateTime.UtcNow;
        IssuerCredentials issuer = IssuerCredentials.Load(caCert, caKey, now);
        TimeSpan validity = Validity ?? profile.Expiry;
        if (!ShouldProcess(Describe(files), $"Issue {profile.Name} certificate \"{subject}\" ({key}, hosts: {string.Join(", ", hosts)}, valid {validity.TotalHours:0}h)")) return;

        IssuedCertificate issued = CertificateIssuer.Issue(subject, hosts, key, profile, Validity, issuer, now);
        EtcdCertificate saved = Save(issued, files, profile.Name);
        // The CA's ledger is what Get-EtcdIssuedCertificate, renewal and revocation by serial read.
        CertificateLedger.Record(caCert, issued.Certificate, files.Certificate, profile.Name, now);
        WriteObject(saved);
    }

    private (string Cert, string Key) IssuerPaths()
    {
        if (ParameterSetName == FromCAPath) return (ResolveLocalPath(CACertPath!), ResolveLocalPath(CAKeyPath!));
        string? keyPath = CA!.KeyPath;
        if (string.IsNullOrEmpty(keyPath) || !File.Exists(keyPath))
        {
            throw new EtcdSecureException("CAKeyNotFound", ErrorKind.ObjectNotFound,
                $"The CA '{CA.Path}' has no private key beside it ({(keyPath ?? CA.Name + "-key.pem")}); give -CACertPath and -CAKeyPath.", CA.Path);
        }

        return (CA.Path, keyPath);
    }
}
