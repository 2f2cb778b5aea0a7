using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Base of the cmdlets that talk to a cluster as a client. Endpoints and credentials come from parameters, from
/// objects on the pipeline (a cluster, member or proxy by property name), or, as etcdctl takes them, from
/// ETCDCTL_ENDPOINTS, ETCDCTL_CACERT, ETCDCTL_CERT and ETCDCTL_KEY.
/// </summary>
public abstract class EtcdClientCmdlet : EtcdCmdlet
{
    private readonly List<string> _endpoints = new();

    /// <summary>https://host:port, or host:port (https is assumed). Several are checked together.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Endpoints", "ClientUrls", "ClientUrl", "Url")]
    public string[]? Endpoint { get; set; }

    /// <summary>The CA the servers' certificates must chain to (only this CA is trusted).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [CertificateTransformation]
    [Alias("CAPath", "CACert", "TrustedCA")]
    public EtcdCertificate? CA { get; set; }

    /// <summary>The client certificate to present; its key is NAME-key.pem beside it unless -KeyPath says otherwise.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [CertificateTransformation]
    [Alias("ClientCertificate", "ClientCertificatePath", "CertificatePath", "Cert")]
    public EtcdCertificate? Certificate { get; set; }

    /// <summary>The client certificate's key, when it is not NAME-key.pem beside the certificate.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("ClientKeyPath", "Key")]
    public string? KeyPath { get; set; }

    /// <summary>How long the whole check may take ('5s', '1m' or a TimeSpan): every endpoint is asked at once, and an endpoint that has not answered by then is reported, not waited for.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    protected sealed override void Process()
    {
        if (Endpoint is not null) _endpoints.AddRange(Endpoint.SelectMany(e => e.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
        Collect();
    }

    /// <summary>Gathers what else a pipeline record brings; the work is done in End, once, over everything gathered.</summary>
    protected virtual void Collect() { }

    /// <summary>The CA and client certificate when one is given (parameters or ETCDCTL_*), else null.</summary>
    protected TlsClientIdentity? OptionalIdentity() => (CA?.Path ?? Env("ETCDCTL_CACERT")) is null ? null : Identity();

    /// <param name="allowPlainHttp">Take http:// endpoints too: an auditor takes whatever URL the user has, and reports on it.</param>
    protected IReadOnlyList<Uri> Endpoints(bool allowPlainHttp = false)
    {
        var given = _endpoints.Count > 0 ? _endpoints
            : Environment.GetEnvironmentVariable("ETCDCTL_ENDPOINTS") is { Length: > 0 } env ? env.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList()
            : new List<string> { "https://127.0.0.1:2379" };
        return given.Distinct(StringComparer.OrdinalIgnoreCase).Select(e => ToUri(e, allowPlainHttp)).ToList();
    }

    private static Uri ToUri(string text, bool allowPlainHttp)
    {
        string withScheme = text.Contains("://", StringComparison.Ordinal) ? text : "https://" + text;
        if (!Uri.TryCreate(withScheme, UriKind.Absolute, out Uri? uri) || uri.Port <= 0 || string.IsNullOrEmpty(uri.Host))
        {
            throw new EtcdSecureException("InvalidEndpoint", ErrorKind.InvalidArgument, $"'{text}' is not an endpoint: give https://host:port.", text);
        }

        if (uri.Scheme != Uri.UriSchemeHttps && !(allowPlainHttp && uri.Scheme == Uri.UriSchemeHttp))
        {
            throw new EtcdSecureException("InsecureEndpoint", ErrorKind.InvalidArgument, $"'{text}' is not https: EtcdSecure talks to etcd over TLS only.", text);
        }

        return uri;
    }

    protected TlsClientIdentity Identity()
    {
        string? caPath = CA?.Path ?? Env("ETCDCTL_CACERT");
        if (caPath is null)
        {
            throw new EtcdSecureException("CARequired", ErrorKind.InvalidArgument, "Give -CA (or set ETCDCTL_CACERT): only the cluster's own CA is trusted, never the system store.", "CA");
        }

        string? certPath = Certificate?.Path ?? Env("ETCDCTL_CERT");
        string? keyPath = KeyPath is not null ? ResolveLocalPath(KeyPath) : Certificate?.KeyPath ?? Env("ETCDCTL_KEY");
        if (certPath is not null && (keyPath is null || !System.IO.File.Exists(keyPath)))
        {
            throw new EtcdSecureException("CertificateKeyNotFound", ErrorKind.ObjectNotFound, $"The client certificate '{certPath}' has no key: give -KeyPath (or ETCDCTL_KEY), or keep NAME-key.pem beside it.", certPath);
        }

        return TlsClientIdentity.Load(caPath, certPath, keyPath);
    }

    private string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? ResolveLocalPath(v) : null;
}
