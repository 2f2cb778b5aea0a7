using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography.X509Certificates;

namespace EtcdSecure.Engine.Pki;

/// <summary>
/// Finds the CA that issued a certificate among the files beside it, as cfssljson lays them out: first a CA whose
/// ledger names the serial, then any CA certificate there whose key signed it. So renewing or revoking
/// ./tls/etcd-1.pem needs no -CA when ./tls/ca.pem and ./tls/ca-key.pem are its neighbours.
/// </summary>
public static class IssuerLocator
{
    public static string? FindCA(string certificatePath, X509Certificate2 certificate)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(certificatePath))!;
        if (!Directory.Exists(dir)) return null;
        string serial = CertificateLedger.NormalizeSerial(certificate.SerialNumber);
        foreach (string ledger in Directory.EnumerateFiles(dir, "*-index.json").Order(StringComparer.Ordinal))
        {
            string ca = ledger[..^"-index.json".Length] + ".pem";
            if (File.Exists(ca) && CertificateLedger.Read(ca).Certificates.Any(e => e.SerialNumber == serial) && Signed(ca, certificate)) return ca;
        }

        foreach (string candidate in Directory.EnumerateFiles(dir, "*.pem").Order(StringComparer.Ordinal))
        {
            if (candidate.EndsWith("-key.pem", StringComparison.OrdinalIgnoreCase) || candidate.EndsWith("-crl.pem", StringComparison.OrdinalIgnoreCase)) continue;
            if (Path.GetFullPath(candidate) == Path.GetFullPath(certificatePath)) continue;
            if (Signed(candidate, certificate)) return candidate;
        }

        return null;
    }

    /// <summary>The profile the ledger of <paramref name="caPath"/> recorded for this certificate, if any.</summary>
    public static LedgerEntry? EntryOf(string caPath, X509Certificate2 certificate)
    {
        string serial = CertificateLedger.NormalizeSerial(certificate.SerialNumber);
        return CertificateLedger.Read(caPath).Certificates.FirstOrDefault(e => e.SerialNumber == serial);
    }

    private static bool Signed(string caPath, X509Certificate2 certificate)
    {
        X509Certificate2 ca;
        try
        {
            ca = CertificateFile.LoadFirst(caPath);
        }
        catch (EtcdSecureException)
        {
            return false;
        }

        return ca.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData) && CertificateDetails.From(ca).IsCA && CertificateValidator.Signs(ca, certificate);
    }
}
