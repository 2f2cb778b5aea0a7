using System;
using System.Net.Http;
using System.Net.Security;
using System.Threading;
using dotnet_etcd;
using Etcdserverpb;
using Grpc.Core;
using Grpc.Net.Client;

namespace EtcdSecure.Engine.Health;

/// <summary>
/// A dotnet-etcd client bound to exactly one endpoint, with TLS that trusts only the cluster's CA.
/// dotnet-etcd's own constructors add a retry policy and a round-robin balancer; a health check wants the opposite:
/// one endpoint, no retries, a failure reported as it happened.
/// </summary>
public sealed class EtcdEndpointClient : IDisposable
{
    /// <summary>SNI names under this suffix ask the EtcdSecure proxy for one member: "&lt;member id hex&gt;.member.etcdsecure.invalid".</summary>
    public const string RouteSuffix = ".member.etcdsecure.invalid";

    private readonly GrpcChannel _channel;
    private readonly CallInvoker _invoker;
    private EtcdClient? _client;

    private EtcdEndpointClient(Uri endpoint, string? route, TlsClientIdentity identity, GrpcChannel channel, CallInvoker invoker)
    {
        Identity = identity;
        Endpoint = endpoint;
        Route = route;
        _channel = channel;
        _invoker = invoker;
        Kv = new KV.KVClient(invoker);
        Maintenance = new Maintenance.MaintenanceClient(invoker);
        Cluster = new Cluster.ClusterClient(invoker);
    }

    public Uri Endpoint { get; }

    /// <summary>The member id this connection asks the proxy for, or null for a direct connection.</summary>
    public string? Route { get; }

    /// <summary>dotnet-etcd's client on this connection, made when first asked for (the health check never does).</summary>
    public EtcdClient Client => Volatile.Read(ref _client) ?? MakeClient();

    private EtcdClient MakeClient()
    {
        var made = new EtcdClient(_invoker);
        if (Interlocked.CompareExchange(ref _client, made, null) is not { } earlier) return made;
        made.Dispose();
        return earlier;
    }

    // etcd's own gRPC clients on the same connection: a call through them is one awaited gRPC call, where EtcdClient
    // wraps each in async methods of its own, each JIT-compiled on first use (health checks on first use: about 140
    // methods fewer).
    public KV.KVClient Kv { get; }

    public Maintenance.MaintenanceClient Maintenance { get; }

    public Cluster.ClusterClient Cluster { get; }

    public TlsClientIdentity Identity { get; }

    /// <summary>Why the server certificate was refused on the last attempt, when it was.</summary>
    public string? CertificateRejection { get; private set; }

    public static string RouteName(ulong memberId) => ClusterMember.FormatId(memberId) + RouteSuffix;

    public static EtcdEndpointClient Open(Uri endpoint, TlsClientIdentity identity, ulong? routeToMember = null)
    {
        string host = endpoint.DialHost();
        int port = endpoint.Port;
        string? route = routeToMember is { } id ? RouteName(id) : null;
        EtcdEndpointClient? self = null;
        var handler = new SocketsHttpHandler
        {
            SslOptions = identity.ClientOptions(host, route, reason => { if (self is not null) self.CertificateRejection = reason; }, SslApplicationProtocol.Http2),
            EnableMultipleHttp2Connections = false,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        };
        if (route is not null)
        {
            // The request names the member (that becomes the SNI the proxy routes by); the socket goes to the proxy.
            handler.ConnectCallback = async (_, cancel) => await TlsProbe.ConnectAsync(host, port, cancel).ConfigureAwait(false);
        }

        string address = route is null ? endpoint.GetLeftPart(UriPartial.Authority) : $"https://{route}:{port}";
        // Given an HttpClient rather than the handler itself, the channel sends calls straight through it. Given a
        // SocketsHttpHandler, it would run its client-side load balancer over it (subchannels, connectivity
        // watching), which a channel to one endpoint has no use for: it cost about 80 methods compiled on first use. The
        // client's own timeout is off, as the handler alone has none: each call carries its deadline.
        GrpcChannel channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpClient = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan }, // deadlines are per call
            DisposeHttpClient = true,
            ThrowOperationCanceledOnCancellation = true,
        });
        self = new EtcdEndpointClient(endpoint, route, identity, channel, channel.CreateCallInvoker());
        return self;
    }

    public void Dispose()
    {
        _client?.Dispose();
        _channel.Dispose();
    }
}
