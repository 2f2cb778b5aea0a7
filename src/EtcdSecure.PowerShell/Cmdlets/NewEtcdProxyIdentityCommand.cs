using System;
using System.IO;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Auth;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Gives a proxy an upstream identity for etcd users: for each -User, a client certificate whose common name is that
/// user, issued from the cluster's client CA into the proxy's identity folder (USER.pem, USER-key.pem mode 0600;
/// the folder 0700). A proxy started with -IdentityPath on that folder then opens the member connections of a client
/// whose certificate's common name is USER with USER's identity, so etcd applies USER's roles, not the proxy's; it
/// picks new identities up within a second. Whoever can read the folder can act as each user in it: keep it on the
/// proxy's host, readable by the proxy's account alone. An identity the folder already holds for a user is kept
/// unless -Force replaces it.
/// </summary>
/// <example>
/// <code>
/// New-EtcdProxyIdentity -Path ./proxy-identities -User root, app, reporting -CACertPath ./wfb/tls/assets/ca.pem
/// Start-EtcdProxy -IdentityPath ./proxy-identities -Endpoint $c.Endpoints -Certificate ./proxy.pem -CA ./edge-ca.pem -UpstreamCA $c.CAPath -UpstreamCertificate $c.ClientCertificatePath
/// </code>
/// Issues identities for three etcd users and starts a proxy that lets each client reach etcd as itself.
/// </example>
/// <example>
/// <code>
/// 'billing', 'audit' | New-EtcdProxyIdentity -Path ./proxy-identities -CA (Get-EtcdCluster prod).CAPath
/// </code>
/// Adds identities for two users created since; a running proxy on that folder uses them within a second.
/// </example>
[Cmdlet(VerbsCommon.New, "EtcdProxyIdentity", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(EtcdCertificate))]
public sealed class NewEtcdProxyIdentityCommand : CertificateAuthorityCmdlet
{
    /// <summary>The proxy's identity folder (created 0700 when missing).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    public string Path { get; set; } = "";

    /// <summary>The etcd users to give an identity: each becomes the common name of its certificate.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Users", "Name")]
    [ValidateNotNullOrEmpty]
    public string[] User { get; set; } = Array.Empty<string>();

    /// <summary>How long the identities are valid ('8760h', '365d' or a TimeSpan). Default one year, as the Client profile issues.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? Validity { get; set; }

    /// <summary>Replace an identity the folder already holds for a user (a file of that name that is not such an identity is never replaced).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private IssuerCredentials? _issuer;

    protected override void Process()
    {
        string folder = ResolveLocalPath(Path);
        _issuer ??= LoadIssuer(CAPathFor(null, null));
        foreach (string user in User)
        {
            if (!ShouldProcess(System.IO.Path.Combine(folder, user + ".pem"), $"Issue the upstream identity of etcd user '{user}' from {_issuer.CertificatePath}")) continue;
            var (files, issued) = ProxyIdentities.Issue(folder, user, _issuer, Validity, Force, DateTime.UtcNow);
            if (!issued) WriteVerbose($"'{files.Certificate}' is user '{user}''s identity already; kept (-Force replaces it).");
            var cert = CertificateFile.LoadFirst(files.Certificate);
            WriteObject(EtcdCertificate.From(CertificateDetails.From(cert), files.Certificate, files.Key, File.Exists(files.Csr) ? files.Csr : null));
        }
    }
}
