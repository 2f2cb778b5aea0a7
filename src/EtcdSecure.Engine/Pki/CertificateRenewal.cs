using System;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography.X509Certificates;

namespace EtcdSecure.Engine.Pki;

/// <summary>What a renewal did: the new certificate, and where the files it replaced now are.</summary>
public sealed record RenewedCertificate(IssuedCertificate Issued, BareFileNames Files, string PreviousFolder, string PreviousSerial, string? Profile);

/// <summary>
/// Renews a certificate in place, as kubeadm certs renew does: the same subject, SANs and usages from the same CA,
/// the files replaced by rename (etcd and the proxy read them on their next handshake, so nothing restarts), and
/// the old files kept under previous/STAMP/ beside them, to roll back by copying them back.
/// </summary>
public static class CertificateRenewal
{
    public static RenewedCertificate Renew(string certificatePath, IssuerCredentials issuer, TimeSpan? validity, bool reuseKey, DateTime now, bool changeCA = false)
    {
        string path = Path.GetFullPath(certificatePath);
        X509Certificate2 old = CertificateFile.LoadFirst(path);
        bool sameCA = IssuedBy(old, issuer);
        if (!sameCA && !changeCA)
        {
            throw new EtcdSecureException("NotIssuedByCA", ErrorKind.InvalidArgument,
                $"'{path}' ({old.Subject}) was not issued by the CA '{issuer.CertificatePath}'; renew it with the CA that issued it, or give -ChangeCA to reissue it from this one (a CA rotation).", path);
        }

        string dir = Path.GetDirectoryName(path)!;
        string name = Path.GetFileName(path);
        name = name.EndsWith(".pem", StringComparison.OrdinalIgnoreCase) ? name[..^4] : name;
        BareFileNames files = BareFileNames.For(dir, name);
        bool hadKey = File.Exists(files.Key);
        PrivateKey key;
        if (reuseKey)
        {
            if (!hadKey)
            {
                throw new EtcdSecureException("KeyNotFound", ErrorKind.ObjectNotFound, $"-ReuseKey needs the key '{files.Key}' beside the certificate, and it is not there.", files.Key);
            }

            key = PrivateKey.Load(files.Key);
            if (!key.Matches(old))
            {
                throw new EtcdSecureException("KeyMismatch", ErrorKind.InvalidData, $"The key '{files.Key}' does not belong to '{path}', so it cannot be reused.", files.Key);
            }
        }
        else
        {
            CertificateDetails d = CertificateDetails.From(old);
            key = PrivateKey.Generate(KeySpec.Create(d.KeyAlgorithm == "RSA" ? KeyAlgorithm.Rsa : KeyAlgorithm.Ecdsa, d.KeySize));
        }

        IssuedCertificate issued = CertificateIssuer.Reissue(old, key, validity ?? LifetimeOf(old), issuer, now);
        string stamp = Path.Combine(dir, "previous", now.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture) + "-" + name);
        string previous = stamp;
        // Two renewals within a second (a script, a retry) each keep what they replaced.
        for (int n = 2; Directory.Exists(previous); n++) previous = $"{stamp}-{n}";

        // The old files are copied aside first (the key owner-only, as it was), then the new ones renamed over them:
        // a failure at any point leaves the old certificate in place and working.
        var keep = new List<PemFileSet.Entry> { new(Path.Combine(previous, name + ".pem"), File.ReadAllText(path), Secret: false) };
        if (hadKey) keep.Add(new(Path.Combine(previous, name + "-key.pem"), File.ReadAllText(files.Key), Secret: true));
        if (File.Exists(files.Csr)) keep.Add(new(Path.Combine(previous, name + ".csr"), File.ReadAllText(files.Csr), Secret: false));
        PemFileSet.Write(keep, force: false);

        // Two renames, key then certificate, microseconds apart: a handshake that reads between them sees a pair that
        // does not match and fails on its own (the client's next attempt gets the new pair). -ReuseKey has no window.
        var replace = new List<PemFileSet.Entry>();
        if (!reuseKey) replace.Add(new(files.Key, issued.PrivateKeyPem, Secret: true));
        replace.Add(new(files.Certificate, issued.CertificatePem, Secret: false));
        if (File.Exists(files.Csr)) replace.Add(new(files.Csr, issued.CsrPem, Secret: false));
        PemFileSet.Write(replace, force: true);

        // The profile comes from the ledger of the CA that issued the old certificate, which is not this one in a rotation.
        string? oldCA = sameCA ? issuer.CertificatePath : IssuerLocator.FindCA(path, old);
        LedgerEntry? entry = oldCA is null ? null : IssuerLocator.EntryOf(oldCA, old);
        var replaced = new Renewal(old.SerialNumber, Path.Combine(previous, name + ".pem"));
        CertificateLedger.Record(issuer.CertificatePath, issued.Certificate, files.Certificate, entry?.Profile, now, sameCA ? replaced : null);
        if (!sameCA && oldCA is not null) CertificateLedger.MarkRenewed(oldCA, replaced, issued.Certificate.SerialNumber);
        return new RenewedCertificate(issued, files, previous, CertificateLedger.NormalizeSerial(old.SerialNumber), entry?.Profile);
    }

    /// <summary>The validity the certificate was issued with (less the backdating), to the hour.</summary>
    public static TimeSpan LifetimeOf(X509Certificate2 certificate)
    {
        TimeSpan life = certificate.NotAfter.ToUniversalTime() - certificate.NotBefore.ToUniversalTime();
        if (life > CertificateIssuer.Backdate * 2) life -= CertificateIssuer.Backdate;
        return life > TimeSpan.FromHours(2) ? TimeSpan.FromHours(Math.Round(life.TotalHours)) : life;
    }

    public static bool IssuedBy(X509Certificate2 certificate, IssuerCredentials issuer)
    {
        X509Certificate2 ca = CertificateFile.FromDer(issuer.Certificate.GetEncoded());
        return certificate.IssuerName.RawData.AsSpan().SequenceEqual(ca.SubjectName.RawData) && CertificateValidator.Signs(ca, certificate);
    }
}
