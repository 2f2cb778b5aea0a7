using System;
using System.IO;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Cmdlets that act as a CA on certificates it issued (renew, revoke, CRLs). The CA is -CA (an object),
/// -CACertPath with -CAKeyPath beside it or given, or, for a certificate, the CA found beside it.
/// </summary>
public abstract class CertificateAuthorityCmdlet : EtcdCmdlet
{
    /// <summary>The CA, from New-EtcdCA or Get-EtcdCertificate, or its path; its key is NAME-key.pem beside it.</summary>
    [Parameter]
    [ValidateNotNull]
    [CertificateTransformation]
    public EtcdCertificate? CA { get; set; }

    /// <summary>The CA certificate file, instead of -CA.</summary>
    [Parameter]
    [Alias("CACert")]
    [ValidateNotNullOrEmpty]
    public string? CACertPath { get; set; }

    /// <summary>The CA key; default NAME-key.pem beside -CACertPath.</summary>
    [Parameter]
    [Alias("CAKey")]
    [ValidateNotNullOrEmpty]
    public string? CAKeyPath { get; set; }

    /// <summary>The CA's certificate path as given, or as found beside <paramref name="certificatePath"/>.</summary>
    protected string CAPathFor(string? certificatePath, X509Certificate2? certificate)
    {
        if (CA is not null) return CA.Path;
        if (CACertPath is not null) return ResolveLocalPath(CACertPath);
        if (certificatePath is not null && certificate is not null && IssuerLocator.FindCA(certificatePath, certificate) is string found)
        {
            WriteVerbose($"Using the CA {found}, found beside {certificatePath}.");
            return found;
        }

        throw new EtcdSecureException("CANotFound", ErrorKind.ObjectNotFound,
            certificatePath is null
                ? "Name the CA with -CA or -CACertPath."
                : $"No CA that issued '{certificatePath}' is beside it (a CA certificate with its NAME-key.pem); name it with -CA or -CACertPath.",
            certificatePath);
    }

    /// <summary>The CA's certificate and key, loaded and checked to belong together.</summary>
    protected IssuerCredentials LoadIssuer(string caPath)
    {
        string? keyPath = CAKeyPath is not null ? ResolveLocalPath(CAKeyPath)
            : CA?.KeyPath is { Length: > 0 } k ? k
            : BareFileNames.Beside(caPath, "-key.pem");
        if (keyPath is null || !File.Exists(keyPath))
        {
            throw new EtcdSecureException("CAKeyNotFound", ErrorKind.ObjectNotFound,
                $"The CA '{caPath}' has no private key beside it; give -CAKeyPath.", caPath);
        }

        return IssuerCredentials.Load(caPath, keyPath, DateTime.UtcNow);
    }
}
