using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Text.RegularExpressions;

namespace EtcdSecure.Engine.Members;

/// <summary>An etcd or etcdctl executable and what its version can do.</summary>
public sealed record EtcdBinaryInfo(string Name, string Path, Version Version, string? GoVersion)
{
    // --tls-min-version arrived in 3.4.25 and 3.5.8 (and is in every 3.6).
    public bool SupportsTlsMinVersion =>
        (Version.Major, Version.Minor) switch
        {
            (3, 4) => Version.Build >= 25,
            (3, 5) => Version.Build >= 8,
            (3, < 4) => false,
            _ => true,
        };

    public bool SupportsClientCertFile => Version >= new Version(3, 5);

    /// <summary>
    /// The TLS 1.2 suites members offer: ECDHE with AEAD only, as the proxy. With nothing else on offer, TLS 1.0 and 1.1
    /// cannot be negotiated either (they have no AEAD suites), which is what closes them on etcd 3.4 before 3.4.25,
    /// where --tls-min-version does not exist. TLS 1.3 suites are Go's own and not configurable.
    /// </summary>
    public static readonly string[] CipherSuites =
    {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    };

    /// <summary>--client-crl-file and --peer-crl-file came with etcd 3.2.</summary>
    public bool SupportsCrlFiles => Version >= new Version(3, 2);

    // --proxy and --enable-v2 were removed in 3.6.
    public bool SupportsV2 => Version < new Version(3, 6);

    // 3.4 still defaults to capnslog; zap gives structured logs on every supported version.
    public bool NeedsLoggerZapFlag => Version < new Version(3, 5);

    // The experimental peer SAN flag was renamed when 3.6 dropped the experimental prefix.
    public string PeerSkipClientSanFlag => Version >= new Version(3, 6)
        ? "--peer-skip-client-san-verification"
        : "--experimental-peer-skip-client-san-verification";
}

public static partial class EtcdBinary
{
    private static readonly ConcurrentDictionary<(string Path, DateTime Stamp), EtcdBinaryInfo> Cache = new();

    /// <summary>Finds <paramref name="command"/> (etcd or etcdctl) at an explicit path or on PATH and reads its version.</summary>
    public static EtcdBinaryInfo Locate(string command, string? explicitPath = null)
    {
        string path = explicitPath is { Length: > 0 } ? System.IO.Path.GetFullPath(explicitPath) : FindOnPath(command)
            ?? throw new EtcdSecureException(
                "EtcdBinaryNotFound", ErrorKind.NotInstalled,
                $"'{command}' was not found on PATH. Install it (Debian/Ubuntu: apt-get install {(command == "etcdctl" ? "etcd-client" : "etcd-server")}) or pass its location with -EtcdPath.",
                command);
        if (!File.Exists(path))
        {
            throw new EtcdSecureException("EtcdBinaryNotFound", ErrorKind.ObjectNotFound, $"No file at '{path}'.", path);
        }

        var key = (path, File.GetLastWriteTimeUtc(path));
        return Cache.GetOrAdd(key, k => Probe(command, k.Path));
    }

    public static string? FindOnPath(string command)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (string name in OperatingSystem.IsWindows() ? new[] { command + ".exe", command } : new[] { command })
            {
                string candidate = System.IO.Path.Combine(dir, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static EtcdBinaryInfo Probe(string command, string path)
    {
        // etcd prints "etcd Version: 3.4.23"; etcdctl v3 prints "etcdctl version: 3.4.23" for "version".
        string args = command == "etcdctl" ? "version" : "--version";
        var psi = new ProcessStartInfo(path, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["ETCDCTL_API"] = "3";
        string output;
        try
        {
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("process did not start");
            var stderr = p.StandardError.ReadToEndAsync();
            output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(10_000))
            {
                p.Kill(true);
                throw new EtcdSecureException("EtcdVersionTimeout", ErrorKind.OperationTimeout, $"'{path} {args}' did not answer within 10 s.", path);
            }

            output += stderr.GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is not EtcdSecureException)
        {
            throw new EtcdSecureException("EtcdBinaryNotRunnable", ErrorKind.InvalidOperation, $"Could not run '{path}': {ex.Message}", path, ex);
        }

        Match m = VersionPattern().Match(output);
        if (!m.Success)
        {
            throw new EtcdSecureException("EtcdVersionUnknown", ErrorKind.InvalidData,
                $"'{path} {args}' did not print a version this module understands: {output.Trim()}", path);
        }

        Match go = GoVersionPattern().Match(output);
        return new EtcdBinaryInfo(command, path, Version.Parse(m.Groups[1].Value), go.Success ? go.Groups[1].Value : null);
    }

    [GeneratedRegex(@"(?im)^\s*etcd(?:ctl)?\s+version:\s*v?(\d+\.\d+\.\d+)")]
    private static partial Regex VersionPattern();

    [GeneratedRegex(@"(?im)^\s*go version:\s*(\S+)")]
    private static partial Regex GoVersionPattern();
}
