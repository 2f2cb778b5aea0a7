using System;
using System.Collections.Generic;
using System.Linq;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.Engine.Relay;

/// <summary>What would make the proxy fail later with a bare "bad certificate", said before it starts.</summary>
public static class ProxyPreflight
{
    public static void Check(ProxyOptions o)
    {
        var reasons = new List<string>();
        var (serving, servingReasons) = CertificateValidator.Test(new CertificateCheck(o.Server.CertificatePath, o.Server.KeyPath, null, null, CertificateRole.Any,
            MemberPreflight.HostsOf(new[] { o.Listen })));
        reasons.AddRange(servingReasons);
        if (!serving.AllowsUsage("server auth"))
        {
            reasons.Add($"The serving certificate '{o.Server.CertificatePath}' lacks the 'server auth' extended key usage: clients refuse it.");
        }

        reasons.AddRange(CertificateValidator.Test(new CertificateCheck(o.Upstream.CertificatePath, o.Upstream.KeyPath, o.UpstreamCAPath, null, CertificateRole.Client)).Reasons
            .Select(r => r + " (the upstream certificate the proxy presents to the members)"));
        if (o.ClientCAPath is { } caPath)
        {
            // The same load the proxy does, so a CRL from the wrong CA or a bad pattern stops the start, not a client.
            ClientPolicy.Load(caPath, o.CrlPaths, o.AllowedClients.Count > 0 ? new Tls.ClientAllowList(o.AllowedClients) : null);
        }
        else if (o.CrlPaths.Count > 0 || o.AllowedClients.Count > 0)
        {
            throw new EtcdSecureException("ClientCARequired", ErrorKind.InvalidArgument,
                "-CrlPath and -AllowedClient judge client certificates, so they need a client CA: they cannot go with -AllowClientsWithoutCertificate.", "-AllowClientsWithoutCertificate");
        }

        if (o.IdentityPath is { } identityPath)
        {
            // The same load the proxy does: a missing folder stops the start, and what it cannot use is said now.
            UpstreamIdentities identities = UpstreamIdentities.Load(identityPath, o.UpstreamCAPath, null, Tls.TlsPolicy.Protocols);
            reasons.AddRange(identities.Skipped.Select(s => $"Upstream identity {s} (in -IdentityPath '{identityPath}')."));
            if (o.FallbackIdentity is { } fallback && !identities.ByUser.ContainsKey(fallback))
            {
                throw new EtcdSecureException("FallbackIdentityNotFound", ErrorKind.ObjectNotFound,
                    $"-FallbackIdentity '{fallback}' has no identity in '{identityPath}' (a certificate whose common name is '{fallback}'); New-EtcdProxyIdentity makes one.", fallback);
            }
        }

        if (reasons.Count > 0)
        {
            throw new EtcdSecureException("ProxyCertificateInvalid", ErrorKind.InvalidData,
                $"The proxy would not work with these certificates:{Environment.NewLine}- " + string.Join(Environment.NewLine + "- ", reasons.Distinct()),
                o.Server.CertificatePath);
        }
    }
}
