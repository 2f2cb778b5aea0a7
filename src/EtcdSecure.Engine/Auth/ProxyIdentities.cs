using System;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography.X509Certificates;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.Engine.Auth;

/// <summary>
/// A proxy's identity folder: for each etcd user a client certificate whose common name is that user (USER.pem,
/// USER-key.pem mode 0600), issued from the cluster's client CA, which the proxy presents upstream for that user's
/// clients (Start-EtcdProxy -IdentityPath). The folder is made 0700: whoever reads it can act as every user in it.
/// </summary>
public static class ProxyIdentities
{
    /// <summary>Issues USER's identity into the folder; an identity the folder holds for USER already is kept (false) unless <paramref name="force"/>.</summary>
    /// <remarks>Identities get ECDSA P-256 keys, as cfssl's default: only the proxy uses them, and it signs with them per connection.</remarks>
    public static (BareFileNames Files, bool Issued) Issue(string folder, string user, IssuerCredentials issuer, TimeSpan? validity, bool force, DateTime now)
    {
        if (string.IsNullOrEmpty(user) || user.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || user.StartsWith('.') || user.EndsWith("-key", StringComparison.Ordinal))
        {
            throw new EtcdSecureException("InvalidUserName", ErrorKind.InvalidArgument, $"'{user}' cannot name an identity file; etcd user names used through the proxy must be plain file names.", user);
        }

        Directory.CreateDirectory(folder);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        BareFileNames files = BareFileNames.For(folder, user);
        // -Force replaces only an identity of this user; any other file of that name is left alone (FileExists).
        bool identity = File.Exists(files.Certificate) && CommonNameOf(files.Certificate) == user;
        if (identity && !force) return (files, false);
        IssuedCertificate issued = CertificateIssuer.Issue(new SubjectName(user), Array.Empty<HostName>(), KeySpec.Create(KeyAlgorithm.Ecdsa, null), SigningConfig.BuiltInOnly.Resolve("Client"), validity, issuer, now);
        PemFileSet.Write(files, issued, force: identity);
        CertificateLedger.Record(issuer.CertificatePath, issued.Certificate, files.Certificate, "Client", now);
        return (files, true);
    }

    /// <summary>
    /// Removes USER's identity (certificate, key and CSR) when the folder's USER.pem is USER's: a file of that name
    /// that is something else is not this module's to delete. False when there was none.
    /// </summary>
    public static bool Remove(string folder, string user)
    {
        BareFileNames files = BareFileNames.For(folder, user);
        if (!File.Exists(files.Certificate)) return false;
        if (CommonNameOf(files.Certificate) != user)
        {
            throw new EtcdSecureException("NotAnIdentity", ErrorKind.InvalidData, $"'{files.Certificate}' is not the identity of user '{user}' (its common name differs); it was left alone.", files.Certificate);
        }

        foreach (string f in files.All) File.Delete(f);
        return true;
    }

    private static string? CommonNameOf(string certificatePath)
    {
        try
        {
            return CertificateFile.LoadFirst(certificatePath).GetNameInfo(X509NameType.SimpleName, false);
        }
        catch (EtcdSecureException)
        {
            return null;
        }
    }
}
