using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography.X509Certificates;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// Who may use the proxy: a client certificate that chains to the client CA bundle for client auth (checked by the
/// TLS stack with this bundle's policy), that no CRL of that bundle revokes, and, when an allow list is given, whose
/// common name or a subject alternative name the list matches. The CA bundle and the CRLs are loaded together,
/// since a CRL counts only when a CA of the bundle signed it.
/// </summary>
internal sealed class ClientPolicy
{
    private ClientPolicy(TrustedCAs trust, RevocationList? revoked, ClientAllowList? allowed)
    {
        Trust = trust;
        Revoked = revoked;
        Allowed = allowed;
    }

    public TrustedCAs Trust { get; }
    public RevocationList? Revoked { get; }
    public ClientAllowList? Allowed { get; }

    public static ClientPolicy Load(string caPath, IReadOnlyList<string> crlPaths, ClientAllowList? allowed)
    {
        TrustedCAs trust = TrustedCAs.Load(caPath);
        return new ClientPolicy(trust, crlPaths.Count > 0 ? RevocationList.Load(crlPaths, trust) : null, allowed);
    }

    /// <summary>Null when the client is in; otherwise the refusal reason (a counter name) and a sentence for the log.</summary>
    public (string Reason, string Detail)? Judge(X509Certificate? certificate, X509Chain? chain, System.Net.Security.SslPolicyErrors errors)
    {
        if (certificate is null) return ("NoClientCertificate", "no client certificate");
        string subject = certificate.Subject;
        if ((errors & System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) != 0 || chain is null)
        {
            return ("UntrustedClientCertificate", $"client certificate '{subject}' refused: {(chain is null ? "no chain" : TrustedCAs.Describe(chain))}");
        }

        if (Revoked?.RevokedIn(chain) is { } revoked) return ("Revoked", $"client certificate '{subject}' refused: {revoked}");
        if (Allowed is not null)
        {
            using var leaf = new X509Certificate2(certificate);
            if (Allowed.Match(leaf) is null)
            {
                return ("ClientNotAllowed", $"client certificate '{subject}' refused: none of its names ({string.Join(", ", ClientAllowList.NamesOf(leaf))}) matches -AllowedClient {string.Join(", ", Allowed.Patterns)}");
            }
        }

        return null;
    }
}
