using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.IO;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
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
/// <example>
/// <code>
/// if (-not (Test-EtcdCertificate ./tls -Recurse -ExpiringWithin '30d' -Quiet)) { throw 'a certificate expires within 30 days' }
/// </code>
/// The expiry check for CI: every certificate under ./tls (CAs included, keys and CRLs passed over) must be valid for 30 more days.
/// </example>
[Cmdlet(VerbsDiagnostic.Test, "EtcdCertificate")]
[OutputType(typeof(EtcdCertificateTestResult), typeof(bool))]
public sealed class TestEtcdCertificateCommand : EtcdCmdlet
{
    /// <summary>The certificates (PEM) to check, or folders of them; wildcards allowed. A certificate's key is NAME-key.pem beside it when present.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>With a folder in -Path, check the certificates in its subfolders too (previous/ ones, kept by Update-EtcdCertificate, are passed over).</summary>
    [Parameter]
    public SwitchParameter Recurse { get; set; }

    /// <summary>Also fail a certificate that expires within this time ("720h", "30d" quoted, or a TimeSpan; a number alone is refused, as it has no unit): the check to run from CI before expiry bites.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? ExpiringWithin { get; set; }

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

    /// <summary>Return only $true or $false: one value for everything checked, $true when every certificate passes.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    private bool _allValid = true;

    protected override void Process()
    {
        foreach (string p in Path)
        {
            foreach ((string file, bool listed) in CertificateFiles(p))
            {
                if (!listed && KeyPath is { Length: > 0 })
                {
                    throw new EtcdSecureException("KeyPathWithMany", ErrorKind.InvalidArgument, "-KeyPath names the key of one certificate; with a folder or wildcard, each key is NAME-key.pem beside its certificate.", KeyPath);
                }

                Test(file, listed);
            }
        }
    }

    protected override void End()
    {
        if (Quiet) WriteObject(_allValid);
    }

    private void Test(string path, bool single)
    {
        string? keyPath = single && KeyPath is { Length: > 0 } ? ResolveLocalPath(KeyPath) : BareFileNames.Beside(path, "-key.pem");
        var hosts = Engine.Pki.Hosts.Parse(Hosts);
        DateTime at = At?.ToUniversalTime() ?? DateTime.UtcNow;
        var (details, found) = CertificateValidator.Test(new CertificateCheck(
            path,
            keyPath,
            CAPath is null ? null : ResolveLocalPath(CAPath),
            CAKeyPath is null ? null : ResolveLocalPath(CAKeyPath),
            Enum.Parse<CertificateRole>(Role, ignoreCase: true),
            hosts,
            At?.ToUniversalTime()));
        var reasons = found.ToList();
        if (ExpiringWithin is TimeSpan window && details.NotAfter > at && details.NotAfter <= at + window)
        {
            reasons.Add($"It expires on {details.NotAfter:u}, in {(details.NotAfter - at).TotalDays:0.#} days: within the {window.TotalDays:0.#}-day window. Renew it with Update-EtcdCertificate.");
        }

        foreach (string reason in reasons) WriteVerbose($"{path}: {reason}");
        _allValid &= reasons.Count == 0;
        if (Quiet) return;

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

    /// <summary>
    /// The files a -Path stands for. A file named on its own is checked whatever it holds (so a wrong file gets its
    /// error); a folder or a wildcard passes over keys, CRLs, CSRs and other files that hold no certificate.
    /// </summary>
    private IEnumerable<(string File, bool Listed)> CertificateFiles(string p)
    {
        string literal = ResolveLocalPath(p);
        if (Directory.Exists(literal))
        {
            var option = new EnumerationOptions { RecurseSubdirectories = Recurse, IgnoreInaccessible = true, MatchCasing = MatchCasing.CaseInsensitive };
            bool any = false;
            foreach (string f in Directory.EnumerateFiles(literal, "*.pem", option).Order(StringComparer.Ordinal))
            {
                if (System.IO.Path.GetRelativePath(literal, f).Split(System.IO.Path.DirectorySeparatorChar).Contains("previous")) continue;
                if (!CertificateFile.HoldsCertificate(f)) continue;
                any = true;
                yield return (f, false);
            }

            if (!any)
            {
                // A check over nothing must not pass quietly: a CI job pointed at the wrong folder would stay green.
                _allValid = false;
                WriteError(Errors.ToRecord(new EtcdSecureException("NoCertificateFound", ErrorKind.ObjectNotFound,
                    $"There is no certificate in '{literal}'{(Recurse ? " or below it" : "")}.", literal)));
            }

            yield break;
        }

        if (!WildcardPattern.ContainsWildcardCharacters(p))
        {
            yield return (literal, true);
            yield break;
        }

        Collection<string> files;
        try
        {
            files = GetResolvedProviderPathFromPSPath(p, out _);
        }
        catch (ItemNotFoundException ex)
        {
            throw new EtcdSecureException("FileNotFound", ErrorKind.ObjectNotFound, ex.Message, p, ex);
        }

        foreach (string f in files.Order(StringComparer.Ordinal))
        {
            if (File.Exists(f) && CertificateFile.HoldsCertificate(f)) yield return (f, false);
        }
    }
}
