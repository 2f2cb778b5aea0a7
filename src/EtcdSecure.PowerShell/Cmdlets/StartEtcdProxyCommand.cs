using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.Relay;
using EtcdSecure.Engine.State;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Starts a TLS proxy in front of an etcd cluster: clients present certificates to the proxy only, and the proxy
/// talks mutual TLS to live members with its own certificate. It runs as a job in the background (Get-Job,
/// Receive-Job, Stop-Job), or in the foreground with -Wait until Ctrl+C.
/// </summary>
/// <remarks>
/// Who gets in, by default: any client whose certificate chains to a CA in the -ClientCA file (every certificate in
/// the file is trusted, so a bundle of old and new CA rotates without downtime) and allows client auth. Peer and
/// node certificates of that CA allow client auth too, so every such certificate is a client unless -AllowedClient
/// names the ones that are. -CrlPath refuses revoked ones. Nothing is fetched from the network to check a client:
/// no AIA download of missing issuers, no CRL distribution point; the certificates the client sends complete its
/// chain. -AllowClientsWithoutCertificate gives all of this away: anyone who can reach the port acts on the
/// cluster with the proxy's upstream certificate (etcd's root, where that certificate maps to it).
///
/// Unauthenticated connections cannot crowd out others: at most -MaxPendingHandshakes are in their handshake at
/// once, and -MaxPendingPerAddress from one address; past either cap a newcomer waits for its turn, and a connection
/// that has been silent (or stalled on its side of the handshake) for a third of -HandshakeTimeout is shed to make
/// room. One that is handshaking is never dropped for being old, so a burst of real clients from one host all get
/// in. Only authenticated connections count against -MaxConnections.
///
/// TLS 1.2 and 1.3 only, with ECDHE and AEAD cipher suites (no CBC, no static RSA), on both sides; -CipherSuite
/// sets another list.
/// </remarks>
/// <example>
/// <code>
/// $proxy = Start-EtcdProxy -Listen https://localhost:2379 -InitialCluster $peers -Certificate ./pki/etcd-proxy.pem -UpstreamCertificate ./pki/etcd-node.pem -SingleIdentity -CA ./pki/ca.pem
/// Test-EtcdClusterHealth https://localhost:2379 -CA ./pki/ca.pem -Certificate ./pki/etcd-proxy.pem -Cluster
/// </code>
/// Reference workflow A: a proxy that finds the members from their peer URLs, then a health check that knows only the proxy.
/// </example>
/// <example>
/// <code>
/// Start-EtcdProxy -Endpoint https://10.0.0.1:2379, https://10.0.0.2:2379 -Listen https://0.0.0.0:2379 -Certificate $serving -ClientCA $clientCA -UpstreamCertificate $node -SingleIdentity -UpstreamCA $clusterCA -Wait
/// </code>
/// Runs in the foreground for a service, with its own CA for clients; Ctrl+C stops it and releases the port.
/// </example>
/// <example>
/// <code>
/// Start-EtcdProxy -Listen https://127.0.0.1:2379 -Endpoint $members -Certificate ./edge/etcd-proxy.pem -ClientCA ./edge/ca.pem -AllowedClient 'app-*', backup -CrlPath ./edge/crl.pem -UpstreamCertificate ./pki/etcd-proxy-upstream.pem -SingleIdentity -UpstreamCA ./pki/ca.pem
/// </code>
/// Only certificates of the edge CA named app-* or backup get in, and none that the CRL revokes; (Get-EtcdProxy).Refused counts the others as ClientNotAllowed and Revoked.
/// </example>
/// <example>
/// <code>
/// Get-Job | Where-Object PSJobTypeName -EQ EtcdProxy | Receive-Job -Keep
/// </code>
/// Shows the proxy's log: members in and out of rotation, certificate reloads.
/// </example>
[Cmdlet(VerbsLifecycle.Start, "EtcdProxy", SupportsShouldProcess = true, DefaultParameterSetName = Endpoints)]
[OutputType(typeof(EtcdProxyInfo))]
public sealed class StartEtcdProxyCommand : EtcdCmdlet
{
    private const string Endpoints = "Endpoints";
    private const string Discover = "InitialCluster";
    private const string Peers = "PeerUrls";
    private const string FromFile = "OptionsFile";

    /// <summary>The proxy's name (its job's name). Default: etcd-proxy, etcd-proxy-2, ...</summary>
    [Parameter]
    [ValidatePattern("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    public string? Name { get; set; }

    /// <summary>Where clients connect. Default https://127.0.0.1:2379.</summary>
    [Parameter]
    [Alias("ListenUrl")]
    public string Listen { get; set; } = "https://127.0.0.1:2379";

    /// <summary>The certificate the proxy serves to clients (its key is NAME-key.pem beside it).</summary>
    [Parameter(Mandatory = true, ParameterSetName = Endpoints)]
    [Parameter(Mandatory = true, ParameterSetName = Discover)]
    [Parameter(Mandatory = true, ParameterSetName = Peers)]
    [CertificateTransformation]
    [Alias("ServerCertificate")]
    public EtcdCertificate? Certificate { get; set; }

    /// <summary>The CA for both sides unless -ClientCA or -UpstreamCA say otherwise.</summary>
    [Parameter]
    [CertificateTransformation]
    public EtcdCertificate? CA { get; set; }

    /// <summary>Client certificates must chain to this CA. Default: -CA.</summary>
    [Parameter]
    [CertificateTransformation]
    public EtcdCertificate? ClientCA { get; set; }

    /// <summary>
    /// Accept clients that present no certificate. Not recommended: anyone who can reach the port then acts on the
    /// cluster with the proxy's upstream certificate.
    /// </summary>
    [Parameter]
    public SwitchParameter AllowClientsWithoutCertificate { get; set; }

    /// <summary>
    /// Only client certificates whose common name or a subject alternative name (DNS, IP, URI, e-mail) matches one of
    /// these wildcards get in; others of the client CA are refused and counted as ClientNotAllowed. Default: any
    /// certificate of the client CA that allows client auth, peer and node certificates included.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? AllowedClient { get; set; }

    /// <summary>
    /// CRL files (PEM or DER) signed by the client CA. A client whose certificate, or an intermediate CA of its chain,
    /// they list is refused and counted as Revoked. Read again when they change, without a restart.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? CrlPath { get; set; }

    /// <summary>
    /// The TLS cipher suites offered on both sides, as IANA names (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ...).
    /// Default: the TLS 1.3 suites and, for TLS 1.2, ECDHE with AES-GCM or ChaCha20-Poly1305 only.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(CipherSuiteCompleter))]
    public string[]? CipherSuite { get; set; }

    /// <summary>The certificate the proxy presents to the members; it needs client auth and must chain to their trusted CA.</summary>
    [Parameter(Mandatory = true, ParameterSetName = Endpoints)]
    [Parameter(Mandatory = true, ParameterSetName = Discover)]
    [Parameter(Mandatory = true, ParameterSetName = Peers)]
    [CertificateTransformation]
    public EtcdCertificate? UpstreamCertificate { get; set; }

    /// <summary>
    /// Each client reaches etcd as itself: a folder of upstream identities (USER.pem and USER-key.pem, client
    /// certificates of the members' client CA, as New-EtcdProxyIdentity and Enable-EtcdAuth -ProxyIdentityPath write
    /// them). A client whose certificate's common name is USER opens its member connection with USER's identity, so
    /// etcd applies USER's roles; a client without one is refused (NoUpstreamIdentity) unless -FallbackIdentity names
    /// one. Files added, renewed or removed take effect within a second, removed ones on open connections too. The
    /// -UpstreamCertificate is then only the proxy's own, for its checks of the members. Give this or -SingleIdentity.
    /// </summary>
    [Parameter]
    public string? IdentityPath { get; set; }

    /// <summary>With -IdentityPath: the user (an identity in that folder) a client without an identity of its own reaches etcd as. Pick a least-privileged one; default: such clients are refused.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? FallbackIdentity { get; set; }

    /// <summary>
    /// Every client reaches etcd as the -UpstreamCertificate's user (its common name). With etcd's auth on, that
    /// gives every client that user's rights, whatever its own certificate says (root, in the examples): etcd's
    /// RBAC sees one user. Right for a cluster without auth; say it explicitly. Give this or -IdentityPath.
    /// </summary>
    [Parameter]
    public SwitchParameter SingleIdentity { get; set; }

    /// <summary>The members' certificates must chain to this CA. Default: -CA.</summary>
    [Parameter]
    [CertificateTransformation]
    public EtcdCertificate? UpstreamCA { get; set; }

    /// <summary>The members' client URLs.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = Endpoints)]
    [Alias("Endpoints", "ClientUrls")]
    public string[] Endpoint { get; set; } = Array.Empty<string>();

    /// <summary>The cluster as etcd's --initial-cluster names it (hashtable name → peer URL, or "a=https://h:2380,..."): client URLs are read from the members' peer port.</summary>
    [Parameter(Mandatory = true, ParameterSetName = Discover)]
    public object? InitialCluster { get; set; }

    /// <summary>Peer URLs to discover the members from.</summary>
    [Parameter(Mandatory = true, ParameterSetName = Peers)]
    public string[] PeerUrl { get; set; } = Array.Empty<string>();

    /// <summary>How often the member list is read again (MemberList), to follow members added or removed.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often every member is probed with a TLS handshake.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan HealthCheckInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a client may take to finish its TLS handshake, and the member to answer.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Close connections with no traffic for this long. Default: never (watches may be quiet for hours).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.Zero;

    /// <summary>Authenticated clients beyond this many are refused after their handshake and counted as MaxConnections.</summary>
    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public int MaxConnections { get; set; } = 20_000;

    /// <summary>
    /// Connections in their TLS handshake at once (default 1024). When full, a newcomer waits for a place (up to four
    /// times this many wait); a connection silent or stalled for a third of -HandshakeTimeout is shed for it and
    /// counted as PendingLimit. Bounds the CPU and memory that clients not yet authenticated can take.
    /// </summary>
    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public int MaxPendingHandshakes { get; set; } = 1024;

    /// <summary>
    /// Connections in their TLS handshake at once from one source address, or one /64 for IPv6 (default 128). When
    /// full, that address's newcomers wait their turn (up to twice -MaxPendingHandshakes of them); one of its
    /// connections that went silent or stalled is shed for them and counted as PendingPerAddressLimit. Raise it when
    /// many clients share an address (NAT, a load balancer) and their bursts must handshake at once, not in turn.
    /// </summary>
    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public int MaxPendingPerAddress { get; set; } = 128;

    /// <summary>
    /// TCP keepalive on client and member connections: the idle time before the first probe (then every 10 s, three
    /// unanswered close the connection). Default 30s; 0 turns it off.
    /// </summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan TcpKeepAlive { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Run in the foreground until Ctrl+C or SIGTERM (as a service manager stops a service), writing the log to this pipeline's streams.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    /// <summary>
    /// Run in a process of its own that outlives this session, as etcd members do: Get-EtcdProxy and Stop-EtcdProxy
    /// reach it from any session of this user, through a control socket only this user can open. Its log is
    /// LogPath in Get-EtcdProxy. That process compiles every method fully optimized on first use
    /// (DOTNET_TieredCompilation=0, DOTNET_ReadyToRun=0, unless this session's environment sets them): it costs
    /// about 4 s more before the proxy listens and 7 to 10 s more CPU to get there, and its CPU per request is near
    /// steady state from the first second of load. Export-EtcdServiceUnit writes the same settings into the unit.
    /// </summary>
    [Parameter]
    public SwitchParameter Detached { get; set; }

    /// <summary>
    /// Options written by Export-EtcdServiceUnit (a service runs them with -Wait) or by a detached proxy's starter;
    /// the certificates named there were checked when they were written.
    /// </summary>
    [Parameter(Mandatory = true, ParameterSetName = FromFile, DontShow = true)]
    public string? OptionsFile { get; set; }

    protected override void Process()
    {
        if (ParameterSetName == FromFile)
        {
            // A service (-Wait), or a detached proxy's own process (-Detached), which is also reachable by socket.
            RunInForeground(ProxyHost.LoadOptions(OptionsFile!), detached: Detached);
            return;
        }

        if (Wait && Detached)
        {
            throw new EtcdSecureException("InvalidParameterCombination", ErrorKind.InvalidArgument, "-Wait runs the proxy in this process and -Detached in its own: give one of them.", "-Detached");
        }

        if (SingleIdentity == (IdentityPath is not null))
        {
            throw new EtcdSecureException("UpstreamIdentityRequired", ErrorKind.InvalidArgument,
                SingleIdentity
                    ? "-SingleIdentity and -IdentityPath contradict each other: give one."
                    : "Say whom etcd sees: -IdentityPath (each client reaches etcd as the user of its certificate's common name, so etcd's RBAC holds) or -SingleIdentity (every client reaches etcd as the -UpstreamCertificate's user, so RBAC sees one user for all of them).",
                "-IdentityPath");
        }

        if (FallbackIdentity is not null && IdentityPath is null)
        {
            throw new EtcdSecureException("InvalidParameterCombination", ErrorKind.InvalidArgument, "-FallbackIdentity names an identity of -IdentityPath: give that folder too.", "-FallbackIdentity");
        }

        EtcdCertificate upstreamCA = UpstreamCA ?? CA ?? throw Missing("-UpstreamCA");
        EtcdCertificate? clientCA = AllowClientsWithoutCertificate ? null : ClientCA ?? CA ?? throw Missing("-ClientCA");
        Uri listen = MemberSpec.ParseUrls(new[] { Listen }, "-Listen").Single();
        var options = new ProxyOptions
        {
            Name = Name ?? ProxyRegistry.NextName(),
            Listen = listen,
            Server = KeyPair(Certificate!, "-Certificate"),
            ClientCAPath = clientCA?.Path,
            Upstream = KeyPair(UpstreamCertificate!, "-UpstreamCertificate"),
            IdentityPath = IdentityPath is null ? null : ResolveLocalPath(IdentityPath),
            FallbackIdentity = FallbackIdentity,
            UpstreamCAPath = upstreamCA.Path,
            Endpoints = ParameterSetName == Endpoints ? MemberSpec.ParseUrls(Endpoint, "-Endpoint") : Array.Empty<Uri>(),
            PeerUrls = ParameterSetName switch
            {
                Peers => MemberSpec.ParseUrls(PeerUrl, "-PeerUrl"),
                Discover => MemberSpec.ParseUrls(MemberSpecCmdlet.InitialClusterArgument.Parse(InitialCluster!).Select(kv => kv.Value), "-InitialCluster"),
                _ => Array.Empty<Uri>(),
            },
            RefreshInterval = Positive(RefreshInterval, "-RefreshInterval"),
            HealthCheckInterval = Positive(HealthCheckInterval, "-HealthCheckInterval"),
            HandshakeTimeout = Positive(HandshakeTimeout, "-HandshakeTimeout"),
            IdleTimeout = IdleTimeout,
            MaxConnections = MaxConnections,
            MaxPendingHandshakes = MaxPendingHandshakes,
            MaxPendingPerAddress = MaxPendingPerAddress,
            TcpKeepAlive = TcpKeepAlive < TimeSpan.Zero ? throw new EtcdSecureException("InvalidInterval", ErrorKind.InvalidArgument, "-TcpKeepAlive cannot be negative.", "-TcpKeepAlive") : TcpKeepAlive,
            CrlPaths = CrlPath?.Select(ResolveLocalPath).ToArray() ?? Array.Empty<string>(),
            AllowedClients = AllowedClient ?? Array.Empty<string>(),
            CipherSuites = CipherSuite is null ? null : Engine.Tls.TlsPolicy.Parse(CipherSuite, "-CipherSuite"),
        };

        // One name, one proxy, whether it runs as a job or detached: checked before anything is written or started.
        ProxyRegistry.EnsureFree(options.Name);
        WriteVerbose($"Checking the certificates: serving {options.Server.CertificatePath}, upstream {options.Upstream.CertificatePath} (CA {options.UpstreamCAPath}), clients {(options.ClientCAPath is null ? "without certificates allowed" : "must chain to " + options.ClientCAPath)}.");
        ProxyPreflight.Check(options);
        string upstreams = options.Endpoints.Count > 0 ? string.Join(",", options.Endpoints) : "members found from " + string.Join(",", options.PeerUrls);
        if (!ShouldProcess($"proxy {options.Name} on {listen.GetLeftPart(UriPartial.Authority)}", $"Start, relaying to {upstreams}")) return;

        if (Wait)
        {
            RunInForeground(options, detached: false);
            return;
        }

        if (Detached)
        {
            WriteProgress(new ProgressRecord(2, $"Starting detached proxy {options.Name}", $"finding members: {upstreams}"));
            ProxyRecord record = ProxyHost.StartDetachedAsync(options, PwshCommand(), ModuleManifest, TimeSpan.FromSeconds(60), CancelToken).GetAwaiter().GetResult();
            WriteProgress(new ProgressRecord(2, $"Starting detached proxy {options.Name}", "done") { RecordType = ProgressRecordType.Completed });
            WriteVerbose($"Proxy {options.Name} runs as process {record.ProcessId}; its log is {record.LogPath}.");
            WriteObject(EtcdProxyInfo.From(record, ControlClient.StatsAsync(record.ControlSocket, TimeSpan.FromSeconds(5), CancelToken).GetAwaiter().GetResult(), running: true));
            return;
        }

        var job = new EtcdProxyJob(options.Name, MyInvocation.Line.Trim()) { Endpoint = listen.GetLeftPart(UriPartial.Authority) };
        ProxyRegistry.Add(job);

        try
        {
            WriteProgress(new ProgressRecord(2, $"Starting proxy {options.Name}", $"finding members: {upstreams}"));
            EtcdProxy proxy = EtcdProxy.StartAsync(options, job.Write, CancelToken).GetAwaiter().GetResult();
            job.Attach(proxy);
        }
        catch
        {
            ProxyRegistry.Remove(job);
            throw;
        }
        finally
        {
            WriteProgress(new ProgressRecord(2, $"Starting proxy {options.Name}", "done") { RecordType = ProgressRecordType.Completed });
        }

        JobRepository.Add(job);
        WriteVerbose($"Proxy {options.Name} is job {job.Id}; Receive-Job -Id {job.Id} shows its log.");
        WriteObject(EtcdProxyInfo.From(job));
    }

    private void RunInForeground(ProxyOptions options, bool detached)
    {
        // Bounded: a flood of refused clients must not grow memory while the host is slow to write.
        var log = new BlockingCollection<(ProxyLogLevel Level, string Message)>(EtcdProxyJob.MaxRecords);
        long dropped = 0;
        // SIGINT and SIGTERM stop the proxy cleanly, whatever the host does with them: a service manager stops a
        // service with SIGTERM, and pwsh does not pass Ctrl+C to a command it is still running from -Command while it
        // initialises its runspace (seen: the pipeline never stopped).
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(CancelToken);
        using PosixSignalRegistration? sigint = OnSignal(PosixSignal.SIGINT, stop);
        using PosixSignalRegistration? sigterm = OnSignal(PosixSignal.SIGTERM, stop);
        EtcdProxy proxy = EtcdProxy.StartAsync(options, (l, m) => { if (!log.TryAdd((l, m))) Interlocked.Increment(ref dropped); }, stop.Token).GetAwaiter().GetResult();
        ControlServer? control = null;
        try
        {
            if (detached)
            {
                control = ControlServer.Start(ProxyHost.ControlSocketOf(options.Name), proxy, stop.Cancel);
                ProxyHost.Register(options, control.Path);
            }

            // Cmdlet streams may only be written from the pipeline thread: the proxy queues, this loop writes.
            while (true)
            {
                var (level, message) = log.Take(stop.Token);
                if (Interlocked.Exchange(ref dropped, 0) is > 0 and long n) WriteWarning($"{n} log records were dropped while the log was full.");
                switch (level)
                {
                    case ProxyLogLevel.Warning: WriteWarning(message); break;
                    case ProxyLogLevel.Information: WriteInformation(new InformationRecord($"{DateTime.Now:HH:mm:ss.fff} {options.Name}: {message}", options.Name)); break;
                    default: WriteVerbose(message); break;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !CancelToken.IsCancellationRequested)
        {
            // A signal: the proxy stops below and the command ends normally.
        }
        finally
        {
            // Ctrl+C lands here: the port is released before the prompt returns.
            proxy.StopAsync().GetAwaiter().GetResult();
            if (control is not null)
            {
                control.DisposeAsync().AsTask().GetAwaiter().GetResult();
                ProxyHost.Unregister(options.Name);
            }
        }
    }

    private static PosixSignalRegistration? OnSignal(PosixSignal signal, CancellationTokenSource stop)
    {
        try
        {
            return PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                stop.Cancel();
            });
        }
        catch (PlatformNotSupportedException)
        {
            return null;
        }
    }

    private static TimeSpan Positive(TimeSpan t, string parameter) => t > TimeSpan.Zero ? t
        : throw new EtcdSecureException("InvalidInterval", ErrorKind.InvalidArgument, $"{parameter} must be longer than zero.", parameter);

    private static EtcdSecureException Missing(string parameter) => new("CARequired", ErrorKind.InvalidArgument,
        $"Give -CA (the CA for both sides) or {parameter}: the proxy trusts only the CA it is given.", parameter);
}
