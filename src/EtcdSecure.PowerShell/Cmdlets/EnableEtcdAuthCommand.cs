using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Auth;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Turns on etcd's authentication and role-based access over TLS. Until then every certificate the client CA issued
/// acts as etcd's root. After it, etcd maps a client certificate to the user named by its CN: root keeps
/// everything, users given with -ReadOnly or -ReadWrite get only their key prefixes, and a certificate whose CN is
/// no user is refused. Users get no password; their certificates are how they log in. Run it with the root client
/// certificate (CN root) against a member directly. Behind Start-EtcdProxy, give -ProxyIdentityPath: each user set
/// up here gets its upstream identity in the proxy's identity folder, and a proxy started with -IdentityPath there
/// lets each client reach etcd as itself (with -SingleIdentity, etcd would see one user for all of them). Running
/// it again adds what is new and keeps the rest.
/// </summary>
/// <example>
/// <code>
/// $c = Get-EtcdCluster prod
/// Enable-EtcdAuth -Endpoint $c.Endpoints[0] -CA $c.CAPath -Certificate $c.ClientCertificatePath -ReadOnly @{ reporting = '/app/' } -ReadWrite @{ app = '/app/' }
/// </code>
/// Enables auth; certificates with CN app may read and write keys under /app/, ones with CN reporting may only read them.
/// </example>
/// <example>
/// <code>
/// Get-EtcdCluster prod | Enable-EtcdAuth
/// </code>
/// Enables auth with only the root user, taking the endpoint and root certificate from the cluster record.
/// </example>
[Cmdlet(VerbsLifecycle.Enable, "EtcdAuth", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(EtcdAuthStatus))]
public sealed class EnableEtcdAuthCommand : EtcdClientCmdlet
{
    /// <summary>Users (certificate CNs) and the key prefix, or prefixes, each may read: @{ reporting = '/app/' }.</summary>
    [Parameter]
    public Hashtable? ReadOnly { get; set; }

    /// <summary>Users (certificate CNs) and the key prefix, or prefixes, each may read and write: @{ app = '/app/', '/jobs/' }.</summary>
    [Parameter]
    public Hashtable? ReadWrite { get; set; }

    /// <summary>
    /// A proxy's identity folder (Start-EtcdProxy -IdentityPath): every user this run sets up, root included, gets
    /// its upstream identity there (New-EtcdProxyIdentity), so each client reaches etcd through the proxy as itself.
    /// An identity the folder holds already is kept.
    /// </summary>
    [Parameter]
    public string? ProxyIdentityPath { get; set; }

    /// <summary>
    /// The CA that issues those identities: the CA the members trust for clients, with its key beside it. Default:
    /// -CA (a piped cluster's client CA), when its key is beside it.
    /// </summary>
    [Parameter]
    [CertificateTransformation]
    public EtcdCertificate? IssuerCA { get; set; }

    protected override void End()
    {
        IReadOnlyList<Uri> endpoints = Endpoints();
        var grants = Grants(ReadOnly, write: false).Concat(Grants(ReadWrite, write: true)).ToList();
        string what = "Enable auth: root (CN root) keeps everything" + (grants.Count == 0 ? "" : "; " + string.Join("; ", grants.Select(g => $"{g.User} may {(g.Write ? "read and write" : "read")} {g.Prefix}*"))) +
            "; every other certificate of the CA is refused";
        if (!ShouldProcess(endpoints[0].ToString(), what)) return;
        // The issuer is checked before anything changes in the cluster: a missing CA key must not leave auth half set up.
        Engine.Pki.IssuerCredentials? issuer = ProxyIdentityPath is null ? null : Issuer();
        AuthResult result = AuthBootstrap.EnableAsync(endpoints[0], Identity(), grants, Timeout, CancelToken).GetAwaiter().GetResult();
        if (issuer is not null)
        {
            string folder = ResolveLocalPath(ProxyIdentityPath!);
            foreach (string user in result.Users)
            {
                var (files, issued) = ProxyIdentities.Issue(folder, user, issuer, null, force: false, DateTime.UtcNow);
                WriteVerbose(issued ? $"Issued the proxy's upstream identity of '{user}': {files.Certificate}" : $"The proxy's upstream identity of '{user}' is there already: {files.Certificate}");
            }
        }

        WriteObject(new EtcdAuthStatus
        {
            Endpoint = result.Endpoint.GetLeftPart(UriPartial.Authority),
            Enabled = true,
            WasEnabled = result.WasEnabled,
            Users = result.Users.ToArray(),
            Roles = result.Roles.ToArray(),
        });
    }

    private Engine.Pki.IssuerCredentials Issuer()
    {
        string? caPath = IssuerCA?.Path ?? CA?.Path ?? Environment.GetEnvironmentVariable("ETCDCTL_CACERT");
        string? keyPath = IssuerCA?.KeyPath ?? (caPath is null ? null : Engine.Pki.BareFileNames.Beside(caPath, "-key.pem"));
        if (caPath is null || keyPath is null || !System.IO.File.Exists(keyPath))
        {
            throw new EtcdSecureException("CAKeyNotFound", ErrorKind.ObjectNotFound,
                $"-ProxyIdentityPath needs the CA that issues the members' client certificates, with its key: give -IssuerCA (its key as NAME-key.pem beside it){(caPath is null ? "" : $"; '{caPath}' has none beside it")}.", caPath);
        }

        return Engine.Pki.IssuerCredentials.Load(caPath, keyPath, DateTime.UtcNow);
    }

    private static IEnumerable<PrefixGrant> Grants(Hashtable? table, bool write)
    {
        if (table is null) yield break;
        foreach (DictionaryEntry e in table)
        {
            string user = e.Key?.ToString() ?? "";
            object value = e.Value is PSObject p ? p.BaseObject : e.Value!;
            IEnumerable<object?> prefixes = value is string or null ? new[] { value } : value is IEnumerable many ? many.Cast<object?>() : new[] { value };
            foreach (object? prefix in prefixes)
            {
                string text = (prefix is PSObject pp ? pp.BaseObject : prefix)?.ToString() ?? "";
                if (text.Length == 0)
                {
                    throw new EtcdSecureException("InvalidGrant", ErrorKind.InvalidArgument,
                        $"User '{user}' was given an empty prefix, which would be every key; give a prefix such as '/app/', or use the root certificate for everything.", user);
                }

                yield return new PrefixGrant(user, text, write);
            }
        }
    }
}
