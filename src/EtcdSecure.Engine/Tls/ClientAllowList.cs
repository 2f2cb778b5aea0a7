using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace EtcdSecure.Engine.Tls;

/// <summary>
/// Which certificates of the client CA may connect: a certificate is let in when a pattern matches its subject
/// common name or one of its subject alternative names (DNS, IP, URI, e-mail). Patterns are wildcards as
/// PowerShell's -like knows them (* and ?), compared without regard to case.
/// </summary>
public sealed class ClientAllowList
{
    private readonly (string Pattern, Regex Regex)[] _patterns;

    public ClientAllowList(IEnumerable<string> patterns)
    {
        _patterns = patterns.Where(p => !string.IsNullOrWhiteSpace(p)).Select(p => (p, Glob(p.Trim()))).ToArray();
        if (_patterns.Length == 0) throw new EtcdSecureException("InvalidAllowedClient", ErrorKind.InvalidArgument, "Give at least one client name pattern.", "-AllowedClient");
    }

    public IReadOnlyList<string> Patterns => _patterns.Select(p => p.Pattern).ToArray();

    /// <summary>The first name of the certificate that a pattern matches, or null.</summary>
    public string? Match(X509Certificate2 certificate) => NamesOf(certificate).FirstOrDefault(n => _patterns.Any(p => p.Regex.IsMatch(n)));

    /// <summary>The common name, then every subject alternative name as text.</summary>
    public static IEnumerable<string> NamesOf(X509Certificate2 certificate)
    {
        Pki.CertificateDetails d = Pki.CertificateDetails.From(certificate);
        if (!string.IsNullOrEmpty(d.CommonName)) yield return d.CommonName;
        foreach (string dns in d.DnsNames) yield return dns;
        foreach (System.Net.IPAddress ip in d.IPAddresses) yield return ip.ToString();
        // "uri:spiffe://..." and "email:..." as shown by Get-EtcdCertificate; a pattern names the value itself.
        foreach (string other in d.OtherNames) yield return other[(other.IndexOf(':') + 1)..];
    }

    private static Regex Glob(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline, TimeSpan.FromMilliseconds(100));
}
