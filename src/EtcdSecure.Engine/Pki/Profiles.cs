using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;

namespace EtcdSecure.Engine.Pki;

/// <summary>A signing profile in cfssl's terms: usages (cfssl's words) and an expiry.</summary>
public sealed record CertificateProfile(string Name, IReadOnlyList<string> Usages, TimeSpan Expiry, bool IsCA = false, string Source = "built-in")
{
    public bool Has(string usage) => Usages.Contains(usage, StringComparer.OrdinalIgnoreCase);
}

public static class Usages
{
    // cfssl's usage words (config/config.go KeyUsage and ExtKeyUsage maps).
    public static readonly IReadOnlyDictionary<string, int> KeyUsageBits = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase)
    {
        ["signing"] = 1 << 7,
        ["digital signature"] = 1 << 7,
        ["content commitment"] = 1 << 6,
        ["key encipherment"] = 1 << 5,
        ["key agreement"] = 1 << 3,
        ["data encipherment"] = 1 << 4,
        ["cert sign"] = 1 << 2,
        ["crl sign"] = 1 << 1,
        ["encipher only"] = 1 << 0,
        ["decipher only"] = 1 << 15,
    };

    public static readonly IReadOnlyDictionary<string, string> ExtendedKeyUsageOids = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["any"] = "2.5.29.37.0",
        ["server auth"] = "1.3.6.1.5.5.7.3.1",
        ["client auth"] = "1.3.6.1.5.5.7.3.2",
        ["code signing"] = "1.3.6.1.5.5.7.3.3",
        ["email protection"] = "1.3.6.1.5.5.7.3.4",
        ["s/mime"] = "1.3.6.1.5.5.7.3.4",
        ["ipsec end system"] = "1.3.6.1.5.5.7.3.5",
        ["ipsec tunnel"] = "1.3.6.1.5.5.7.3.6",
        ["ipsec user"] = "1.3.6.1.5.5.7.3.7",
        ["timestamping"] = "1.3.6.1.5.5.7.3.8",
        ["ocsp signing"] = "1.3.6.1.5.5.7.3.9",
    };

    public static string? NameOfOid(string oid) =>
        ExtendedKeyUsageOids.FirstOrDefault(kv => kv.Value == oid && kv.Key != "s/mime").Key;

    public static void Validate(string profile, IEnumerable<string> usages, string source)
    {
        foreach (string u in usages)
        {
            if (!KeyUsageBits.ContainsKey(u) && !ExtendedKeyUsageOids.ContainsKey(u))
            {
                throw new EtcdSecureException("UnknownUsage", ErrorKind.InvalidData,
                    $"Profile '{profile}' in {source} has the usage '{u}', which is not a cfssl usage. Known: {string.Join(", ", KeyUsageBits.Keys.Concat(ExtendedKeyUsageOids.Keys))}.", u);
            }
        }
    }
}

/// <summary>The profiles a certificate can be issued from: the built-in etcd roles plus a cfssl ca-config.json.</summary>
public sealed class SigningConfig
{
    /// <summary>cfssl's own default, for a ca-config.json profile that names no expiry.</summary>
    public static readonly TimeSpan DefaultExpiry = TimeSpan.FromHours(43800);

    /// <summary>
    /// The built-in profiles' validity, one year, as kubeadm issues etcd's certificates: a leaked certificate stops
    /// working within a year, and Test-EtcdCertificate -ExpiringWithin finds the ones to renew. A ca-config.json's own
    /// expiries still win.
    /// </summary>
    public static readonly TimeSpan LeafExpiry = TimeSpan.FromHours(8760);

    /// <summary>A new CA's validity unless told otherwise: ten years, as kubeadm's CAs.</summary>
    public static readonly TimeSpan CAExpiry = TimeSpan.FromHours(87600);

    // Server and Peer both carry client auth: etcd's gateway and peers dial with the same certificate
    // they serve (shared/reference/PITFALLS.md, item 1).
    private static readonly CertificateProfile[] BuiltIn =
    {
        new("Server", new[] { "signing", "key encipherment", "server auth", "client auth" }, LeafExpiry),
        new("Client", new[] { "signing", "key encipherment", "client auth" }, LeafExpiry),
        new("Peer", new[] { "signing", "key encipherment", "server auth", "client auth" }, LeafExpiry),
    };

    private readonly Dictionary<string, CertificateProfile> _configured;
    private readonly CertificateProfile? _default;

    private SigningConfig(Dictionary<string, CertificateProfile> configured, CertificateProfile? defaultProfile, string? path)
    {
        _configured = configured;
        _default = defaultProfile;
        Path = path;
    }

    public string? Path { get; }

    public static SigningConfig BuiltInOnly { get; } = new(new Dictionary<string, CertificateProfile>(), null, null);

    public static IReadOnlyList<string> BuiltInNames { get; } = BuiltIn.Select(p => p.Name).ToArray();

    public IEnumerable<string> ProfileNames => BuiltIn.Select(p => p.Name).Concat(_configured.Keys).Distinct(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Finds a profile. A profile in the config file wins over a built-in of the same name; an unknown name is an
    /// error, never cfssl's silent fall-back to the default profile (PITFALLS.md, item 10).
    /// </summary>
    public CertificateProfile Resolve(string name)
    {
        if (_configured.TryGetValue(name, out CertificateProfile? p)) return p;
        if (string.Equals(name, "default", StringComparison.OrdinalIgnoreCase) && _default is not null) return _default;
        CertificateProfile? builtIn = BuiltIn.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase));
        if (builtIn is not null) return builtIn;
        string known = string.Join(", ", ProfileNames.Concat(_default is null ? Array.Empty<string>() : new[] { "default" }));
        throw new EtcdSecureException("UnknownProfile", ErrorKind.ObjectNotFound,
            $"There is no profile '{name}'{(Path is null ? "" : $" in {Path} or")} among the built-in ones. Known profiles: {known}.", name);
    }

    /// <summary>Reads a cfssl signing config (ca-config.json): signing.default and signing.profiles.NAME.</summary>
    public static SigningConfig Load(string path)
    {
        using JsonDocument doc = JsonFile.Parse(path, "signing config", "ConfigNotReadable", "InvalidConfig");
        if (!doc.RootElement.TryGetProperty("signing", out JsonElement signing))
        {
            throw new EtcdSecureException("InvalidConfig", ErrorKind.InvalidData, $"'{path}' has no \"signing\" section, so it is not a cfssl signing config.", path);
        }

        TimeSpan defaultExpiry = DefaultExpiry;
        CertificateProfile? defaultProfile = null;
        if (signing.TryGetProperty("default", out JsonElement def))
        {
            defaultProfile = ReadProfile("default", def, path, DefaultExpiry);
            defaultExpiry = defaultProfile.Expiry;
        }

        var profiles = new Dictionary<string, CertificateProfile>(StringComparer.OrdinalIgnoreCase);
        if (signing.TryGetProperty("profiles", out JsonElement ps) && ps.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty prop in ps.EnumerateObject())
            {
                profiles[prop.Name] = ReadProfile(prop.Name, prop.Value, path, defaultExpiry);
            }
        }

        return new SigningConfig(profiles, defaultProfile, path);
    }

    private static CertificateProfile ReadProfile(string name, JsonElement e, string path, TimeSpan fallbackExpiry)
    {
        var usages = new List<string>();
        if (e.TryGetProperty("usages", out JsonElement u) && u.ValueKind == JsonValueKind.Array)
        {
            usages.AddRange(u.EnumerateArray().Select(x => x.GetString() ?? string.Empty));
        }

        Usages.Validate(name, usages, path);
        TimeSpan expiry = fallbackExpiry;
        if (e.TryGetProperty("expiry", out JsonElement ex) && ex.GetString() is { } exText)
        {
            expiry = GoDuration.Parse(exText, $"The expiry of profile '{name}' in {path}");
        }

        bool isCa = e.TryGetProperty("ca_constraint", out JsonElement cc) && cc.TryGetProperty("is_ca", out JsonElement isCaEl) && isCaEl.ValueKind == JsonValueKind.True;
        return new CertificateProfile(name, usages, expiry, isCa, path);
    }
}
