using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Net.Security;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Health;

namespace EtcdSecure.Engine.Relay;

/// <summary>One etcd member as the proxy sees it: where it is, whether it takes new connections, and its load.</summary>
public sealed class Upstream
{
    private int _alive;
    internal int ActiveCount;
    internal long TotalCount;
    internal long FailureCount;
    internal int SlowProbes;

    internal Upstream(Uri url, ulong? id, string? name)
    {
        Url = url;
        Host = url.DialHost();
        Port = url.Port;
        Id = id;
        Name = name;
    }

    public Uri Url { get; }
    public string Host { get; }
    public int Port { get; }
    public ulong? Id { get; internal set; }
    public string? Name { get; internal set; }
    public bool Alive => Volatile.Read(ref _alive) == 1;
    public int Active => Volatile.Read(ref ActiveCount);
    public long Total => Interlocked.Read(ref TotalCount);
    public long Failures => Interlocked.Read(ref FailureCount);
    public string? LastError { get; internal set; }
    public DateTime Since { get; private set; } = DateTime.Now;

    /// <summary>Sets the state; true when it changed, so only changes are logged.</summary>
    internal bool SetAlive(bool alive, string? error)
    {
        if (!alive) LastError = error;
        if (Interlocked.Exchange(ref _alive, alive ? 1 : 0) == (alive ? 1 : 0)) return false;
        Since = DateTime.Now;
        return true;
    }

    public override string ToString() => Name is { Length: > 0 } ? $"{Name} ({Url.GetLeftPart(UriPartial.Authority)})" : Url.GetLeftPart(UriPartial.Authority);
}

/// <summary>
/// The members behind the proxy. New connections go only to live members: a member is taken out of rotation at
/// once when a connection to it fails (passive), or when the periodic TLS probe fails (active), and is put back
/// when a probe succeeds. The member list itself is kept fresh from MemberList.
/// </summary>
public sealed class UpstreamPool
{
    private readonly ProxyOptions _options;
    private readonly Reloading<TlsClientIdentity> _identity;
    private readonly Action<ProxyLogLevel, string> _log;
    private readonly Func<string, int, CancellationToken, Task<Stream>>? _connect;
    private readonly TlsProbe.ProbeHandshake? _handshake;
    private volatile Upstream[] _members = Array.Empty<Upstream>();
    private int _roundRobin;

    /// <param name="connect">Opens the probes' TCP connections; null uses .NET's sockets.</param>
    /// <param name="handshake">Makes the probes' TLS clients; null uses SslStream.</param>
    public UpstreamPool(ProxyOptions options, Reloading<TlsClientIdentity> identity, Action<ProxyLogLevel, string> log, Func<string, int, CancellationToken, Task<Stream>>? connect = null, TlsProbe.ProbeHandshake? handshake = null)
    {
        _options = options;
        _identity = identity;
        _log = log;
        _connect = connect;
        _handshake = handshake;
    }

    public IReadOnlyList<Upstream> Members => _members;

    /// <summary>The member for a new connection: the asked-for one when routed, else the live one with the fewest connections.</summary>
    public Upstream? Pick(ulong? route, Upstream? avoid)
    {
        Upstream[] all = _members;
        if (route is { } id) return all.FirstOrDefault(m => m.Id == id && m.Alive);

        Upstream? best = null;
        int start = (int)((uint)Interlocked.Increment(ref _roundRobin) % (uint)Math.Max(all.Length, 1));
        for (int i = 0; i < all.Length; i++)
        {
            Upstream m = all[(start + i) % all.Length];
            if (!m.Alive || ReferenceEquals(m, avoid)) continue;
            if (best is null || m.Active < best.Active) best = m;
        }

        // Every member looks down: the view may be stale (probes time out on an overloaded host), so try the one
        // that failed longest ago rather than refuse the client outright. A member that is really gone fails the
        // connect, and the client is refused then.
        if (best is null && avoid is null)
        {
            best = all.OrderBy(m => m.Since).FirstOrDefault();
        }

        return best;
    }

    /// <summary>A connection to the member failed: no new connections go there until a probe succeeds.</summary>
    public void Failed(Upstream m, string reason)
    {
        Interlocked.Increment(ref m.FailureCount);
        if (m.SetAlive(false, reason)) _log(ProxyLogLevel.Warning, $"member {m} out of rotation: {reason}");
    }

    /// <summary>A connection to a member thought down succeeded: it is back.</summary>
    public void Succeeded(Upstream m)
    {
        if (m.SetAlive(true, null)) _log(ProxyLogLevel.Information, $"member {m} in rotation (a connection to it succeeded)");
    }

    /// <summary>Finds the members (from client URLs, or from peer URLs as etcd's v2 proxy did) and probes them once.</summary>
    public async Task DiscoverAsync(CancellationToken cancel)
    {
        var found = new List<Upstream>();
        var errors = new List<string>();
        if (_options.Endpoints.Count > 0)
        {
            found.AddRange(_options.Endpoints.Select(u => new Upstream(u, null, null)));
        }
        else
        {
            foreach (Uri peer in _options.PeerUrls)
            {
                try
                {
                    found = await MembersFromPeerAsync(peer, cancel).ConfigureAwait(false);
                    _log(ProxyLogLevel.Information, $"discovered {found.Count} members from {peer.GetLeftPart(UriPartial.Authority)}/members");
                    break;
                }
                catch (Exception ex) when (ex is HttpRequestException or JsonException or OperationCanceledException && !cancel.IsCancellationRequested)
                {
                    errors.Add($"{peer.GetLeftPart(UriPartial.Authority)}: {(ex is OperationCanceledException ? "no answer" : ex.GetBaseException().Message)}");
                }
            }
        }

        if (found.Count == 0)
        {
            throw new EtcdSecureException("ProxyNoMembers", ErrorKind.ConnectionError,
                $"No member could be found from the peer URLs ({string.Join("; ", errors)}). The proxy's upstream certificate must be accepted by the members' peer port.",
                string.Join(",", _options.PeerUrls));
        }

        _members = found.ToArray();
        await ProbeAllAsync(cancel).ConfigureAwait(false);
        if (!_members.Any(m => m.Alive))
        {
            throw new EtcdSecureException("ProxyNoLiveMember", ErrorKind.ConnectionError,
                $"No member can be used by the proxy:{Environment.NewLine}- " + string.Join(Environment.NewLine + "- ", _members.Select(m => $"{m}: {m.LastError}")),
                string.Join(",", _members.Select(m => m.Url.GetLeftPart(UriPartial.Authority))));
        }

        await RefreshAsync(cancel).ConfigureAwait(false);
    }

    /// <summary>Probes members and refreshes the member list until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancel)
    {
        long nextRefresh = Environment.TickCount64 + (long)_options.RefreshInterval.TotalMilliseconds;
        using var timer = new PeriodicTimer(_options.HealthCheckInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancel).ConfigureAwait(false))
            {
                await ProbeAllAsync(cancel).ConfigureAwait(false);
                if (Environment.TickCount64 >= nextRefresh)
                {
                    await RefreshAsync(cancel).ConfigureAwait(false);
                    nextRefresh = Environment.TickCount64 + (long)_options.RefreshInterval.TotalMilliseconds;
                }
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
        }
    }

    private async Task ProbeAllAsync(CancellationToken cancel)
    {
        TlsClientIdentity identity = _identity.Value;
        TimeSpan timeout = TimeSpan.FromMilliseconds(Math.Min(1000, Math.Max(200, _options.HealthCheckInterval.TotalMilliseconds * 2)));
        await Task.WhenAll(_members.Select(async m =>
        {
            // A request, not just a handshake: under TLS 1.3 a member that refuses the proxy's certificate says so only after it.
            var (why, timedOut) = await TlsProbe.DiagnoseWithTimeoutAsync(m.Host, m.Port, identity, timeout, cancel, _connect, _handshake).ConfigureAwait(false);
            // A refusal is certain; one slow answer is what a busy member looks like too. Two in a row take it out.
            int slow = timedOut ? Interlocked.Increment(ref m.SlowProbes) : 0;
            if (!timedOut) Volatile.Write(ref m.SlowProbes, 0);
            if (timedOut && slow < 2 && m.Alive) return;
            if (m.SetAlive(why is null, why))
            {
                _log(why is null ? ProxyLogLevel.Information : ProxyLogLevel.Warning, why is null ? $"member {m} in rotation" : $"member {m} out of rotation: {why}");
            }
        })).ConfigureAwait(false);
    }

    private async Task RefreshAsync(CancellationToken cancel)
    {
        Upstream? source = _members.FirstOrDefault(m => m.Alive);
        if (source is null) return;
        IReadOnlyList<ClusterMember> list;
        try
        {
            list = await ClusterHealth.MembersAsync(new[] { source.Url }, _identity.Value, TimeSpan.FromSeconds(2), cancel).ConfigureAwait(false);
        }
        catch (EtcdSecureException ex)
        {
            _log(ProxyLogLevel.Verbose, $"member list from {source} failed: {ex.Message}");
            return;
        }

        Upstream[] current = _members;
        var next = new List<Upstream>();
        foreach (ClusterMember cm in list.Where(m => m.IsStarted && m.ClientUrls.Count > 0 && !m.IsLearner))
        {
            Upstream? known = current.FirstOrDefault(u => u.Id == cm.Id) ?? current.FirstOrDefault(u => cm.ClientUrls.Any(c => SameUrl(c, u.Url)));
            if (known is null)
            {
                known = new Upstream(new Uri(cm.ClientUrls[0]), cm.Id, cm.Name);
                _log(ProxyLogLevel.Information, $"member {known} joined the cluster");
            }

            known.Id = cm.Id;
            known.Name = cm.Name;
            next.Add(known);
        }

        foreach (Upstream gone in current.Where(u => !next.Contains(u)))
        {
            _log(ProxyLogLevel.Information, $"member {gone} is no longer in the cluster");
        }

        bool added = next.Any(n => !current.Contains(n));
        _members = next.ToArray();
        if (added) await ProbeAllAsync(cancel).ConfigureAwait(false);
    }

    private static bool SameUrl(string a, Uri b) => Uri.TryCreate(a, UriKind.Absolute, out Uri? u) && u.Port == b.Port && string.Equals(u.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase);

    /// <summary>etcd serves its member list on the peer port at /members (what the v2 proxy read); it needs a peer-trusted client certificate.</summary>
    private async Task<List<Upstream>> MembersFromPeerAsync(Uri peer, CancellationToken cancel)
    {
        string host = peer.DialHost();
        using var http = new HttpClient(new SocketsHttpHandler { SslOptions = _identity.Value.ClientOptions(host, SslApplicationProtocol.Http11) })
        {
            Timeout = TimeSpan.FromSeconds(3),
        };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(TimeSpan.FromSeconds(3));
        string json = await http.GetStringAsync(new Uri(peer, "/members"), cts.Token).ConfigureAwait(false);
        using JsonDocument doc = JsonDocument.Parse(json);
        var list = new List<Upstream>();
        foreach (JsonElement m in doc.RootElement.EnumerateArray())
        {
            string? client = m.TryGetProperty("clientURLs", out JsonElement c) && c.GetArrayLength() > 0 ? c[0].GetString() : null;
            if (client is null) continue;
            ulong? id = m.TryGetProperty("id", out JsonElement idEl) && ulong.TryParse(idEl.ToString(), System.Globalization.NumberStyles.HexNumber, null, out ulong v) ? v : null;
            list.Add(new Upstream(new Uri(client), id, m.TryGetProperty("name", out JsonElement n) ? n.GetString() : null));
        }

        return list;
    }
}
