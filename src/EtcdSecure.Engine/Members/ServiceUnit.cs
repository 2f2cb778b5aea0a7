using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace EtcdSecure.Engine.Members;

/// <summary>
/// systemd units that run in production exactly what was tried in a shell: a member with the etcd command line
/// Start-EtcdMember builds, a proxy as pwsh running Start-EtcdProxy -Wait with the same options.
/// </summary>
public static class ServiceUnit
{
    public static string ForMember(MemberSpec spec, EtcdBinaryInfo etcd, string? user) => Render(
        $"etcd member {spec.Name} (EtcdSecure: client and peer certificate authentication)",
        // etcd tells systemd when it serves (sd_notify), as Debian's own etcd unit relies on.
        type: "notify",
        new[] { etcd.Path }.Concat(EtcdCommandLine.Build(spec, etcd)),
        environment: Array.Empty<string>(),
        user,
        extra: new[] { "LimitNOFILE=65536" });

    public static string ForProxy(string name, IReadOnlyList<string> pwsh, string manifest, string optionsPath, string? user) => Render(
        $"etcd TLS proxy {name} (EtcdSecure)",
        type: "simple",
        pwsh.Concat(new[] { "-NoProfile", "-NonInteractive", "-Command", Relay.ProxyHost.HostScript(manifest, optionsPath, detached: false) }),
        // A service has no business sending usage telemetry; SIGTERM stops the proxy cleanly and releases the port.
        environment: new[] { "POWERSHELL_TELEMETRY_OPTOUT=1" }.Concat(Relay.ProxyHost.ServiceRuntime.Select(e => $"{e.Name}={e.Value}")),
        user,
        extra: new[] { "LimitNOFILE=65536" });

    private static string Render(string description, string type, IEnumerable<string> command, IEnumerable<string> environment, string? user, IEnumerable<string> extra)
    {
        var sb = new StringBuilder();
        sb.Append("# Written by Export-EtcdServiceUnit (EtcdSecure).\n");
        sb.Append("[Unit]\n");
        sb.Append($"Description={description}\n");
        sb.Append("Wants=network-online.target\nAfter=network-online.target\n\n");
        sb.Append("[Service]\n");
        sb.Append($"Type={type}\n");
        if (user is not null) sb.Append($"User={user}\n");
        foreach (string e in environment) sb.Append($"Environment={Quote(e)}\n");
        sb.Append("ExecStart=").Append(string.Join(' ', command.Select(Quote))).Append('\n');
        sb.Append("Restart=on-failure\nRestartSec=5s\n");
        foreach (string e in extra) sb.Append(e).Append('\n');
        sb.Append("\n[Install]\nWantedBy=multi-user.target\n");
        return sb.ToString();
    }

    /// <summary>
    /// One ExecStart word as systemd reads it: double quotes around anything with a space or quote, backslash before
    /// a double quote or backslash, and % and $ doubled, since systemd expands specifiers and variables.
    /// </summary>
    public static string Quote(string word)
    {
        string escaped = word.Replace("%", "%%", StringComparison.Ordinal).Replace("$", "$$", StringComparison.Ordinal);
        if (escaped.Length > 0 && !escaped.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '\\' or ';')) return escaped;
        return "\"" + escaped.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
    }
}
