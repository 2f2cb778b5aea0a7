using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.X509;

namespace EtcdSecure.Engine.Tls;

/// <summary>
/// Certificates revoked by CRL files (PEM or DER, one or several per file), checked locally: nothing is fetched
/// from a CRL distribution point. A CRL counts only when a CA of the trust bundle signed it, so a file that someone
/// could write into cannot revoke (or, by being replaced, un-revoke) more than its signer could.
/// </summary>
public sealed class RevocationList
{
    // issuer name (DER, hex) → revoked serial → when
    private readonly Dictionary<string, Dictionary<BigInteger, DateTime>> _revoked;

    private RevocationList(Dictionary<string, Dictionary<BigInteger, DateTime>> revoked, int lists, DateTime? nextUpdate)
    {
        _revoked = revoked;
        Lists = lists;
        NextUpdate = nextUpdate;
    }

    /// <summary>How many CRLs were read.</summary>
    public int Lists { get; }

    public int Revoked => _revoked.Values.Sum(s => s.Count);

    /// <summary>The earliest nextUpdate of the lists: after it, a list is stale and its issuer should have published a new one.</summary>
    public DateTime? NextUpdate { get; }

    public static RevocationList Load(IReadOnlyList<string> paths, TrustedCAs trust)
    {
        var revoked = new Dictionary<string, Dictionary<BigInteger, DateTime>>(StringComparer.Ordinal);
        var parser = new X509CrlParser();
        var signers = trust.Certificates.Select(c => new X509CertificateParser().ReadCertificate(c.RawData)).ToList();
        int lists = 0;
        DateTime? nextUpdate = null;
        foreach (string path in paths)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new EtcdSecureException("CrlNotReadable", ErrorKind.ResourceUnavailable, $"The CRL file '{path}' cannot be read: {ex.Message}", path, ex);
            }

            IList<X509Crl> crls;
            try
            {
                crls = parser.ReadCrls(bytes).ToList();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                throw new EtcdSecureException("MalformedCrl", ErrorKind.InvalidData, $"'{path}' is not a CRL in PEM or DER form: {ex.Message}", path, ex);
            }

            if (crls.Count == 0) throw new EtcdSecureException("MalformedCrl", ErrorKind.InvalidData, $"'{path}' holds no CRL (PEM 'X509 CRL' or DER).", path);
            foreach (X509Crl crl in crls)
            {
                Org.BouncyCastle.X509.X509Certificate? signer = signers.FirstOrDefault(s => s.SubjectDN.Equivalent(crl.IssuerDN) && Verifies(crl, s));
                if (signer is null)
                {
                    throw new EtcdSecureException("CrlNotTrusted", ErrorKind.SecurityError,
                        $"The CRL in '{path}' (issuer {crl.IssuerDN}) is not signed by a CA in '{trust.Path}': only a trusted CA's CRL can revoke its certificates.", path);
                }

                string issuer = Convert.ToHexString(crl.IssuerDN.GetEncoded());
                if (!revoked.TryGetValue(issuer, out var serials)) revoked[issuer] = serials = new Dictionary<BigInteger, DateTime>();
                foreach (X509CrlEntry entry in crl.GetRevokedCertificates() ?? Enumerable.Empty<X509CrlEntry>())
                {
                    serials[entry.SerialNumber] = entry.RevocationDate;
                }

                lists++;
                if (crl.NextUpdate is { } next && (nextUpdate is null || next < nextUpdate)) nextUpdate = next;
            }
        }

        return new RevocationList(revoked, lists, nextUpdate);
    }

    private static bool Verifies(X509Crl crl, Org.BouncyCastle.X509.X509Certificate signer)
    {
        try
        {
            crl.Verify(signer.GetPublicKey());
            return true;
        }
        catch (Exception ex) when (ex is Org.BouncyCastle.Security.InvalidKeyException or Org.BouncyCastle.Security.SignatureException or Org.BouncyCastle.Security.Certificates.CrlException)
        {
            return false;
        }
    }

    /// <summary>Why a certificate of a built chain is revoked (the leaf or any CA below the trust anchor); null when none is.</summary>
    public string? RevokedIn(X509Chain chain)
    {
        for (int i = 0; i < chain.ChainElements.Count; i++)
        {
            X509Certificate2 c = chain.ChainElements[i].Certificate;
            if (IsRevoked(c, out DateTime when))
            {
                return $"'{c.Subject}' (serial {c.SerialNumber}) was revoked on {when:u}";
            }
        }

        return null;
    }

    public bool IsRevoked(X509Certificate2 certificate, out DateTime when)
    {
        when = default;
        string issuer = Convert.ToHexString(Org.BouncyCastle.Asn1.X509.X509Name.GetInstance(certificate.IssuerName.RawData).GetEncoded());
        return _revoked.TryGetValue(issuer, out var serials) && serials.TryGetValue(new BigInteger(certificate.SerialNumber, 16), out when);
    }
}
