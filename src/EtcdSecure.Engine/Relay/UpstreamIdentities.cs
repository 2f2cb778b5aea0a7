using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using EtcdSecure.Engine.Pki;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// The certificates the proxy presents to the members on its clients' behalf, one per etcd user, from a folder of
/// its own: USER.pem with USER-key.pem beside it (what New-EtcdProxyIdentity and Enable-EtcdAuth -ProxyIdentityPath
/// write). A client whose certificate's common name is USER reaches etcd as USER, so etcd's RBAC applies to each
/// client as itself. Keyed by each certificate's common name, which is what etcd maps to a user, not by file name.
/// A file that cannot be used (half written, expired, without client auth) is left out and said so, but never keeps
/// an identity that was removed: what the folder holds now is what counts.
/// </summary>
internal sealed class UpstreamIdentities
{
    private UpstreamIdentities(IReadOnlyDictionary<string, TlsClientIdentity> byUser, IReadOnlyList<string> skipped)
    {
        ByUser = byUser;
        Skipped = skipped;
    }

    public IReadOnlyDictionary<string, TlsClientIdentity> ByUser { get; }

    /// <summary>Files left out, and why.</summary>
    public IReadOnlyList<string> Skipped { get; }

    /// <summary>The files that make up the folder now: a file added, replaced or removed is a change.</summary>
    public static string[] Files(string folder) =>
        Directory.Exists(folder) ? Directory.GetFiles(folder, "*.pem").Order(StringComparer.Ordinal).ToArray() : Array.Empty<string>();

    public static UpstreamIdentities Load(string folder, string upstreamCAPath, CipherSuitesPolicy? policy, SslProtocols protocols)
    {
        if (!Directory.Exists(folder))
        {
            throw new EtcdSecureException("IdentityPathNotFound", ErrorKind.ObjectNotFound, $"The proxy's identity folder '{folder}' does not exist.", folder);
        }

        TrustedCAs trust = TrustedCAs.Load(upstreamCAPath);
        var byUser = new Dictionary<string, TlsClientIdentity>(StringComparer.Ordinal);
        var skipped = new List<string>();
        foreach (string file in Files(folder).Where(f => !f.EndsWith("-key.pem", StringComparison.OrdinalIgnoreCase)))
        {
            string name = Path.GetFileName(file);
            string? key = BareFileNames.Beside(file, "-key.pem");
            if (key is null || !File.Exists(key))
            {
                skipped.Add($"{name}: no key beside it");
                continue;
            }

            try
            {
                X509Certificate2 cert = ServerCredentials.LoadCurrent(file, key);
                string user = cert.GetNameInfo(X509NameType.SimpleName, false);
                if (string.IsNullOrEmpty(user) || !CertificateDetails.From(cert).AllowsUsage("client auth"))
                {
                    skipped.Add($"{name}: etcd needs a common name and the client auth usage");
                }
                else if (byUser.ContainsKey(user))
                {
                    // Two files for one user: which one applies would depend on the order of a directory listing.
                    byUser.Remove(user);
                    skipped.Add($"{name}: a second certificate for user '{user}'; neither is used");
                }
                else
                {
                    byUser[user] = new TlsClientIdentity(trust, cert, policy, protocols);
                }
            }
            catch (Exception ex) when (ex is EtcdSecureException or IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                skipped.Add($"{name}: {ex.Message}");
            }
        }

        return new UpstreamIdentities(byUser, skipped);
    }
}
