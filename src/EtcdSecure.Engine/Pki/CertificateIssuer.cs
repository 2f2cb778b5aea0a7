using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Pkcs;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Pkcs;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;

namespace EtcdSecure.Engine.Pki;

/// <summary>A freshly issued certificate: the three files cfssljson -bare writes, plus the parsed certificate.</summary>
public sealed record IssuedCertificate(string CertificatePem, string PrivateKeyPem, string CsrPem, X509Certificate2 Certificate, IReadOnlyList<string> Warnings);

/// <summary>A CA certificate and its private key, checked to belong together and to be usable for signing.</summary>
public sealed class IssuerCredentials
{
    private IssuerCredentials(BcCertificate certificate, PrivateKey key, string certificatePath)
    {
        Certificate = certificate;
        Key = key;
        CertificatePath = certificatePath;
    }

    internal BcCertificate Certificate { get; }
    internal PrivateKey Key { get; }
    public string CertificatePath { get; }
    public DateTime NotAfter => Certificate.NotAfter.ToUniversalTime();

    public static IssuerCredentials Load(string certificatePath, string keyPath, DateTime now)
    {
        X509Certificate2 ca = CertificateFile.LoadFirst(certificatePath);
        BcCertificate bc = new X509CertificateParser().ReadCertificate(ca.RawData);
        PrivateKey key = PrivateKey.Load(keyPath);
        if (!key.Matches(ca))
        {
            throw new EtcdSecureException("CAKeyMismatch", ErrorKind.InvalidData,
                $"The CA key '{keyPath}' does not belong to the CA certificate '{certificatePath}': certificates signed with it would not verify.", keyPath);
        }

        if (bc.GetBasicConstraints() < 0)
        {
            throw new EtcdSecureException("NotACertificateAuthority", ErrorKind.InvalidData,
                $"'{certificatePath}' ({bc.SubjectDN}) is not a CA certificate (its basic constraints do not allow signing certificates).", certificatePath);
        }

        if (bc.NotAfter.ToUniversalTime() <= now)
        {
            throw new EtcdSecureException("CAExpired", ErrorKind.InvalidData,
                $"The CA certificate '{certificatePath}' expired on {bc.NotAfter.ToUniversalTime():u}; certificates it signs would not verify. Create a new CA.", certificatePath);
        }

        if (bc.NotBefore.ToUniversalTime() > now)
        {
            throw new EtcdSecureException("CANotYetValid", ErrorKind.InvalidData,
                $"The CA certificate '{certificatePath}' is not valid before {bc.NotBefore.ToUniversalTime():u}.", certificatePath);
        }

        return new IssuerCredentials(bc, key, certificatePath);
    }
}

public static class CertificateIssuer
{
    // cfssl backdates NotBefore so a freshly issued certificate is valid on hosts whose clocks lag a little.
    public static readonly TimeSpan Backdate = TimeSpan.FromMinutes(5);

    private static readonly SecureRandom Random = new();

    /// <summary>A self-signed CA, as cfssl gencert -initca makes it.</summary>
    public static IssuedCertificate CreateCertificateAuthority(SubjectName subject, IReadOnlyList<HostName> hosts, KeySpec keySpec, TimeSpan validity, int? pathLength, DateTime now)
    {
        PositiveValidity(validity);
        PrivateKey key = PrivateKey.Generate(keySpec);
        X509Name name = ToX509Name(subject);
        byte[] ski = SubjectKeyId(key.SubjectPublicKeyInfo);
        var gen = NewGenerator(name, name, key, now, now + validity);
        gen.AddExtension(X509Extensions.KeyUsage, true, new KeyUsage(KeyUsage.KeyCertSign | KeyUsage.CrlSign));
        gen.AddExtension(X509Extensions.BasicConstraints, true, pathLength is int p ? new BasicConstraints(p) : new BasicConstraints(true));
        gen.AddExtension(X509Extensions.SubjectKeyIdentifier, false, new SubjectKeyIdentifier(ski));
        AddSans(gen, hosts);
        BcCertificate cert = gen.Generate(key.Signer);
        return Finish(cert, key, name, hosts.Count == 0 ? null : SanNames(hosts), new List<string>());
    }

    /// <summary>A certificate signed by <paramref name="issuer"/> with the usages and expiry of <paramref name="profile"/>.</summary>
    public static IssuedCertificate Issue(SubjectName subject, IReadOnlyList<HostName> hosts, KeySpec keySpec, CertificateProfile profile, TimeSpan? validity, IssuerCredentials issuer, DateTime now)
    {
        TimeSpan life = validity ?? profile.Expiry;
        PositiveValidity(life);
        var warnings = new List<string>();
        DateTime notAfter = now + life;
        if (notAfter > issuer.NotAfter)
        {
            // A certificate cannot outlive its CA in any useful way, so it ends with the CA. Equal expiries
            // issued moments apart (workflow A: both 8760h) differ by seconds and need no warning.
            if (notAfter - issuer.NotAfter > TimeSpan.FromHours(1)) warnings.Add($"The requested validity ends {notAfter:u}, after the CA itself expires ({issuer.NotAfter:u}); the certificate ends with the CA.");
            notAfter = issuer.NotAfter;
        }

        if (hosts.Count == 0 && (profile.Has("server auth")))
        {
            warnings.Add($"'{subject.CommonName}' has no hosts: a server or peer certificate without subject alternative names is rejected by Go 1.15+ (etcd 3.5+). Give -Hosts.");
        }

        PrivateKey key = PrivateKey.Generate(keySpec);
        X509Name name = ToX509Name(subject);
        var gen = NewGenerator(issuer.Certificate.SubjectDN, name, key, now, notAfter);
        int ku = profile.Usages.Where(u => Usages.KeyUsageBits.ContainsKey(u)).Aggregate(0, (acc, u) => acc | Usages.KeyUsageBits[u]);
        if (ku != 0) gen.AddExtension(X509Extensions.KeyUsage, true, new KeyUsage(ku));
        DerObjectIdentifier[] eku = profile.Usages.Where(u => Usages.ExtendedKeyUsageOids.ContainsKey(u))
            .Select(u => Usages.ExtendedKeyUsageOids[u]).Distinct()
            .Select(oid => new DerObjectIdentifier(oid)).ToArray();
        if (eku.Length > 0) gen.AddExtension(X509Extensions.ExtendedKeyUsage, false, new ExtendedKeyUsage(eku));
        gen.AddExtension(X509Extensions.BasicConstraints, true, new BasicConstraints(profile.IsCA));
        gen.AddExtension(X509Extensions.SubjectKeyIdentifier, false, new SubjectKeyIdentifier(SubjectKeyId(key.SubjectPublicKeyInfo)));
        gen.AddExtension(X509Extensions.AuthorityKeyIdentifier, false, new AuthorityKeyIdentifier(IssuerKeyId(issuer.Certificate)));
        AddSans(gen, hosts);
        BcCertificate cert = gen.Generate(issuer.Key.Signer);
        return Finish(cert, key, name, hosts.Count == 0 ? null : SanNames(hosts), warnings);
    }

    /// <summary>
    /// A new certificate for what <paramref name="previous"/> was: its exact subject, SANs, key usages, extended key
    /// usages and basic constraints, from <paramref name="issuer"/>, with a new serial and <paramref name="key"/>.
    /// </summary>
    public static IssuedCertificate Reissue(X509Certificate2 previous, PrivateKey key, TimeSpan validity, IssuerCredentials issuer, DateTime now)
    {
        PositiveValidity(validity);
        BcCertificate old = new X509CertificateParser().ReadCertificate(previous.RawData);
        var warnings = new List<string>();
        DateTime notAfter = now + validity;
        if (notAfter > issuer.NotAfter)
        {
            if (notAfter - issuer.NotAfter > TimeSpan.FromHours(1)) warnings.Add($"The renewed certificate would end {notAfter:u}, after its CA expires ({issuer.NotAfter:u}); it ends with the CA. Rotate the CA before then.");
            notAfter = issuer.NotAfter;
        }

        X509Name subject = old.SubjectDN;
        var gen = NewGenerator(issuer.Certificate.SubjectDN, subject, key, now, notAfter);
        foreach (DerObjectIdentifier oid in new[] { X509Extensions.KeyUsage, X509Extensions.ExtendedKeyUsage, X509Extensions.BasicConstraints, X509Extensions.SubjectAlternativeName })
        {
            Asn1OctetString? value = old.GetExtensionValue(oid);
            if (value is null) continue;
            bool critical = old.GetCriticalExtensionOids()?.Contains(oid.Id) == true;
            gen.AddExtension(oid, critical, Asn1Object.FromByteArray(value.GetOctets()));
        }

        gen.AddExtension(X509Extensions.SubjectKeyIdentifier, false, new SubjectKeyIdentifier(SubjectKeyId(key.SubjectPublicKeyInfo)));
        gen.AddExtension(X509Extensions.AuthorityKeyIdentifier, false, new AuthorityKeyIdentifier(IssuerKeyId(issuer.Certificate)));
        BcCertificate cert = gen.Generate(issuer.Key.Signer);
        Asn1OctetString? san = old.GetExtensionValue(X509Extensions.SubjectAlternativeName);
        return Finish(cert, key, subject, san is null ? null : GeneralNames.GetInstance(Asn1Object.FromByteArray(san.GetOctets())), warnings);
    }

    /// <summary>SHA-1 of the subjectPublicKey bits (RFC 5280 method 1), as cfssl and Go compute it.</summary>
    internal static byte[] SubjectKeyId(byte[] subjectPublicKeyInfo) => SubjectKeyId(SubjectPublicKeyInfo.GetInstance(subjectPublicKeyInfo));

    private static byte[] SubjectKeyId(SubjectPublicKeyInfo info) => SHA1.HashData(info.PublicKey.GetBytes());

    internal static byte[] IssuerKeyId(BcCertificate issuer)
    {
        Asn1OctetString? ext = issuer.GetExtensionValue(X509Extensions.SubjectKeyIdentifier);
        return ext is null ? SubjectKeyId(issuer.CertificateStructure.SubjectPublicKeyInfo) : SubjectKeyIdentifier.GetInstance(Asn1Object.FromByteArray(ext.GetOctets())).GetKeyIdentifier();
    }

    private static X509V3CertificateGenerator NewGenerator(X509Name issuer, X509Name subject, PrivateKey key, DateTime now, DateTime notAfter)
    {
        var gen = new X509V3CertificateGenerator();
        gen.SetSerialNumber(NewSerial());
        gen.SetIssuerDN(issuer);
        gen.SetSubjectDN(subject);
        gen.SetNotBefore(now - Backdate);
        gen.SetNotAfter(notAfter);
        gen.SetSubjectPublicKeyInfo(SubjectPublicKeyInfo.GetInstance(key.SubjectPublicKeyInfo));
        return gen;
    }

    private static BigInteger NewSerial()
    {
        // 20 random bytes like cfssl, top bit cleared so the DER INTEGER stays positive and within 20 octets.
        byte[] bytes = new byte[20];
        Random.NextBytes(bytes);
        bytes[0] &= 0x7F;
        bytes[0] |= 0x01;
        return new BigInteger(1, bytes);
    }

    private static void AddSans(X509V3CertificateGenerator gen, IReadOnlyList<HostName> hosts)
    {
        if (hosts.Count == 0) return;
        gen.AddExtension(X509Extensions.SubjectAlternativeName, false, SanNames(hosts));
    }

    private static GeneralNames SanNames(IReadOnlyList<HostName> hosts) => new(hosts.Select(h => h.Kind switch
    {
        HostKind.IPAddress => new GeneralName(GeneralName.IPAddress, h.Value),
        HostKind.Email => new GeneralName(GeneralName.Rfc822Name, h.Value),
        HostKind.Uri => new GeneralName(GeneralName.UniformResourceIdentifier, h.Value),
        _ => new GeneralName(GeneralName.DnsName, h.Value),
    }).ToArray());

    private static IssuedCertificate Finish(BcCertificate cert, PrivateKey key, X509Name subject, GeneralNames? sans, List<string> warnings)
    {
        Asn1Set? attributes = null;
        if (sans is not null)
        {
            var extensions = new X509Extensions(new Dictionary<DerObjectIdentifier, Org.BouncyCastle.Asn1.X509.X509Extension>
            {
                [X509Extensions.SubjectAlternativeName] = new(false, new DerOctetString(sans)),
            });
            attributes = new DerSet(new AttributePkcs(PkcsObjectIdentifiers.Pkcs9AtExtensionRequest, new DerSet(extensions)));
        }

        var csr = new Pkcs10CertificationRequest(key.Signer, subject, SubjectPublicKeyInfo.GetInstance(key.SubjectPublicKeyInfo), attributes);
        byte[] der = cert.GetEncoded();
        return new IssuedCertificate(
            Pem("CERTIFICATE", der),
            key.Pem,
            Pem("CERTIFICATE REQUEST", csr.GetEncoded()),
            CertificateFile.FromDer(der),
            warnings);
    }

    internal static string Pem(string label, byte[] der) => new string(PemEncoding.Write(label, der)) + "\n";

    internal static X509Name ToX509Name(SubjectName s)
    {
        var oids = new List<DerObjectIdentifier>();
        var values = new List<string>();
        void Add(DerObjectIdentifier oid, string? value)
        {
            if (string.IsNullOrEmpty(value)) return;
            oids.Add(oid);
            values.Add(value);
        }

        // Go's pkix.Name order, so our subjects read exactly like cfssl's.
        Add(X509Name.C, s.Country);
        Add(X509Name.ST, s.State);
        Add(X509Name.L, s.Locality);
        Add(X509Name.O, s.Organization);
        Add(X509Name.OU, s.OrganizationalUnit);
        Add(X509Name.CN, s.CommonName);
        return new X509Name(oids, values);
    }

    private static void PositiveValidity(TimeSpan validity)
    {
        if (validity <= TimeSpan.Zero)
        {
            throw new EtcdSecureException("InvalidValidity", ErrorKind.InvalidArgument, $"A certificate's validity must be positive, not {validity}.", validity);
        }
    }
}
