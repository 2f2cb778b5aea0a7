using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.X509;

namespace EtcdSecure.Engine.Pki;

/// <summary>One certificate a CA issued, as its ledger keeps it (cfssl's certdb and openssl's index.txt keep the same).</summary>
public sealed record LedgerEntry
{
    /// <summary>Hexadecimal, upper case, as X509Certificate2.SerialNumber and openssl x509 -serial print it.</summary>
    public required string SerialNumber { get; init; }
    public required string Subject { get; init; }
    public required string CommonName { get; init; }
    public string[] Hosts { get; init; } = Array.Empty<string>();
    public string? Profile { get; init; }
    public DateTime NotBefore { get; init; }
    public DateTime NotAfter { get; init; }
    public DateTime IssuedAt { get; init; }
    public string? Path { get; init; }
    public DateTime? RevokedAt { get; init; }
    public string? RevocationReason { get; init; }

    /// <summary>The serial of the certificate that renewed this one, when one did.</summary>
    public string? RenewedBy { get; init; }
}

/// <summary>A certificate that a renewal replaced, and where its files were moved.</summary>
public sealed record Renewal(string SerialNumber, string? MovedTo);

/// <summary>What a CA has issued and revoked, and the number of its last CRL.</summary>
public sealed class Ledger
{
    public long CrlNumber { get; set; }
    public List<LedgerEntry> Certificates { get; set; } = new();
}

/// <summary>A CRL as written: where, when it must be replaced, and how many serials it names.</summary>
public sealed record CrlInfo(string Path, string Issuer, DateTime ThisUpdate, DateTime NextUpdate, long Number, int RevokedCount);

/// <summary>
/// The ledger beside a CA (NAME-index.json for NAME.pem) and the CRL it is the source of (NAME-crl.pem). Every
/// change is made under a lock, read, changed and written whole, so that two sessions issuing from one CA at once
/// both end up in it.
/// </summary>
public static class CertificateLedger
{
    /// <summary>How long a CRL is current unless told otherwise. etcd and this module's proxy keep using an older one.</summary>
    public static readonly TimeSpan DefaultCrlValidity = TimeSpan.FromDays(30);

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string PathOf(string caCertificatePath) => Sibling(caCertificatePath, "-index.json");

    public static string CrlPathOf(string caCertificatePath) => Sibling(caCertificatePath, "-crl.pem");

    private static string Sibling(string caCertificatePath, string suffix)
    {
        string full = System.IO.Path.GetFullPath(caCertificatePath);
        string stem = full.EndsWith(".pem", StringComparison.OrdinalIgnoreCase) ? full[..^4] : full;
        return stem + suffix;
    }

    /// <summary>
    /// Deletes the ledger and the CRL beside a CA that a new one has just replaced: they speak for a key that is gone.
    /// Returns the files it deleted.
    /// </summary>
    public static IReadOnlyList<string> ForgetReplaced(string caCertificatePath)
    {
        var gone = new List<string>();
        foreach (string stale in new[] { PathOf(caCertificatePath), CrlPathOf(caCertificatePath) })
        {
            if (!File.Exists(stale)) continue;
            File.Delete(stale);
            gone.Add(stale);
        }

        return gone;
    }

    public static Ledger Read(string caCertificatePath)
    {
        string file = PathOf(caCertificatePath);
        if (!File.Exists(file)) return new Ledger();
        try
        {
            return JsonSerializer.Deserialize<Ledger>(File.ReadAllText(file), Json) ?? new Ledger();
        }
        catch (JsonException ex)
        {
            throw new EtcdSecureException("LedgerInvalid", ErrorKind.InvalidData,
                $"The ledger '{file}' of the CA '{caCertificatePath}' is not valid JSON ({ex.Message}); nothing was changed. Restore it from a backup or move it aside.", file, ex);
        }
    }

    /// <summary>
    /// Adds a just-issued certificate; when it renews one of this CA's (<paramref name="renews"/>), that one is marked in
    /// the same change, so the ledger never holds the new certificate without knowing what it replaced.
    /// </summary>
    public static void Record(string caCertificatePath, X509Certificate2 certificate, string? path, string? profile, DateTime now, Renewal? renews = null) =>
        Change(caCertificatePath, ledger =>
        {
            CertificateDetails d = CertificateDetails.From(certificate);
            string serial = NormalizeSerial(d.SerialNumber);
            ledger.Certificates.RemoveAll(e => e.SerialNumber == serial);
            ledger.Certificates.Add(new LedgerEntry
            {
                SerialNumber = serial,
                Subject = d.Subject,
                CommonName = d.CommonName,
                Hosts = d.DnsNames.Concat(d.IPAddresses.Select(a => a.ToString())).Concat(d.OtherNames).ToArray(),
                Profile = profile,
                NotBefore = d.NotBefore,
                NotAfter = d.NotAfter,
                IssuedAt = now,
                Path = path is null ? null : System.IO.Path.GetFullPath(path),
            });
            if (renews is not null) MarkRenewed(ledger, renews, serial);
            return true;
        });

    /// <summary>Marks a certificate of another CA's ledger as renewed by one the next CA issued (a rotation).</summary>
    public static void MarkRenewed(string caCertificatePath, Renewal renewed, string renewedBy) =>
        Change(caCertificatePath, ledger =>
        {
            MarkRenewed(ledger, renewed, NormalizeSerial(renewedBy));
            return true;
        });

    private static void MarkRenewed(Ledger ledger, Renewal renewed, string renewedBy)
    {
        string old = NormalizeSerial(renewed.SerialNumber);
        int i = ledger.Certificates.FindIndex(e => e.SerialNumber == old);
        if (i >= 0) ledger.Certificates[i] = ledger.Certificates[i] with { RenewedBy = renewedBy, Path = renewed.MovedTo };
    }

    /// <summary>
    /// Marks a serial revoked and writes a new CRL. A serial the ledger does not know (a certificate issued before
    /// the ledger existed) is revoked all the same when <paramref name="certificate"/> shows this CA issued it.
    /// </summary>
    public static (LedgerEntry Entry, CrlInfo Crl) Revoke(IssuerCredentials issuer, string serialNumber, X509Certificate2? certificate, RevocationReason reason, DateTime now, TimeSpan crlValidity)
    {
        string serial = NormalizeSerial(serialNumber);
        return Change(issuer.CertificatePath, ledger =>
        {
            int i = ledger.Certificates.FindIndex(e => e.SerialNumber == serial);
            LedgerEntry entry;
            if (i >= 0)
            {
                entry = ledger.Certificates[i];
            }
            else if (certificate is not null)
            {
                CertificateDetails d = CertificateDetails.From(certificate);
                entry = new LedgerEntry { SerialNumber = serial, Subject = d.Subject, CommonName = d.CommonName, NotBefore = d.NotBefore, NotAfter = d.NotAfter };
                ledger.Certificates.Add(entry);
                i = ledger.Certificates.Count - 1;
            }
            else
            {
                throw new EtcdSecureException("SerialNotIssued", ErrorKind.ObjectNotFound,
                    $"The CA '{issuer.CertificatePath}' has no certificate with serial {serial} in its ledger ({PathOf(issuer.CertificatePath)}). Revoke it by its file (-Path) instead.", serial);
            }

            // Revoking twice keeps the first date and reason: the CRL says when the key stopped being trusted.
            if (entry.RevokedAt is null) entry = entry with { RevokedAt = now, RevocationReason = reason.ToString() };
            ledger.Certificates[i] = entry;
            return (entry, WriteCrlLocked(issuer, ledger, now, crlValidity));
        });
    }

    /// <summary>Writes a fresh CRL of everything revoked so far (a new one before the old one's nextUpdate).</summary>
    public static CrlInfo WriteCrl(IssuerCredentials issuer, DateTime now, TimeSpan crlValidity) =>
        Change(issuer.CertificatePath, ledger => WriteCrlLocked(issuer, ledger, now, crlValidity));

    public static string NormalizeSerial(string serial)
    {
        string s = serial.Replace(":", "").Replace(" ", "").Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) s = s[2..];
        if (s.Length == 0 || !s.All(Uri.IsHexDigit))
        {
            throw new EtcdSecureException("InvalidSerialNumber", ErrorKind.InvalidArgument,
                $"'{serial}' is not a serial number: give it in hexadecimal as Get-EtcdCertificate and openssl x509 -serial show it.", serial);
        }

        // Whole bytes, as X509Certificate2.SerialNumber and openssl print them; a leading 00 byte is only DER's sign
        // padding, so 00A1 and A1 name the same certificate.
        if (s.Length % 2 == 1) s = "0" + s;
        while (s.Length > 2 && s.StartsWith("00", StringComparison.Ordinal)) s = s[2..];
        return s.ToUpperInvariant();
    }

    private static CrlInfo WriteCrlLocked(IssuerCredentials issuer, Ledger ledger, DateTime now, TimeSpan crlValidity)
    {
        if (crlValidity <= TimeSpan.Zero)
        {
            throw new EtcdSecureException("InvalidValidity", ErrorKind.InvalidArgument, $"A CRL's validity must be positive, not {crlValidity}.", crlValidity);
        }

        long number = ledger.CrlNumber + 1;
        DateTime next = now + crlValidity;
        var gen = new X509V2CrlGenerator();
        gen.SetIssuerDN(issuer.Certificate.SubjectDN);
        // Backdated as certificates are, so a host whose clock lags a little does not see a CRL from the future.
        gen.SetThisUpdate(now - CertificateIssuer.Backdate);
        gen.SetNextUpdate(next);
        var revoked = ledger.Certificates.Where(e => e.RevokedAt is not null).ToList();
        foreach (LedgerEntry e in revoked)
        {
            gen.AddCrlEntry(new BigInteger(NormalizeSerial(e.SerialNumber), 16), e.RevokedAt!.Value, (int)Enum.Parse<RevocationReason>(e.RevocationReason ?? nameof(RevocationReason.Unspecified)));
        }

        gen.AddExtension(X509Extensions.AuthorityKeyIdentifier, false, new AuthorityKeyIdentifier(CertificateIssuer.IssuerKeyId(issuer.Certificate)));
        gen.AddExtension(X509Extensions.CrlNumber, false, new CrlNumber(BigInteger.ValueOf(number)));
        X509Crl crl = gen.Generate(issuer.Key.Signer);
        string path = CrlPathOf(issuer.CertificatePath);
        // Renamed into place whole: etcd reads the file on every new connection and must never see half of it.
        PemFileSet.Write(new[] { new PemFileSet.Entry(path, CertificateIssuer.Pem("X509 CRL", crl.GetEncoded()), Secret: false) }, force: true);
        ledger.CrlNumber = number;
        return new CrlInfo(path, issuer.Certificate.SubjectDN.ToString(), now, next, number, revoked.Count);
    }

    private static T Change<T>(string caCertificatePath, Func<Ledger, T> change)
    {
        string file = PathOf(caCertificatePath);
        string lockFile = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(file)!, "." + System.IO.Path.GetFileName(file) + ".lock");
        return FileLock.With(lockFile, TimeSpan.FromSeconds(30), "LedgerLocked", $"The ledger '{file}'", () =>
        {
            Ledger ledger = Read(caCertificatePath);
            T result = change(ledger);
            State.StateStore.WriteJson(file, ledger, Json);
            return result;
        });
    }
}

/// <summary>RFC 5280 reason codes, with their numbers.</summary>
public enum RevocationReason
{
    Unspecified = 0,
    KeyCompromise = 1,
    CACompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    PrivilegeWithdrawn = 9,
}
