using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Security;
using System.Security.Authentication;

namespace EtcdSecure.Engine.Tls;

/// <summary>
/// The protocol versions and cipher suites every TLS connection of this module offers: TLS 1.3, and TLS 1.2 with
/// forward secrecy (ECDHE) and an AEAD cipher only, as Go's crypto/tls (and so etcd) prefers them. CBC suites are
/// left out (LUCKY13), and so are static-RSA key exchange and SHA-1 MACs.
/// </summary>
public static class TlsPolicy
{
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    public static readonly IReadOnlyList<TlsCipherSuite> DefaultCipherSuites = new[]
    {
        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    };

    private static readonly CipherSuitesPolicy? DefaultPolicy = Create(DefaultCipherSuites);

    /// <summary>The default suites as a policy; null where the platform has no per-connection policy (Windows uses the system's).</summary>
    public static CipherSuitesPolicy? Default => DefaultPolicy;

    public static CipherSuitesPolicy? Create(IReadOnlyList<TlsCipherSuite> suites) =>
        OperatingSystem.IsWindows() ? null : new CipherSuitesPolicy(suites);

    /// <summary>
    /// The versions a list of suites can serve: OpenSSL refuses a version that is enabled with none of its suites,
    /// so a list of TLS 1.2 suites alone turns TLS 1.3 off, and the other way round.
    /// </summary>
    public static SslProtocols ProtocolsFor(IReadOnlyList<TlsCipherSuite>? suites)
    {
        if (suites is null) return Protocols;
        bool tls13 = suites.Any(IsTls13);
        bool tls12 = suites.Any(s => !IsTls13(s));
        return (tls13 ? SslProtocols.Tls13 : SslProtocols.None) | (tls12 ? SslProtocols.Tls12 : SslProtocols.None);
    }

    // TLS 1.3 suites name no key exchange or signature: TLS_AES_..., TLS_CHACHA20_..., TLS_AES_128_CCM_...
    internal static bool IsTls13(TlsCipherSuite s) => !s.ToString().Contains("_WITH_", StringComparison.Ordinal);

    /// <summary>Reads suite names as IANA spells them (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), case-insensitively.</summary>
    public static IReadOnlyList<TlsCipherSuite> Parse(IEnumerable<string> names, string parameter)
    {
        var suites = new List<TlsCipherSuite>();
        foreach (string name in names.SelectMany(n => n.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (!Enum.TryParse(name, ignoreCase: true, out TlsCipherSuite suite) || int.TryParse(name, out _))
            {
                throw new EtcdSecureException("UnknownCipherSuite", ErrorKind.InvalidArgument,
                    $"'{name}' is not a TLS cipher suite name. Use IANA names such as {DefaultCipherSuites[0]} or {DefaultCipherSuites[4]}.", parameter);
            }

            if (!suites.Contains(suite)) suites.Add(suite);
        }

        if (suites.Count == 0) throw new EtcdSecureException("UnknownCipherSuite", ErrorKind.InvalidArgument, "Give at least one cipher suite.", parameter);
        return suites;
    }
}
