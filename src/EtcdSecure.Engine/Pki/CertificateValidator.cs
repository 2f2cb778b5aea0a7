using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.X509;

namespace EtcdSecure.Engine.Pki;

public enum CertificateRole { Any, Server, Client, Peer, CA }

/// <summary>What Test-EtcdCertificate checks, each failure a sentence naming the file and the fix.</summary>
public sealed record CertificateCheck(
    string CertificatePath,
    string? KeyPath = null,
    string? CAPath = null,
    string? CAKeyPath = null,
    CertificateRole Role = CertificateRole.Any,
    IReadOnlyList<HostName>? Hosts = null,
    DateTime? At = null);

public static class CertificateValidator
{
    public static (CertificateDetails Details, IReadOnlyList<string> Reasons) Test(CertificateCheck check)
    {
        DateTime at = check.At ?? DateTime.UtcNow;
        var reasons = new List<string>();
        X509Certificate2 cert = CertificateFile.LoadFirst(check.CertificatePath);
        CertificateDetails d = CertificateDetails.From(cert);
        string name = $"'{check.CertificatePath}' ({d.CommonName})";

        if (d.NotBefore > at) reasons.Add($"{name} is not valid yet: it starts {d.NotBefore:u}. Check the clocks, or wait.");
        if (d.NotAfter < at) reasons.Add($"{name} expired {d.NotAfter:u} ({(at - d.NotAfter).TotalDays:N0} days ago). Issue a new one.");

        CheckRole(check.Role, d, name, reasons);

        foreach (HostName host in check.Hosts ?? Array.Empty<HostName>())
        {
            if (Hosts.Covers(d.DnsNames, d.IPAddresses, host)) continue;
            if (host.Kind == HostKind.IPAddress && d.DnsNames.Contains(host.Value))
            {
                reasons.Add($"{name} lists {host.Value} as a DNS name, but TLS clients check an IP address against IP SANs only: re-issue it with {host.Value} as a host so it becomes an IP SAN.");
            }
            else
            {
                string have = string.Join(", ", d.DnsNames.Concat(d.IPAddresses.Select(i => i.ToString())));
                reasons.Add($"{name} does not cover {(host.Kind == HostKind.IPAddress ? "the IP address" : "the host name")} {host.Value}; its SANs are: {(have.Length == 0 ? "none" : have)}. Clients connecting to {host.Value} will reject it.");
            }
        }

        if (check.KeyPath is { } keyPath)
        {
            try
            {
                PrivateKey key = PrivateKey.Load(keyPath);
                if (!key.Matches(cert))
                {
                    reasons.Add($"The private key '{keyPath}' does not belong to {name}: etcd fails with \"private key does not match public key\".");
                }
            }
            catch (EtcdSecureException ex) when (ex.ErrorId is "EncryptedPrivateKey" or "NotAPrivateKey" or "MalformedPrivateKey" or "UnsupportedKeyAlgorithm" or "FileNotFound")
            {
                reasons.Add(ex.Message);
            }
        }

        if (check.CAPath is { } caPath)
        {
            CheckChain(check, cert, d, caPath, at, name, reasons);
        }

        return (d, reasons);
    }

    private static void CheckRole(CertificateRole role, CertificateDetails d, string name, List<string> reasons)
    {
        switch (role)
        {
            case CertificateRole.CA:
                if (!d.IsCA) reasons.Add($"{name} is not a CA certificate (basic constraints CA:FALSE or absent), so it cannot sign certificates.");
                if (d.KeyUsages.Count > 0 && !d.KeyUsages.Contains("cert sign")) reasons.Add($"{name} lacks the 'cert sign' key usage a CA needs.");
                return;
            case CertificateRole.Server:
            case CertificateRole.Peer:
                if (!d.AllowsUsage("server auth")) reasons.Add($"{name} lacks the 'server auth' extended key usage a {role.ToString().ToLowerInvariant()} certificate needs: clients refuse it with \"incompatible key usage\".");
                if (!d.AllowsUsage("client auth"))
                {
                    reasons.Add(role == CertificateRole.Peer
                        ? $"{name} lacks the 'client auth' extended key usage: members dial each other with their peer certificate, and the other side refuses it (\"bad certificate\")."
                        : $"{name} lacks the 'client auth' extended key usage: etcd's gRPC gateway dials the member with its own server certificate and fails with \"bad certificate\".");
                }

                if (!d.HasSan) reasons.Add($"{name} has no subject alternative names: Go 1.15+ ignores the common name, so every client rejects it. Re-issue it with hosts.");
                break;
            case CertificateRole.Client:
                if (!d.AllowsUsage("client auth")) reasons.Add($"{name} lacks the 'client auth' extended key usage: etcd rejects it as a client certificate (\"bad certificate\").");
                break;
        }

        if (role != CertificateRole.Any && d.IsCA) reasons.Add($"{name} is a CA certificate; etcd needs a leaf certificate for a {role.ToString().ToLowerInvariant()}.");
    }

    private static void CheckChain(CertificateCheck check, X509Certificate2 cert, CertificateDetails d, string caPath, DateTime at, string name, List<string> reasons)
    {
        // A CA file may be a bundle (old and new CA during a rotation): the certificate is checked against the CA in
        // it that issued it, as etcd and Go pick the issuer from the trusted pool.
        IReadOnlyList<X509Certificate2> cas = CertificateFile.Load(caPath);
        bool Named(X509Certificate2 c) => cert.IssuerName.RawData.AsSpan().SequenceEqual(c.SubjectName.RawData);
        X509Certificate2 ca = cas.FirstOrDefault(c => Named(c) && Signs(c, cert)) ?? cas.FirstOrDefault(Named) ?? cas[0];
        CertificateDetails cad = CertificateDetails.From(ca);
        string caName = cas.Count == 1 ? $"the CA '{caPath}' ({cad.CommonName})" : $"the CA {cad.CommonName} of the bundle '{caPath}'";
        if (cas.Count > 1 && !cas.Any(Named))
        {
            reasons.Add($"{name} was issued by \"{d.Issuer}\", which is none of the {cas.Count} CAs in '{caPath}'.");
            return;
        }

        if (!cad.IsCA) reasons.Add($"{caName} is not a CA certificate.");
        if (cad.NotAfter < at) reasons.Add($"{caName} expired {cad.NotAfter:u}; nothing it signed verifies any more.");
        if (cad.NotBefore > at) reasons.Add($"{caName} is not valid before {cad.NotBefore:u}.");

        if (!cert.IssuerName.RawData.AsSpan().SequenceEqual(ca.SubjectName.RawData))
        {
            reasons.Add($"{name} was issued by \"{d.Issuer}\", not by {caName} (\"{cad.Subject}\").");
        }
        else
        {
            if (!Signs(ca, cert))
            {
                reasons.Add($"{name} names {caName} as its issuer, but its signature does not verify with that CA's key: it was signed by another CA with the same name.");
            }
        }

        if (d.AuthorityKeyId is { } aki && cad.SubjectKeyId is { } ski && !string.Equals(aki, ski, StringComparison.OrdinalIgnoreCase))
        {
            reasons.Add($"{name} has authority key id {aki}, but {caName} has subject key id {ski}: verifiers that build chains by key id will not find the CA.");
        }

        if (check.CAKeyPath is { } caKeyPath)
        {
            try
            {
                if (!PrivateKey.Load(caKeyPath).Matches(ca))
                {
                    reasons.Add($"The CA key '{caKeyPath}' does not belong to {caName}: certificates signed with it will not verify.");
                }
            }
            catch (EtcdSecureException ex) when (ex.ErrorId is "EncryptedPrivateKey" or "NotAPrivateKey" or "MalformedPrivateKey" or "UnsupportedKeyAlgorithm" or "FileNotFound")
            {
                reasons.Add(ex.Message);
            }
        }
    }

    /// <summary>Whether <paramref name="ca"/>'s key made <paramref name="cert"/>'s signature: the one place this is decided.</summary>
    internal static bool Signs(X509Certificate2 ca, X509Certificate2 cert)
    {
        try
        {
            ToBc(cert).Verify(ToBc(ca).GetPublicKey());
            return true;
        }
        catch (Exception ex) when (ex is Org.BouncyCastle.Security.InvalidKeyException or Org.BouncyCastle.Security.Certificates.CertificateException or Org.BouncyCastle.Crypto.CryptoException or InvalidOperationException or ArgumentException)
        {
            return false;
        }
    }

    private static Org.BouncyCastle.X509.X509Certificate ToBc(X509Certificate2 c) => new X509CertificateParser().ReadCertificate(c.RawData);
}
