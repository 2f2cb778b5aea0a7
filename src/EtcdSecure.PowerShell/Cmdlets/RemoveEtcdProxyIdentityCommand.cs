using System;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Auth;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Takes etcd users' upstream identities out of a proxy's identity folder. A proxy started with -IdentityPath on that
/// folder then refuses those users' clients (NoUpstreamIdentity), or sends them as its -FallbackIdentity, within a
/// second, and cuts their open connections off. Only a file that is that user's identity is deleted.
/// </summary>
/// <example>
/// <code>
/// Remove-EtcdProxyIdentity -Path ./proxy-identities -User app
/// </code>
/// Clients with CN app can no longer reach etcd through the proxy.
/// </example>
/// <example>
/// <code>
/// Remove-EtcdProxyIdentity -Path ./proxy-identities -User contractor-1, contractor-2 -WhatIf
/// </code>
/// Shows which identity files would go, and removes nothing.
/// </example>
[Cmdlet(VerbsCommon.Remove, "EtcdProxyIdentity", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
public sealed class RemoveEtcdProxyIdentityCommand : EtcdCmdlet
{
    /// <summary>The proxy's identity folder.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    public string Path { get; set; } = "";

    /// <summary>The etcd users whose identities go.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Users", "CommonName")]
    [ValidateNotNullOrEmpty]
    public string[] User { get; set; } = Array.Empty<string>();

    protected override void Process()
    {
        string folder = ResolveLocalPath(Path);
        foreach (string user in User)
        {
            if (!ShouldProcess(System.IO.Path.Combine(folder, user + ".pem"), $"Remove the upstream identity of etcd user '{user}'")) continue;
            if (!ProxyIdentities.Remove(folder, user))
            {
                WriteError(new ErrorRecord(new System.IO.FileNotFoundException($"'{folder}' holds no identity of user '{user}'."), "IdentityNotFound", ErrorCategory.ObjectNotFound, user));
            }
        }
    }
}
