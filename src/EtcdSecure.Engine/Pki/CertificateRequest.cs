using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;

namespace EtcdSecure.Engine.Pki;

/// <summary>What a certificate should say about its subject: cfssl's CSR JSON, or the cmdlet's parameters.</summary>
public sealed record CertificateRequestSpec
{
    public string? CommonName { get; init; }
    public string? Country { get; init; }
    public string? State { get; init; }
    public string? Locality { get; init; }
    public string? Organization { get; init; }
    public string? OrganizationalUnit { get; init; }
    public IReadOnlyList<string>? Hosts { get; init; }
    public KeyAlgorithm? KeyAlgorithm { get; init; }
    public int? KeySize { get; init; }
    public TimeSpan? CaExpiry { get; init; }
    public int? CaPathLength { get; init; }

    /// <summary>Values set here win over <paramref name="fallback"/>'s, as cfssl's -hostname wins over the JSON's hosts.</summary>
    public CertificateRequestSpec Over(CertificateRequestSpec? fallback) => fallback is null ? this : new CertificateRequestSpec
    {
        CommonName = CommonName ?? fallback.CommonName,
        Country = Country ?? fallback.Country,
        State = State ?? fallback.State,
        Locality = Locality ?? fallback.Locality,
        Organization = Organization ?? fallback.Organization,
        OrganizationalUnit = OrganizationalUnit ?? fallback.OrganizationalUnit,
        Hosts = Hosts ?? fallback.Hosts,
        KeyAlgorithm = KeyAlgorithm ?? fallback.KeyAlgorithm,
        KeySize = KeySize ?? fallback.KeySize,
        CaExpiry = CaExpiry ?? fallback.CaExpiry,
        CaPathLength = CaPathLength ?? fallback.CaPathLength,
    };

    public SubjectName Subject(string what) => new(
        string.IsNullOrWhiteSpace(CommonName)
            ? throw new EtcdSecureException("CommonNameRequired", ErrorKind.InvalidArgument, $"{what} needs a common name: give -CommonName or a CSR JSON with \"CN\".", what)
            : CommonName,
        Country, State, Locality, Organization, OrganizationalUnit);

    public KeySpec Key => KeySpec.Create(KeyAlgorithm ?? Pki.KeyAlgorithm.Ecdsa, KeySize);

    /// <summary>Reads a cfssl CSR JSON file: CN, hosts, key{algo,size}, names[{C,ST,L,O,OU}], ca{expiry,pathlen}.</summary>
    public static CertificateRequestSpec LoadCfsslJson(string path)
    {
        using JsonDocument doc = JsonFile.Parse(path, "CSR JSON", "CsrJsonNotReadable", "InvalidCsrJson");
        JsonElement r = doc.RootElement;
        string? Str(JsonElement e, string name) => e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        // cfssl allows several "names" entries; for each attribute the first entry that sets it is used.
        JsonElement[] names = r.TryGetProperty("names", out JsonElement n) && n.ValueKind == JsonValueKind.Array ? n.EnumerateArray().ToArray() : Array.Empty<JsonElement>();
        string? Name(string key) => names.Select(e => Str(e, key)).FirstOrDefault(v => !string.IsNullOrEmpty(v));

        KeyAlgorithm? algo = null;
        int? size = null;
        if (r.TryGetProperty("key", out JsonElement key))
        {
            algo = Str(key, "algo")?.ToLowerInvariant() switch
            {
                null => null,
                "rsa" => Pki.KeyAlgorithm.Rsa,
                "ecdsa" => Pki.KeyAlgorithm.Ecdsa,
                string other => throw new EtcdSecureException("UnsupportedKeyAlgorithm", ErrorKind.InvalidData, $"'{path}' asks for key algorithm '{other}'; use \"rsa\" or \"ecdsa\".", other),
            };
            if (key.TryGetProperty("size", out JsonElement s) && s.ValueKind == JsonValueKind.Number) size = s.GetInt32();
        }

        TimeSpan? caExpiry = null;
        int? pathLen = null;
        if (r.TryGetProperty("ca", out JsonElement ca))
        {
            if (Str(ca, "expiry") is { } exp) caExpiry = GoDuration.Parse(exp, $"The CA expiry in {path}");
            if (ca.TryGetProperty("pathlen", out JsonElement pl) && pl.ValueKind == JsonValueKind.Number) pathLen = pl.GetInt32();
        }

        return new CertificateRequestSpec
        {
            CommonName = Str(r, "CN"),
            Country = Name("C"),
            State = Name("ST"),
            Locality = Name("L"),
            Organization = Name("O"),
            OrganizationalUnit = Name("OU"),
            Hosts = r.TryGetProperty("hosts", out JsonElement h) && h.ValueKind == JsonValueKind.Array
                ? h.EnumerateArray().Select(x => x.GetString() ?? string.Empty).ToArray()
                : null,
            KeyAlgorithm = algo,
            KeySize = size,
            CaExpiry = caExpiry,
            CaPathLength = pathLen,
        };
    }
}
