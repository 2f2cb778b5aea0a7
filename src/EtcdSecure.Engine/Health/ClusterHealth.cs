using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;

namespace EtcdSecure.Engine.Health;

/// <summary>A member as MemberList reports it.</summary>
public sealed record ClusterMember(ulong Id, string Name, IReadOnlyList<string> PeerUrls, IReadOnlyList<string> ClientUrls, bool IsLearner)
{
    public string IdHex => FormatId(Id);

    /// <summary>A member id as etcd writes it (types.ID: hex without leading zeros), so it matches etcdctl and etcd's logs.</summary>
    public static string FormatId(ulong id) => id.ToString("x");

    /// <summary>etcd lists a member added but not yet started with an empty name and no client URLs.</summary>
    public bool IsStarted => Name.Length > 0;
}

/// <summary>One endpoint's health, as `etcdctl endpoint health` and `endpoint status` would report it together.</summary>
public sealed class EndpointHealth
{
    public string Endpoint { get; init; } = "";
    public string? Via { get; init; }
    public string? Name { get; set; }
    public ulong? MemberId { get; set; }
    public bool Healthy { get; set; }
    public bool IsLeader { get; set; }
    public ulong? Leader { get; set; }
    public ulong? RaftTerm { get; set; }
    public ulong? RaftIndex { get; set; }
    public string? Version { get; set; }
    public long? DbSize { get; set; }
    public TimeSpan? Latency { get; set; }
    public IReadOnlyList<string> Alarms { get; set; } = Array.Empty<string>();
    public string? Error { get; set; }
}

public sealed class HealthQuery
{
    public required IReadOnlyList<Uri> Endpoints { get; init; }
    public required TlsClientIdentity Identity { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Check every member MemberList names, not only the given endpoints.</summary>
    public bool Cluster { get; init; }
}

/// <summary>Health of etcd endpoints over TLS with dotnet-etcd: every endpoint in parallel, each bounded by the timeout.</summary>
public static class ClusterHealth
{
    public static async Task<IReadOnlyList<ClusterMember>> MembersAsync(IReadOnlyList<Uri> endpoints, TlsClientIdentity identity, TimeSpan timeout, CancellationToken cancel)
    {
        var (members, _, errors) = await FirstMemberListAsync(endpoints, identity, new Deadline(timeout), explain: true, cancel).ConfigureAwait(false);
        return members ?? throw Unreachable(endpoints, errors);
    }

    /// <summary>
    /// Every endpoint at once, the whole call bounded by the query's timeout: an endpoint that has not answered by then
    /// is reported as such, never waited on again for a second step or an explanation.
    /// </summary>
    public static async Task<IReadOnlyList<EndpointHealth>> CheckAsync(HealthQuery query, CancellationToken cancel)
    {
        var deadline = new Deadline(query.Timeout);
        if (!query.Cluster)
        {
            // MemberList only names the results here, so it runs beside the checks instead of before them.
            var naming = FirstMemberListAsync(query.Endpoints, query.Identity, deadline, explain: false, cancel);
            var direct = await Task.WhenAll(query.Endpoints.Select(e => CheckOneAsync(e, null, routed: false, query, deadline, cancel))).ConfigureAwait(false);
            Name(direct, (await naming.ConfigureAwait(false)).Members);
            return direct;
        }

        var (members, answered, errors) = await FirstMemberListAsync(query.Endpoints, query.Identity, deadline, explain: true, cancel).ConfigureAwait(false);
        if (members is null) throw Unreachable(query.Endpoints, errors);

        // An endpoint that is none of the members' client URLs is something in front of the cluster (the proxy):
        // address each member through it, so a client that knows only the proxy still sees every member.
        bool throughFront = !members.Any(m => m.ClientUrls.Any(u => SameEndpoint(u, answered!)));
        var checks = members.Where(m => m.IsStarted).Select(async m =>
        {
            if (throughFront)
            {
                EndpointHealth routed = await CheckOneAsync(answered!, m, routed: true, query, deadline, cancel).ConfigureAwait(false);
                // Not our proxy (HAProxy, a DNS name over several members): the answer came from another member.
                if (routed.MemberId is null || routed.MemberId == m.Id) return routed;
            }

            Uri url = new(m.ClientUrls.FirstOrDefault() ?? throw new InvalidOperationException());
            return await CheckOneAsync(url, m, routed: false, query, deadline, cancel).ConfigureAwait(false);
        });
        var results = await Task.WhenAll(checks).ConfigureAwait(false);
        Name(results, members);
        return results;
    }

    private static void Name(IEnumerable<EndpointHealth> results, IReadOnlyList<ClusterMember>? members)
    {
        if (members is null) return;
        foreach (EndpointHealth r in results)
        {
            r.Name ??= members.FirstOrDefault(m => m.Id == r.MemberId)?.Name;
        }
    }

    private static async Task<(IReadOnlyList<ClusterMember>? Members, Uri? Answered, IReadOnlyList<string> Errors)> FirstMemberListAsync(
        IReadOnlyList<Uri> endpoints, TlsClientIdentity identity, Deadline deadline, bool explain, CancellationToken cancel)
    {
        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        done.CancelAfter(deadline.Left);
        var errors = new List<string>();
        var pending = endpoints.Select(async e =>
        {
            using var client = EtcdEndpointClient.Open(e, identity);
            try
            {
                MemberListResponse r = await client.Cluster.MemberListAsync(new MemberListRequest(), deadline: deadline.Utc, cancellationToken: done.Token).ResponseAsync.ConfigureAwait(false);
                return (Endpoint: e, Members: (IReadOnlyList<ClusterMember>?)r.Members.Select(m => new ClusterMember(m.ID, m.Name, m.PeerURLs.ToList(), m.ClientURLs.ToList(), m.IsLearner)).ToList(), Error: (string?)null);
            }
            catch (Exception ex) when (ex is RpcException or OperationCanceledException && !cancel.IsCancellationRequested)
            {
                return (Endpoint: e, Members: null, Error: explain ? await ExplainAsync(ex, client, deadline, cancel).ConfigureAwait(false) : null);
            }
        }).ToList();

        while (pending.Count > 0)
        {
            var finished = await Task.WhenAny(pending).ConfigureAwait(false);
            pending.Remove(finished);
            var (endpoint, members, error) = await finished.ConfigureAwait(false);
            if (members is not null)
            {
                done.Cancel();
                return (members, endpoint, errors);
            }

            errors.Add($"{endpoint.GetLeftPart(UriPartial.Authority)}: {error}");
        }

        return (null, null, errors);
    }

    private static async Task<EndpointHealth> CheckOneAsync(Uri endpoint, ClusterMember? member, bool routed, HealthQuery query, Deadline bounds, CancellationToken cancel)
    {
        ClusterMember? route = routed ? member : null;
        var result = new EndpointHealth
        {
            Endpoint = route is null ? endpoint.GetLeftPart(UriPartial.Authority) : route.ClientUrls.FirstOrDefault() ?? route.IdHex,
            Via = route is null ? null : endpoint.GetLeftPart(UriPartial.Authority),
            MemberId = member?.Id,
            Name = member?.Name,
        };
        using var client = EtcdEndpointClient.Open(endpoint, query.Identity, route?.Id);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        bound.CancelAfter(bounds.Left);
        DateTime deadline = bounds.Utc;
        try
        {
            StatusResponse status = await client.Maintenance.StatusAsync(new StatusRequest(), deadline: deadline, cancellationToken: bound.Token).ResponseAsync.ConfigureAwait(false);
            result.MemberId = status.Header.MemberId;
            result.Leader = status.Leader;
            result.IsLeader = status.Leader != 0 && status.Leader == status.Header.MemberId;
            result.RaftTerm = status.RaftTerm;
            result.RaftIndex = status.RaftIndex;
            result.Version = status.Version;
            result.DbSize = status.DbSize;
            if (route is not null && status.Header.MemberId != route.Id) return result;

            // What `etcdctl endpoint health` does: a linearizable read of "health"; permission denied still proves
            // the member can serve (auth is on and this user may not read that key).
            var watch = Stopwatch.StartNew();
            try
            {
                await client.Kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("health") }, deadline: deadline, cancellationToken: bound.Token).ResponseAsync.ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied)
            {
            }

            result.Latency = watch.Elapsed;
            AlarmResponse alarms = await client.Maintenance.AlarmAsync(new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Get }, deadline: deadline, cancellationToken: bound.Token).ResponseAsync.ConfigureAwait(false);
            result.Alarms = alarms.Alarms.Select(a => $"{a.Alarm} on {ClusterMember.FormatId(a.MemberID)}").ToList();
            result.Healthy = result.Alarms.Count == 0;
            if (!result.Healthy) result.Error = "active alarm: " + string.Join(", ", result.Alarms);
        }
        catch (Exception ex) when (ex is RpcException or OperationCanceledException && !cancel.IsCancellationRequested)
        {
            result.Healthy = false;
            result.Error = await ExplainAsync(ex, client, bounds, cancel).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>
    /// gRPC says "Unavailable" for every kind of failure; a second, plain TLS probe says which it was, within what is
    /// left of the call's time. With nothing left, the endpoint simply did not answer in time.
    /// </summary>
    private static async Task<string> ExplainAsync(Exception ex, EtcdEndpointClient client, Deadline deadline, CancellationToken cancel)
    {
        if (client.CertificateRejection is { } rejected) return "TLS: " + rejected;
        string late = $"no answer within {deadline.Timeout.TotalSeconds:0.#} s";
        if (ex is RpcException rpc && rpc.StatusCode is not (StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown))
        {
            return rpc.StatusCode == StatusCode.DeadlineExceeded ? late + " (no leader, the member is overloaded, or its port does not speak TLS)" : $"{rpc.StatusCode}: {rpc.Status.Detail}";
        }

        if (deadline.Left <= TimeSpan.Zero) return late;
        Uri e = client.Endpoint;
        // The probe has only what is left of the call: when that runs out, the endpoint did not answer within the
        // call's own bound, which is what is said (not the probe's remainder).
        var (why, timedOut) = await TlsProbe.DiagnoseWithTimeoutAsync(e.DialHost(), e.Port, client.Identity, deadline.Left, cancel, serverName: client.Route).ConfigureAwait(false);
        if (timedOut) return late;
        if (why is not null) return why;
        if (ex is OperationCanceledException) return late;
        return ex is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : ex.Message;
    }

    /// <summary>Whether a member's client URL is this endpoint (loopback names taken as one).</summary>
    internal static bool SameEndpoint(string url, Uri endpoint) =>
        Uri.TryCreate(url, UriKind.Absolute, out Uri? u) && u.Port == endpoint.Port && SameHost(u.IdnHost, endpoint.IdnHost);

    private static bool SameHost(string a, string b)
    {
        static string Norm(string h) => h.Trim('[', ']') is "localhost" or "127.0.0.1" or "::1" ? "loopback" : h.Trim('[', ']').ToLowerInvariant();
        return Norm(a) == Norm(b);
    }

    private static EtcdSecureException Unreachable(IReadOnlyList<Uri> endpoints, IReadOnlyList<string> errors) => new(
        "ClusterUnreachable", ErrorKind.ConnectionError,
        $"No endpoint answered MemberList: {string.Join("; ", errors)}", string.Join(",", endpoints.Select(e => e.GetLeftPart(UriPartial.Authority))));
}
