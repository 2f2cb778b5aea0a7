using System;
using System.Linq;
using System.Security.Cryptography.X509Certificates;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure;

/// <summary>A certificate on disk with its key and CSR paths (cfssljson -bare naming), as the PKI cmdlets return it.</summary>
public sealed class EtcdCertificate
{
    public string Name { get; init; } = "";
    public string CommonName { get; init; } = "";
    public string Subject { get; init; } = "";
    public string Issuer { get; init; } = "";
    public string SerialNumber { get; init; } = "";
    public string[] DnsNames { get; init; } = Array.Empty<string>();
    public string[] IPAddresses { get; init; } = Array.Empty<string>();
    public string[] OtherNames { get; init; } = Array.Empty<string>();
    public string[] KeyUsages { get; init; } = Array.Empty<string>();
    public string[] ExtendedKeyUsages { get; init; } = Array.Empty<string>();

    /// <summary>Every name the certificate is valid for: DNS names, IP addresses and other names, as the table shows them.</summary>
    public string[] Hosts => DnsNames.Concat(IPAddresses).Concat(OtherNames).ToArray();

    /// <summary>What the certificate may be used for (its extended key usages), as the table shows them.</summary>
    public string[] Usages => ExtendedKeyUsages;
    public string KeyAlgorithm { get; init; } = "";
    public int KeySize { get; init; }

    /// <summary>The key as the table shows it: algorithm and size.</summary>
    public string Key => $"{KeyAlgorithm} {KeySize}";
    public DateTime NotBefore { get; init; }
    public DateTime NotAfter { get; init; }
    public int DaysLeft => (int)Math.Floor((NotAfter - DateTime.UtcNow).TotalDays);

    /// <summary>Time until NotAfter; negative once expired.</summary>
    public TimeSpan ExpiresIn => NotAfter.ToUniversalTime() - DateTime.UtcNow;
    public bool IsCA { get; init; }
    public string Thumbprint { get; init; } = "";
    public string? SubjectKeyId { get; init; }
    public string? AuthorityKeyId { get; init; }
    public string? Profile { get; init; }
    public string Path { get; init; } = "";
    public string? KeyPath { get; init; }
    public string? CsrPath { get; init; }
    public X509Certificate2? Certificate { get; init; }

    public override string ToString() => Path;

    internal static EtcdCertificate From(CertificateDetails d, string path, string? keyPath, string? csrPath, string? profile = null) => new()
    {
        Name = BaseName(path),
        CommonName = d.CommonName,
        Subject = d.Subject,
        Issuer = d.Issuer,
        SerialNumber = d.SerialNumber,
        DnsNames = d.DnsNames.ToArray(),
        IPAddresses = d.IPAddresses.Select(a => a.ToString()).ToArray(),
        OtherNames = d.OtherNames.ToArray(),
        KeyUsages = d.KeyUsages.ToArray(),
        ExtendedKeyUsages = d.ExtendedKeyUsages.ToArray(),
        KeyAlgorithm = d.KeyAlgorithm,
        KeySize = d.KeySize,
        NotBefore = d.NotBefore,
        NotAfter = d.NotAfter,
        IsCA = d.IsCA,
        Thumbprint = d.Thumbprint,
        SubjectKeyId = d.SubjectKeyId,
        AuthorityKeyId = d.AuthorityKeyId,
        Profile = profile,
        Path = path,
        KeyPath = keyPath,
        CsrPath = csrPath,
        Certificate = d.Certificate,
    };

    private static string BaseName(string path)
    {
        string file = System.IO.Path.GetFileName(path);
        return file.EndsWith(".pem", StringComparison.OrdinalIgnoreCase) ? file[..^4] : file;
    }
}

/// <summary>The outcome of Test-EtcdCertificate: Valid, and every reason it is not.</summary>
public sealed class EtcdCertificateTestResult
{
    public bool Valid => Reasons.Length == 0;
    public string Path { get; init; } = "";
    public string CommonName { get; init; } = "";
    public string Role { get; init; } = "";
    public string[] Hosts { get; init; } = Array.Empty<string>();
    public DateTime NotAfter { get; init; }
    public string[] Reasons { get; init; } = Array.Empty<string>();
}
