using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Authpb;
using EtcdSecure.Engine.Health;
using Etcdserverpb;
using Grpc.Core;

namespace EtcdSecure.Engine.Auth;

/// <summary>One user a certificate maps to (its CN), with the key prefixes it may read, or read and write.</summary>
public sealed record PrefixGrant(string User, string Prefix, bool Write);

/// <summary>What Enable-EtcdAuth did.</summary>
public sealed record AuthResult(Uri Endpoint, bool? WasEnabled, IReadOnlyList<string> Users, IReadOnlyList<string> Roles);

/// <summary>
/// Turns etcd's RBAC on over TLS, so that a client certificate is no longer root by virtue of being issued by the
/// CA: with client-cert-auth, etcd takes the certificate's CN as the user name. The root user (CN root) gets the
/// root role; every other user gets only the prefixes granted to it. Users have no password: only their
/// certificates log them in. Safe to run again: what exists already is kept.
/// </summary>
public static class AuthBootstrap
{
    public static async Task<AuthResult> EnableAsync(Uri endpoint, TlsClientIdentity identity, IReadOnlyList<PrefixGrant> grants, TimeSpan timeout, CancellationToken cancel)
    {
        string? cn = identity.ClientCertificate?.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, false);
        if (!string.Equals(cn, "root", StringComparison.Ordinal))
        {
            throw new EtcdSecureException("RootCertificateRequired", ErrorKind.InvalidArgument,
                $"The client certificate's CN is '{cn}', but once auth is on etcd maps a certificate to the user of its CN, and only root may enable auth and manage users. Give a certificate with CN root.",
                identity.ClientCertificate?.Subject);
        }

        foreach (PrefixGrant g in grants)
        {
            if (string.IsNullOrEmpty(g.User) || g.User == "root")
            {
                throw new EtcdSecureException("InvalidGrant", ErrorKind.InvalidArgument, $"'{g.User}' cannot be given a prefix: root already has everything, and a user needs a name.", g.User);
            }
        }

        using EtcdEndpointClient c = EtcdEndpointClient.Open(endpoint, identity);
        DateTime Deadline() => DateTime.UtcNow + timeout;
        var users = new List<string>();
        var roles = new List<string>();
        async Task Tolerate(Func<Task> call, string alreadyExists)
        {
            try
            {
                await call().ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.Status.Detail.Contains(alreadyExists, StringComparison.OrdinalIgnoreCase))
            {
            }
        }

        bool? wasEnabled;
        try
        {
            wasEnabled = (await c.Client.AuthStatusAsync(new AuthStatusRequest(), deadline: Deadline(), cancellationToken: cancel).ConfigureAwait(false)).Enabled;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unimplemented)
        {
            // etcd before 3.5 has no AuthStatus, and its auth enable succeeds either way: ask as the audit does.
            wasEnabled = await IsEnabledAsync(c, Deadline(), cancel).ConfigureAwait(false);
        }

        await Tolerate(() => c.Client.UserAddAsync(new AuthUserAddRequest { Name = "root", Options = new UserAddOptions { NoPassword = true } }, deadline: Deadline(), cancellationToken: cancel), "already exists").ConfigureAwait(false);
        await Tolerate(() => c.Client.RoleAddAsync(new AuthRoleAddRequest { Name = "root" }, deadline: Deadline(), cancellationToken: cancel), "already exists").ConfigureAwait(false);
        await c.Client.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = "root", Role = "root" }, deadline: Deadline(), cancellationToken: cancel).ConfigureAwait(false);
        users.Add("root");
        roles.Add("root");

        foreach (IGrouping<string, PrefixGrant> user in grants.GroupBy(g => g.User, StringComparer.Ordinal))
        {
            await Tolerate(() => c.Client.UserAddAsync(new AuthUserAddRequest { Name = user.Key, Options = new UserAddOptions { NoPassword = true } }, deadline: Deadline(), cancellationToken: cancel), "already exists").ConfigureAwait(false);
            users.Add(user.Key);
            foreach (PrefixGrant g in user)
            {
                // One role per user and prefix, named for what it allows, so that etcdctl role get explains itself.
                string role = $"{g.User}-{(g.Write ? "readwrite" : "read")}-{Sanitize(g.Prefix)}";
                await Tolerate(() => c.Client.RoleAddAsync(new AuthRoleAddRequest { Name = role }, deadline: Deadline(), cancellationToken: cancel), "already exists").ConfigureAwait(false);
                var perm = new Permission
                {
                    PermType = g.Write ? Permission.Types.Type.Readwrite : Permission.Types.Type.Read,
                    Key = Google.Protobuf.ByteString.CopyFromUtf8(g.Prefix),
                    RangeEnd = Google.Protobuf.ByteString.CopyFrom(PrefixEnd(Encoding.UTF8.GetBytes(g.Prefix))),
                };
                await c.Client.RoleGrantPermissionAsync(new AuthRoleGrantPermissionRequest { Name = role, Perm = perm }, deadline: Deadline(), cancellationToken: cancel).ConfigureAwait(false);
                await c.Client.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = g.User, Role = role }, deadline: Deadline(), cancellationToken: cancel).ConfigureAwait(false);
                roles.Add(role);
            }
        }

        if (wasEnabled != true)
        {
            try
            {
                await c.Client.AuthEnableAsync(new AuthEnableRequest(), deadline: Deadline(), cancellationToken: cancel).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.Status.Detail.Contains("authentication is already enabled", StringComparison.OrdinalIgnoreCase))
            {
                wasEnabled = true;
            }
        }

        return new AuthResult(endpoint, wasEnabled, users, roles);
    }

    /// <summary>
    /// Whether etcd's auth is on, on any etcd version: an Authenticate call for a user that does not exist, which etcd
    /// answers "authentication is not enabled" before it looks at the name. Any other failure (the transport, a TLS
    /// refusal, which also reads "Authentication failed" in SslStream's words) is thrown: nothing was learnt.
    /// </summary>
    public static async Task<bool> IsEnabledAsync(EtcdEndpointClient c, DateTime deadline, CancellationToken cancel)
    {
        try
        {
            await c.Client.AuthenticateAsync(new AuthenticateRequest { Name = "etcdsecure-probe", Password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)) },
                deadline: deadline, cancellationToken: cancel).ConfigureAwait(false);
            return true;
        }
        catch (RpcException ex) when (FromEtcd(ex, "authentication is not enabled"))
        {
            return false;
        }
        catch (RpcException ex) when (FromEtcd(ex, "authentication failed"))
        {
            return true;
        }
    }

    /// <summary>Whether etcd itself answered with this error, as against the transport or the client library.</summary>
    internal static bool FromEtcd(RpcException ex, string error) =>
        ex.Status.Detail.StartsWith("etcdserver: " + error, StringComparison.Ordinal);

    /// <summary>The end of the range of keys with this prefix, as etcdctl --prefix computes it; "" means every key.</summary>
    internal static byte[] PrefixEnd(byte[] prefix)
    {
        byte[] end = (byte[])prefix.Clone();
        for (int i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return end[..(i + 1)];
            }
        }

        return new byte[] { 0 };
    }

    private static string Sanitize(string prefix)
    {
        string s = new(prefix.Select(ch => char.IsLetterOrDigit(ch) ? ch : '_').ToArray());
        s = s.Trim('_');
        return s.Length == 0 ? "all" : s;
    }
}
