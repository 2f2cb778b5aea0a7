using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EtcdSecure.Engine.Tls;

/// <summary>
/// The CA certificates a peer's certificate must chain to: every certificate in the file, so a CA can be rotated
/// with an overlap (old and new in one bundle). Chains are built against these alone, never the system store, and
/// never with anything fetched from the network: a certificate's AIA or CRL addresses are a peer's words, and
/// following them would let anyone who can open a connection make this process dial out and wait.
/// </summary>
public sealed class TrustedCAs
{
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    public TrustedCAs(IReadOnlyList<X509Certificate2> certificates, string? path = null)
    {
        if (certificates.Count == 0) throw new ArgumentException("A trust bundle needs at least one certificate.", nameof(certificates));
        Certificates = certificates;
        Path = path;
    }

    public IReadOnlyList<X509Certificate2> Certificates { get; }

    /// <summary>The file the bundle came from, for messages.</summary>
    public string? Path { get; }

    public X509Certificate2 First => Certificates[0];

    public static TrustedCAs Load(string path) => new(Pki.CertificateFile.Load(path), path);

    /// <summary>
    /// A new chain policy for one validation (SslStream adds the certificates the peer sent to its extra store, so a
    /// policy is never shared between handshakes). Revocation is not the chain's business: CRLs are checked from local
    /// files by <see cref="RevocationList"/>.
    /// </summary>
    public X509ChainPolicy ChainPolicy(string usage)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.AddRange(Certificates.ToArray());
        policy.ApplicationPolicy.Add(new Oid(usage));
        return policy;
    }

    /// <summary>Whether <paramref name="certificate"/> chains to this bundle for <paramref name="usage"/>; when not, why.</summary>
    public bool Verify(X509Certificate certificate, string usage, out string? problem, IEnumerable<X509Certificate2>? sentAlongside = null)
    {
        using var chain = new X509Chain { ChainPolicy = ChainPolicy(usage) };
        if (sentAlongside is not null) chain.ChainPolicy.ExtraStore.AddRange(sentAlongside.ToArray());
        using var leaf = new X509Certificate2(certificate);
        problem = chain.Build(leaf) ? null : Describe(chain);
        return problem is null;
    }

    /// <summary>The chain's own reasons in one line.</summary>
    public static string Describe(X509Chain chain)
    {
        string[] reasons = chain.ChainStatus.Where(s => s.Status != X509ChainStatusFlags.NoError).Select(s => s.StatusInformation.Trim()).Distinct().ToArray();
        return reasons.Length > 0 ? string.Join("; ", reasons) : "the chain does not verify";
    }
}
