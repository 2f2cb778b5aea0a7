using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace EtcdSecure.Engine.Pki;

public enum HostKind { Dns, IPAddress, Email, Uri }

/// <summary>One entry of cfssl's "hosts": it becomes a DNS, IP, e-mail or URI subject alternative name.</summary>
public sealed record HostName(HostKind Kind, string Value)
{
    public override string ToString() => Value;
}

public static partial class Hosts
{
    /// <summary>Classifies and validates hosts the way cfssl does: an IP literal is an IP SAN, anything else a DNS SAN.</summary>
    public static IReadOnlyList<HostName> Parse(IEnumerable<string>? hosts)
    {
        var result = new List<HostName>();
        foreach (string raw in hosts ?? Array.Empty<string>())
        {
            foreach (string part in raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                HostName host = ParseOne(part);
                if (!result.Contains(host)) result.Add(host);
            }
        }

        return result;
    }

    public static HostName ParseOne(string host)
    {
        string h = host.Trim();
        // "[::1]" is how a URL writes an IPv6 address; the SAN holds the bare address.
        string unbracketed = h.StartsWith('[') && h.EndsWith(']') ? h[1..^1] : h;
        if (IPAddress.TryParse(unbracketed, out IPAddress? ip) && (ip.AddressFamily == AddressFamily.InterNetworkV6 || IPv4Literal().IsMatch(unbracketed)))
        {
            return new HostName(HostKind.IPAddress, ip.ToString());
        }

        if (h.Contains("://", StringComparison.Ordinal) && Uri.TryCreate(h, UriKind.Absolute, out _))
        {
            return new HostName(HostKind.Uri, h);
        }

        if (h.Contains('@'))
        {
            return EmailPattern().IsMatch(h)
                ? new HostName(HostKind.Email, h)
                : throw Invalid(host, "it is not a valid e-mail address");
        }

        string dns = h.TrimEnd('.').ToLowerInvariant();
        if (dns.Length is 0 or > 253)
        {
            throw Invalid(host, "a DNS name is 1 to 253 characters long");
        }

        string[] labels = dns.Split('.');
        // No top-level domain is all digits, so such a name can only be a mistyped address (300.1.1.1, 10.0.0):
        // as a DNS SAN it would match no client, and nothing would say why.
        if (labels[^1].All(char.IsAsciiDigit))
        {
            throw Invalid(host, labels.All(l => l.Length > 0 && l.All(char.IsAsciiDigit))
                ? "it looks like an IPv4 address but is not one (four numbers from 0 to 255)"
                : "the last label of a DNS name cannot be all digits");
        }

        for (int i = 0; i < labels.Length; i++)
        {
            string label = labels[i];
            if (i == 0 && label == "*" && labels.Length > 2) continue; // *.example.com, never *.com
            if (!DnsLabel().IsMatch(label))
            {
                throw Invalid(host, $"the label '{label}' is not a DNS label (letters, digits and '-', at most 63, not starting or ending with '-')");
            }
        }

        return new HostName(HostKind.Dns, dns);
    }

    /// <summary>True when a certificate's SANs cover <paramref name="host"/> the way a TLS client checks it.</summary>
    public static bool Covers(IEnumerable<string> dnsNames, IEnumerable<IPAddress> ipAddresses, HostName host) =>
        host.Kind switch
        {
            HostKind.IPAddress => ipAddresses.Any(a => a.Equals(IPAddress.Parse(host.Value))),
            HostKind.Dns => dnsNames.Any(n => DnsMatches(n, host.Value)),
            _ => false,
        };

    private static bool DnsMatches(string pattern, string name)
    {
        pattern = pattern.TrimEnd('.').ToLowerInvariant();
        name = name.TrimEnd('.').ToLowerInvariant();
        if (pattern == name) return true;
        if (!pattern.StartsWith("*.", StringComparison.Ordinal)) return false;
        int dot = name.IndexOf('.');
        return dot > 0 && name[(dot + 1)..] == pattern[2..];
    }

    private static EtcdSecureException Invalid(string host, string why) =>
        new("InvalidHost", ErrorKind.InvalidArgument, $"'{host}' cannot be a certificate host: {why}. Hosts are DNS names, IPv4 or IPv6 addresses.", host);

    [GeneratedRegex(@"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex(@"^\d{1,3}(\.\d{1,3}){3}$")]
    private static partial Regex IPv4Literal();

    [GeneratedRegex(@"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    private static partial Regex EmailPattern();
}

/// <summary>A subject distinguished name in cfssl's terms (CN plus the "names" entries).</summary>
public sealed record SubjectName(
    string CommonName,
    string? Country = null,
    string? State = null,
    string? Locality = null,
    string? Organization = null,
    string? OrganizationalUnit = null)
{
    public override string ToString()
    {
        // Go's pkix.Name order, which cfssl certificates use: C, ST, L, O, OU, CN.
        var parts = new List<string>();
        void Add(string key, string? value) { if (!string.IsNullOrEmpty(value)) parts.Add($"{key}={value}"); }
        Add("C", Country); Add("ST", State); Add("L", Locality); Add("O", Organization); Add("OU", OrganizationalUnit); Add("CN", CommonName);
        return string.Join(", ", parts);
    }
}
