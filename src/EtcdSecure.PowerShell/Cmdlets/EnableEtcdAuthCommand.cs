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
/// certificate (CN root) against a member directly: through Start-EtcdProxy every request reaches etcd under the
/// proxy's own upstream certificate, so etcd sees one user for all of the proxy's clients. Running it again adds
/// what is new and keeps the rest.
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

    protected override void End()
    {
        IReadOnlyList<Uri> endpoints = Endpoints();
        var grants = Grants(ReadOnly, write: false).Concat(Grants(ReadWrite, write: true)).ToList();
        string what = "Enable auth: root (CN root) keeps everything" + (grants.Count == 0 ? "" : "; " + string.Join("; ", grants.Select(g => $"{g.User} may {(g.Write ? "read and write" : "read")} {g.Prefix}*"))) +
            "; every other certificate of the CA is refused";
        if (!ShouldProcess(endpoints[0].ToString(), what)) return;
        AuthResult result = AuthBootstrap.EnableAsync(endpoints[0], Identity(), grants, Timeout, CancelToken).GetAwaiter().GetResult();
        WriteObject(new EtcdAuthStatus
        {
            Endpoint = result.Endpoint.GetLeftPart(UriPartial.Authority),
            Enabled = true,
            WasEnabled = result.WasEnabled,
            Users = result.Users.ToArray(),
            Roles = result.Roles.ToArray(),
        });
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
