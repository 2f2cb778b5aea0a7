using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>The parameters that describe one member, shared by Start-EtcdMember and New-EtcdMemberConfig.</summary>
public abstract class MemberSpecCmdlet : EtcdCmdlet
{
    /// <summary>The member's name (etcd --name), unique in its cluster.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    public string Name { get; set; } = "";

    /// <summary>URLs to listen on for clients (https). Default https://127.0.0.1:2379.</summary>
    [Parameter]
    [Alias("ListenClientUrl")]
    public string[] ClientUrl { get; set; } = { "https://127.0.0.1:2379" };

    /// <summary>URLs clients are told to use. Default: the ClientUrl values.</summary>
    [Parameter]
    public string[]? AdvertiseClientUrl { get; set; }

    /// <summary>URLs to listen on for other members (https). Default https://127.0.0.1:2380.</summary>
    [Parameter]
    [Alias("ListenPeerUrl")]
    public string[] PeerUrl { get; set; } = { "https://127.0.0.1:2380" };

    /// <summary>URLs other members are told to use. Default: the PeerUrl values.</summary>
    [Parameter]
    public string[]? AdvertisePeerUrl { get; set; }

    /// <summary>The members of a new cluster: a hashtable name → peer URL, or etcd's "a=https://h:2380,b=..." string. Default: this member alone.</summary>
    [Parameter]
    public object? InitialCluster { get; set; }

    /// <summary>The initial cluster token: the same on every member of one cluster, different between clusters.</summary>
    [Parameter]
    public string ClusterToken { get; set; } = "etcd-cluster";

    /// <summary>New to form a cluster, Existing to rejoin or join one that runs.</summary>
    [Parameter]
    [ValidateSet("New", "Existing")]
    public string ClusterState { get; set; } = "New";

    /// <summary>Default: NAME.etcd in the current location, as etcd names it.</summary>
    [Parameter]
    public string? DataDir { get; set; }

    /// <summary>
    /// Default: logs/NAME.log beside the data dir. The member's output is appended to it while it runs and across
    /// restarts, and the module never rotates or caps it: etcd writes a line for every connection it refuses, so
    /// whoever reaches its ports can make it grow. Rotate it with logrotate's copytruncate, or run the member as a
    /// systemd unit (Export-EtcdServiceUnit), whose journal rotates.
    /// </summary>
    [Parameter]
    public string? LogPath { get; set; }

    /// <summary>The server certificate clients see (a certificate object or a PEM path; its key is NAME-key.pem).</summary>
    [Parameter(Mandatory = true)]
    [CertificateTransformation]
    [Alias("ServerCertificate")]
    public EtcdCertificate? Certificate { get; set; }

    /// <summary>The certificate for peer traffic, both served and presented. Default: -Certificate.</summary>
    [Parameter]
    [CertificateTransformation]
    public EtcdCertificate? PeerCertificate { get; set; }

    /// <summary>The CA that client certificates must chain to.</summary>
    [Parameter(Mandatory = true)]
    [CertificateTransformation]
    [Alias("TrustedCA")]
    public EtcdCertificate? CA { get; set; }

    /// <summary>The CA that peer certificates must chain to. Default: -CA.</summary>
    [Parameter]
    [CertificateTransformation]
    public EtcdCertificate? PeerCA { get; set; }

    /// <summary>The etcd binary to run. Default: etcd on PATH.</summary>
    [Parameter]
    public string? EtcdPath { get; set; }

    /// <summary>The member these parameters describe, and the etcd it is for.</summary>
    protected (MemberSpec Spec, EtcdBinaryInfo Etcd) BuildSpec()
    {
        EtcdBinaryInfo etcd = LocateEtcd();
        var listenClient = MemberSpec.ParseUrls(ClientUrl, "-ClientUrl");
        var listenPeer = MemberSpec.ParseUrls(PeerUrl, "-PeerUrl");
        var advertiseClient = AdvertiseClientUrl is null ? NoWildcard(listenClient, "-ClientUrl", "-AdvertiseClientUrl") : MemberSpec.ParseUrls(AdvertiseClientUrl, "-AdvertiseClientUrl");
        var advertisePeer = AdvertisePeerUrl is null ? NoWildcard(listenPeer, "-PeerUrl", "-AdvertisePeerUrl") : MemberSpec.ParseUrls(AdvertisePeerUrl, "-AdvertisePeerUrl");
        string dataDir = ResolveLocalPath(DataDir ?? Name + ".etcd");
        string logPath = LogPath is null ? Path.Combine(Path.GetDirectoryName(dataDir)!, "logs", Name + ".log") : ResolveLocalPath(LogPath);

        var spec = new MemberSpec
        {
            Name = Name,
            DataDir = dataDir,
            LogPath = logPath,
            ListenClientUrls = listenClient,
            AdvertiseClientUrls = advertiseClient,
            ListenPeerUrls = listenPeer,
            AdvertisePeerUrls = advertisePeer,
            InitialCluster = InitialClusterText(advertisePeer),
            ClusterToken = ClusterToken,
            ExistingCluster = ClusterState == "Existing",
            Server = KeyPair(Certificate!, "-Certificate"),
            Peer = KeyPair(PeerCertificate ?? Certificate!, "-PeerCertificate"),
            TrustedCAPath = CA!.Path,
            PeerTrustedCAPath = (PeerCA ?? CA).Path,
        };

        return (spec, etcd);
    }

    protected virtual EtcdBinaryInfo LocateEtcd() => Engine.Members.EtcdBinary.Locate("etcd", EtcdPath is null ? null : ResolveLocalPath(EtcdPath));

    private string InitialClusterText(IReadOnlyList<Uri> advertisePeer) => InitialCluster is null
        ? MemberSpec.FormatInitialCluster(advertisePeer.Select(u => new KeyValuePair<string, string>(Name, u.ToString())))
        : MemberSpec.FormatInitialCluster(InitialClusterArgument.Parse(InitialCluster));

    /// <summary>-InitialCluster as users give it: a hashtable name → peer URL, or etcd's "a=https://h:2380,b=..." string.</summary>
    internal static class InitialClusterArgument
    {
        public static IEnumerable<KeyValuePair<string, string>> Parse(object value) => (value is PSObject p ? p.BaseObject : value) switch
        {
            string s => MemberSpec.ParseInitialCluster(s),
            IDictionary d => d.Cast<DictionaryEntry>().OrderBy(e => e.Key.ToString(), StringComparer.Ordinal)
                .Select(e => new KeyValuePair<string, string>(e.Key.ToString()!, (e.Value is PSObject pv ? pv.BaseObject : e.Value)?.ToString() ?? "")),
            var other => throw new EtcdSecureException("InvalidInitialCluster", ErrorKind.InvalidArgument, "-InitialCluster takes a hashtable (name = peer URL) or a string \"a=https://h:2380,b=https://h:2381\".", other),
        };
    }

    private static IReadOnlyList<Uri> NoWildcard(IReadOnlyList<Uri> urls, string listen, string advertise) =>
        urls.Any(u => u.DialHost() is "0.0.0.0" or "::")
            ? throw new EtcdSecureException("AdvertiseUrlRequired", ErrorKind.InvalidArgument, $"{listen} listens on a wildcard address, which clients cannot dial: give {advertise} with a real host name or address.", listen)
            : urls;
}
