using System;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Checks a certificate (and its key) against a CA, a role and the hosts it must serve, and says in plain
/// sentences everything that would make etcd or its clients reject it.
/// </summary>
/// <example>
/// <code>
/// Test-EtcdCertificate ./tls/etcd-node.pem -CAPath ./tls/ca.pem -Role Peer -Hosts localhost, 127.0.0.1
/// </code>
/// Says in plain sentences what would make etcd refuse the certificate: wrong usages, missing SANs, expiry, a key that does not match, another CA.
/// </example>
/// <example>
/// <code>
/// if (-not (Test-EtcdCertificate ./tls/root.pem -CAPath ./tls/ca.pem -Role Client -Quiet)) { throw 'bad client certificate' }
/// </code>
/// Returns only $true or $false, for scripts.
/// </example>
[Cmdlet(VerbsDiagnostic.Test, "EtcdCertificate")]
[OutputType(typeof(EtcdCertificateTestResult), typeof(bool))]
public sealed class TestEtcdCertificateCommand : EtcdCmdlet
{
    /// <summary>The certificate (PEM) to check; its key is NAME-key.pem beside it when present.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>The private key; default: NAME-key.pem beside NAME.pem when it exists.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? KeyPath { get; set; }

    /// <summary>The CA the certificate must chain to.</summary>
    [Parameter]
    [Alias("CACert")]
    public string? CAPath { get; set; }

    /// <summary>The CA key, to check that it belongs to the CA certificate.</summary>
    [Parameter]
    [Alias("CAKey")]
    public string? CAKeyPath { get; set; }

    /// <summary>What the certificate is for (Server, Client, Peer, CA): decides which usages it needs.</summary>
    [Parameter]
    [ValidateSet("Any", "Server", "Client", "Peer", "CA")]
    public string Role { get; set; } = "Any";

    /// <summary>Host names or IP addresses clients will use to reach the holder of this certificate.</summary>
    [Parameter]
    [Alias("Hostname")]
    public string[]? Hosts { get; set; }

    /// <summary>The moment to check validity at; default now.</summary>
    [Parameter]
    public DateTime? At { get; set; }

    /// <summary>Return only $true or $false.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void Process()
    {
        string path = ResolveLocalPath(Path);
        string? keyPath = KeyPath is { Length: > 0 } ? ResolveLocalPath(KeyPath) : BareFileNames.Beside(path, "-key.pem");
        var hosts = Engine.Pki.Hosts.Parse(Hosts);
        var (details, reasons) = CertificateValidator.Test(new CertificateCheck(
            path,
            keyPath,
            CAPath is null ? null : ResolveLocalPath(CAPath),
            CAKeyPath is null ? null : ResolveLocalPath(CAKeyPath),
            Enum.Parse<CertificateRole>(Role, ignoreCase: true),
            hosts,
            At?.ToUniversalTime()));
        foreach (string reason in reasons) WriteVerbose(reason);
        if (Quiet)
        {
            WriteObject(reasons.Count == 0);
            return;
        }

        WriteObject(new EtcdCertificateTestResult
        {
            Path = path,
            CommonName = details.CommonName,
            Role = Role,
            Hosts = hosts.Select(h => h.Value).ToArray(),
            NotAfter = details.NotAfter,
            Reasons = reasons.ToArray(),
        });
    }
}
