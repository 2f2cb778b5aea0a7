using System;
using System.Collections.Generic;
using System.Formats.Asn1;
using System.IO;
using System.Linq;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EtcdSecure.Engine.Pki;

/// <summary>Reads certificates from PEM files made by any tool (this module, cfssl, openssl).</summary>
public static class CertificateFile
{
    public static IReadOnlyList<X509Certificate2> Load(string path)
    {
        string text = PemText.Read(path, "certificate");
        var certs = new List<X509Certificate2>();
        if (text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
        {
            ReadOnlySpan<char> rest = text;
            while (PemEncoding.TryFind(rest, out PemFields f))
            {
                if (rest[f.Label].SequenceEqual("CERTIFICATE"))
                {
                    try
                    {
                        certs.Add(FromDer(Convert.FromBase64String(rest[f.Base64Data].ToString())));
                    }
                    catch (Exception ex) when (ex is CryptographicException or FormatException)
                    {
                        throw new EtcdSecureException("MalformedCertificate", ErrorKind.InvalidData, $"'{path}' holds a PEM certificate that cannot be decoded: {ex.Message}", path, ex);
                    }
                }

                rest = rest[f.Location.End..];
            }
        }

        if (certs.Count > 0) return certs;
        string what = text.Contains("PRIVATE KEY-----", StringComparison.Ordinal) ? "a private key (did you mean the matching .pem file?)"
            : text.Contains("BEGIN CERTIFICATE REQUEST", StringComparison.Ordinal) ? "a certificate request, which is not signed yet"
            : text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal) ? "a damaged PEM certificate"
            : "no PEM certificate";
        string id = what.StartsWith("a private key", StringComparison.Ordinal) ? "KeyFileGivenAsCertificate"
            : what.StartsWith("a damaged", StringComparison.Ordinal) ? "MalformedCertificate" : "NotACertificate";
        throw new EtcdSecureException(id, ErrorKind.InvalidData, $"'{path}' holds {what}.", path);
    }

    public static X509Certificate2 LoadFirst(string path) => Load(path)[0];

    /// <summary>
    /// Whether a file holds a PEM certificate: what a folder or a wildcard is narrowed to, so the keys, CRLs and CSRs
    /// beside the certificates are passed over (a file named on its own is read whatever it holds, and gets its error).
    /// </summary>
    public static bool HoldsCertificate(string file)
    {
        if (file.EndsWith("-key.pem", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            return File.ReadAllText(file).Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    internal static X509Certificate2 FromDer(byte[] der) => X509CertificateLoader.LoadCertificate(der);
}

/// <summary>Everything a user wants to know about a certificate, in BCL types.</summary>
public sealed record CertificateDetails(
    X509Certificate2 Certificate,
    string Subject,
    string CommonName,
    string Issuer,
    string SerialNumber,
    IReadOnlyList<string> DnsNames,
    IReadOnlyList<IPAddress> IPAddresses,
    IReadOnlyList<string> OtherNames,
    IReadOnlyList<string> KeyUsages,
    IReadOnlyList<string> ExtendedKeyUsages,
    string KeyAlgorithm,
    int KeySize,
    DateTime NotBefore,
    DateTime NotAfter,
    bool IsCA,
    int? PathLength,
    string? SubjectKeyId,
    string? AuthorityKeyId,
    bool IsSelfSigned)
{
    public string Thumbprint => Certificate.Thumbprint;

    public bool HasSan => DnsNames.Count + IPAddresses.Count + OtherNames.Count > 0;

    /// <summary>Absent EKU means "any" to Go's verifier, so only a present extension restricts the roles.</summary>
    public bool AllowsUsage(string extendedUsage) =>
        ExtendedKeyUsages.Count == 0 || ExtendedKeyUsages.Contains("any") || ExtendedKeyUsages.Contains(extendedUsage);

    public static CertificateDetails From(X509Certificate2 c)
    {
        var dns = new List<string>();
        var ips = new List<IPAddress>();
        var other = new List<string>();
        var ku = new List<string>();
        var eku = new List<string>();
        bool isCa = false;
        int? pathLen = null;
        string? ski = null, aki = null;
        foreach (X509Extension ext in c.Extensions)
        {
            switch (ext)
            {
                case X509SubjectAlternativeNameExtension san:
                    ReadSan(san, dns, ips, other);
                    break;
                case X509KeyUsageExtension k:
                    ku.AddRange(KeyUsageWords(k.KeyUsages));
                    break;
                case X509EnhancedKeyUsageExtension e:
                    foreach (Oid oid in e.EnhancedKeyUsages) eku.Add(Usages.NameOfOid(oid.Value ?? "") ?? oid.Value ?? "?");
                    break;
                case X509BasicConstraintsExtension b:
                    isCa = b.CertificateAuthority;
                    pathLen = b.HasPathLengthConstraint ? b.PathLengthConstraint : null;
                    break;
                case X509SubjectKeyIdentifierExtension s:
                    ski = s.SubjectKeyIdentifier;
                    break;
                case X509AuthorityKeyIdentifierExtension a when a.KeyIdentifier is { } id:
                    aki = Convert.ToHexString(id.Span);
                    break;
            }
        }

        (string algo, int size) = c.PublicKey.Oid.Value switch
        {
            "1.2.840.113549.1.1.1" => ("RSA", c.GetRSAPublicKey()!.KeySize),
            "1.2.840.10045.2.1" => ("ECDSA", c.GetECDsaPublicKey()!.KeySize),
            "1.3.101.112" => ("Ed25519", 256),
            string other2 => (c.PublicKey.Oid.FriendlyName ?? other2, 0),
            _ => ("unknown", 0),
        };

        return new CertificateDetails(
            c,
            c.Subject,
            c.GetNameInfo(X509NameType.SimpleName, false),
            c.Issuer,
            c.SerialNumber,
            dns, ips, other, ku, eku,
            algo, size,
            c.NotBefore.ToUniversalTime(),
            c.NotAfter.ToUniversalTime(),
            isCa, pathLen, ski, aki,
            c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData));
    }

    private static void ReadSan(X509SubjectAlternativeNameExtension san, List<string> dns, List<IPAddress> ips, List<string> other)
    {
        dns.AddRange(san.EnumerateDnsNames());
        ips.AddRange(san.EnumerateIPAddresses());
        // E-mail and URI names are rare in etcd PKIs but cfssl makes them; show them rather than drop them.
        try
        {
            var reader = new AsnReader(san.RawData, AsnEncodingRules.DER).ReadSequence();
            while (reader.HasData)
            {
                Asn1Tag tag = reader.PeekTag();
                if (tag.TagClass == TagClass.ContextSpecific && tag.TagValue is 1 or 6)
                {
                    string value = System.Text.Encoding.ASCII.GetString(reader.ReadOctetString(tag));
                    other.Add(tag.TagValue == 1 ? $"email:{value}" : $"uri:{value}");
                }
                else
                {
                    reader.ReadEncodedValue();
                }
            }
        }
        catch (AsnContentException)
        {
            // The BCL already read what it could; a malformed tail only costs us the rarer name kinds.
        }
    }

    private static IEnumerable<string> KeyUsageWords(X509KeyUsageFlags f)
    {
        if (f.HasFlag(X509KeyUsageFlags.DigitalSignature)) yield return "digital signature";
        if (f.HasFlag(X509KeyUsageFlags.NonRepudiation)) yield return "content commitment";
        if (f.HasFlag(X509KeyUsageFlags.KeyEncipherment)) yield return "key encipherment";
        if (f.HasFlag(X509KeyUsageFlags.DataEncipherment)) yield return "data encipherment";
        if (f.HasFlag(X509KeyUsageFlags.KeyAgreement)) yield return "key agreement";
        if (f.HasFlag(X509KeyUsageFlags.KeyCertSign)) yield return "cert sign";
        if (f.HasFlag(X509KeyUsageFlags.CrlSign)) yield return "crl sign";
        if (f.HasFlag(X509KeyUsageFlags.EncipherOnly)) yield return "encipher only";
        if (f.HasFlag(X509KeyUsageFlags.DecipherOnly)) yield return "decipher only";
    }
}
