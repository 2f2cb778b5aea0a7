using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.Relay;
using EtcdSecure.Engine.State;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Writes a systemd unit for a member or a proxy this module started, so that what was tried in a shell runs as a
/// service unchanged: a member as etcd with exactly the flags Start-EtcdMember used (Type=notify: etcd tells systemd
/// when it serves), a proxy as pwsh running Start-EtcdProxy -Wait with the same options (written beside the unit as
/// ETCD-PROXY-NAME.json), stopped cleanly by systemd's SIGTERM. Both restart on failure.
/// </summary>
/// <remarks>
/// Under systemd a member logs to the journal (journalctl -u etcd-NAME) rather than to its log file. The proxy unit
/// imports the module from where it is loaded now; install the module where the service's user finds it, and export
/// again if it moves.
/// </remarks>
/// <example>
/// <code>
/// Get-EtcdMember | Export-EtcdServiceUnit -Path /etc/systemd/system -User etcd
/// systemctl daemon-reload; systemctl enable --now etcd-n1 etcd-n2 etcd-n3
/// </code>
/// Turns the members started in a shell into services run as the user etcd (stop the shell's members first: the same ports and data dirs).
/// </example>
/// <example>
/// <code>
/// Get-EtcdProxy etcd-proxy | Export-EtcdServiceUnit -Path /etc/systemd/system
/// </code>
/// Writes etcd-proxy-etcd-proxy.service and etcd-proxy-etcd-proxy.json, the proxy's options, beside it.
/// </example>
[Cmdlet(VerbsData.Export, "EtcdServiceUnit", SupportsShouldProcess = true, DefaultParameterSetName = ByObject)]
[OutputType(typeof(FileInfo))]
public sealed class ExportEtcdServiceUnitCommand : EtcdCmdlet
{
    private const string ByObject = "InputObject";
    private const string ByMember = "Member";
    private const string ByProxy = "Proxy";

    /// <summary>A member (from Get-EtcdMember or Start-EtcdMember) or a proxy (from Get-EtcdProxy or Start-EtcdProxy).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ByObject)]
    public object? InputObject { get; set; }

    /// <summary>The name of a member this module started, in any session.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ByMember)]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string? Member { get; set; }

    /// <summary>The name of a proxy: a job of this session, or a detached one.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ByProxy)]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string? Proxy { get; set; }

    /// <summary>The folder to write to (created when missing). Default: the current location.</summary>
    [Parameter(Position = 0)]
    public string Path { get; set; } = ".";

    /// <summary>The user the service runs as (User=). Default: systemd's, root for system units.</summary>
    [Parameter]
    public string? User { get; set; }

    /// <summary>Replace files that exist.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void Process()
    {
        string dir = ResolveLocalPath(Path);
        object target = ParameterSetName switch
        {
            ByMember => new EtcdMember { Name = Member! },
            ByProxy => new EtcdProxyInfo { Name = Proxy! },
            _ => InputObject is PSObject pso ? pso.BaseObject : InputObject!,
        };
        switch (target)
        {
            case EtcdMember m:
                RunningMember running = MemberHost.Find(m.Name) ?? throw new EtcdSecureException("MemberNotFound", ErrorKind.ObjectNotFound, $"No member named '{m.Name}' was started by this module.", m.Name);
                Write(System.IO.Path.Combine(dir, $"etcd-{m.Name}.service"), ServiceUnit.ForMember(running.Spec, running.Etcd, User));
                break;
            case EtcdProxyInfo p:
                string optionsFile = System.IO.Path.Combine(dir, $"etcd-proxy-{p.Name}.json");
                ProxyOptions options = OptionsOf(p.Name);
                string unit = System.IO.Path.Combine(dir, $"etcd-proxy-{p.Name}.service");
                CheckFree(unit);
                CheckFree(optionsFile);
                Write(optionsFile, System.Text.Json.JsonSerializer.Serialize(options, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                Write(unit, ServiceUnit.ForProxy(p.Name, PwshCommand(), ModuleManifest, optionsFile, User));
                break;
            default:
                throw new EtcdSecureException("InvalidInput", ErrorKind.InvalidArgument, $"Export-EtcdServiceUnit takes members (Get-EtcdMember) and proxies (Get-EtcdProxy), not {target.GetType().Name}.", target);
        }
    }

    private static ProxyOptions OptionsOf(string name)
    {
        if (ProxyRegistry.All is { } jobs && jobs.FirstOrDefault(j => j.Name.Equals(name, StringComparison.OrdinalIgnoreCase) && j.Proxy is not null) is { } job) return job.Proxy!.Options;
        if (ProxyHost.Find(name) is { } r && File.Exists(ProxyHost.OptionsFileOf(r.Name))) return ProxyHost.LoadOptions(ProxyHost.OptionsFileOf(r.Name));
        throw new EtcdSecureException("ProxyNotFound", ErrorKind.ObjectNotFound, $"No running proxy named '{name}', in this session or detached.", name);
    }

    private void CheckFree(string file)
    {
        if (File.Exists(file) && !Force)
        {
            throw new EtcdSecureException("FileExists", ErrorKind.ResourceExists, $"'{file}' exists; give -Force to replace it.", file);
        }
    }

    private void Write(string file, string text)
    {
        CheckFree(file);
        if (!ShouldProcess(file, "Write")) return;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        string temp = file + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, file, overwrite: true);
        WriteFile(file);
    }
}
