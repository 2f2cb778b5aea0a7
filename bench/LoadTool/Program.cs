// Load generator and TLS backend for the proxy benchmarks. Every mode speaks mutual TLS, as etcd does.
//   serve --port P                       backend: "BULK n\n" -> n bytes; "IDLE\n" -> "OK\n", hold; "GET ..." -> HTTP 200
//   bulk  --target H:P --streams S --bytes N     S connections each reading N/S bytes; prints MiB/s
//   idle  --target H:P --count C --hold-file F   opens C connections, one round trip each (as a client's first
//                                                request), prints READY, holds them idle until F exists
//   etcd  --target H:P --connections K --concurrency M --seconds T [--mix range|mixed]   linearizable Range ops/s
//         (mixed: each worker alternates a Put and a Range of a key of its own), p50/p99 ms; --timeline prints
//         START when the load begins and adds the requests completed in each second ("perSecond")
//   etcd-idle --target H:P --count C --hold-file F   opens C gRPC clients (one HTTP/2 connection each), one
//                                                Range each, prints READY, holds them idle until F exists
//   burst --target H:P --count C                C gRPC clients (one HTTP/2 connection each) started at once, one
//                                                Range each; prints how many answered, failed (and why), and when
//                                                the last answer came (ms from the start)
// Common: --ca CA.pem --cert C.pem --key K.pem
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Net.Client;

var opts = new Dictionary<string, string>();
for (int i = 1; i + 1 < args.Length; i += 2) opts[args[i].TrimStart('-')] = args[i + 1];
string Opt(string k, string? d = null) => opts.TryGetValue(k, out var v) ? v : d ?? throw new ArgumentException($"--{k} is required");

var ca = X509Certificate2.CreateFromPem(File.ReadAllText(Opt("ca")));
#pragma warning disable SYSLIB0057
var me = new X509Certificate2(X509Certificate2.CreateFromPemFile(Opt("cert"), Opt("key")).Export(X509ContentType.Pkcs12));
#pragma warning restore SYSLIB0057
bool Trusted(X509Certificate? c)
{
    if (c is null) return false;
    using var chain = new X509Chain();
    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
    chain.ChainPolicy.CustomTrustStore.Add(ca);
    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
    return chain.Build(new X509Certificate2(c));
}
SslClientAuthenticationOptions Client(string host, params SslApplicationProtocol[] alpn) => new()
{
    TargetHost = host,
    ClientCertificates = new X509CertificateCollection { me },
    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
    ApplicationProtocols = alpn.Length > 0 ? alpn.ToList() : null,
    RemoteCertificateValidationCallback = (_, c, _, e) => (e & SslPolicyErrors.RemoteCertificateNameMismatch) == 0 && Trusted(c),
};
(string Host, int Port) Target() { var t = Opt("target").Split(':'); return (t[0], int.Parse(t[1])); }
async Task<SslStream> Dial(string host, int port)
{
    var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
    await s.ConnectAsync(host, port);
    var ssl = new SslStream(new NetworkStream(s, true));
    await ssl.AuthenticateAsClientAsync(Client(host));
    return ssl;
}

switch (args[0])
{
    case "serve":
    {
        var ctx = SslStreamCertificateContext.Create(me, null, offline: true);
        var l = new Socket(SocketType.Stream, ProtocolType.Tcp);
        l.Bind(new IPEndPoint(IPAddress.Loopback, int.Parse(Opt("port"))));
        l.Listen(8192);
        byte[] chunk = new byte[64 * 1024];
        Random.Shared.NextBytes(chunk);
        Console.WriteLine("READY");
        while (true)
        {
            var c = await l.AcceptAsync();
            _ = Task.Run(async () =>
            {
                try
                {
                    await using var ssl = new SslStream(new NetworkStream(c, true));
                    await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                    {
                        ServerCertificateContext = ctx,
                        ClientCertificateRequired = true,
                        RemoteCertificateValidationCallback = (_, cert, _, _) => Trusted(cert),
                        ApplicationProtocols = new() { SslApplicationProtocol.Http11 },
                    });
                    var line = new StringBuilder();
                    var one = new byte[1];
                    while (line.Length < 256 && await ssl.ReadAsync(one) == 1 && one[0] != '\n') line.Append((char)one[0]);
                    string cmd = line.ToString();
                    if (cmd.StartsWith("GET ")) { await ssl.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"u8.ToArray()); return; }
                    if (cmd.StartsWith("BULK "))
                    {
                        long left = long.Parse(cmd[5..]);
                        while (left > 0) { int n = (int)Math.Min(left, chunk.Length); await ssl.WriteAsync(chunk.AsMemory(0, n)); left -= n; }
                        await ssl.ShutdownAsync();
                    }
                    if (cmd == "IDLE") await ssl.WriteAsync("OK\n"u8.ToArray());
                    while (await ssl.ReadAsync(one) > 0) { }
                }
                catch (Exception) { }
            });
        }
    }
    case "bulk":
    {
        var (host, port) = Target();
        int streams = int.Parse(Opt("streams", "1"));
        long each = long.Parse(Opt("bytes")) / streams;
        var conns = await Task.WhenAll(Enumerable.Range(0, streams).Select(_ => Dial(host, port)));
        var sw = Stopwatch.StartNew();
        long total = (await Task.WhenAll(conns.Select(async ssl =>
        {
            await ssl.WriteAsync(Encoding.ASCII.GetBytes($"BULK {each}\n"));
            var buf = new byte[64 * 1024];
            long got = 0;
            int n;
            while ((n = await ssl.ReadAsync(buf)) > 0) got += n;
            return got;
        }))).Sum();
        double s = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"{{\"bytes\":{total},\"seconds\":{s:0.000},\"mibps\":{total / s / 1048576:0.0}}}");
        return total == each * streams ? 0 : 1;
    }
    case "idle":
    {
        var (host, port) = Target();
        return await Hold(async () =>
        {
            var s = await Dial(host, port);
            await s.WriteAsync("IDLE\n"u8.ToArray());
            var ok = new byte[3];
            await s.ReadExactlyAsync(ok);
            return s;
        });
    }
    case "etcd-idle":
    {
        var (host, port) = Target();
        var key = ByteString.CopyFromUtf8("bench");
        return await Hold(async () =>
        {
            // Its own handler, so its own HTTP/2 connection, kept however long it idles.
            var handler = new SocketsHttpHandler { SslOptions = Client(host, SslApplicationProtocol.Http2), PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan };
            var channel = GrpcChannel.ForAddress($"https://{host}:{port}", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
            await new KV.KVClient(channel).RangeAsync(new RangeRequest { Key = key });
            return channel;
        });
    }
    case "burst":
    {
        var (host, port) = Target();
        int count = int.Parse(Opt("count"));
        var key = ByteString.CopyFromUtf8("burst");
        var errors = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var channels = new System.Collections.Concurrent.ConcurrentBag<GrpcChannel>();
        long last = 0;
        int ok = 0;
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sw = Stopwatch.StartNew();
        var all = Enumerable.Range(0, count).Select(async _ =>
        {
            await go.Task;
            try
            {
                var handler = new SocketsHttpHandler { SslOptions = Client(host, SslApplicationProtocol.Http2) };
                var channel = GrpcChannel.ForAddress($"https://{host}:{port}", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
                channels.Add(channel);
                await new KV.KVClient(channel).RangeAsync(new RangeRequest { Key = key }, deadline: DateTime.UtcNow.AddSeconds(60));
                Interlocked.Increment(ref ok);
                long at = sw.ElapsedMilliseconds, seen;
                while ((seen = Interlocked.Read(ref last)) < at && Interlocked.CompareExchange(ref last, at, seen) != seen) { }
            }
            catch (Exception ex)
            {
                errors.AddOrUpdate(ex.GetBaseException().Message.Split('\n')[0], 1, (_, n) => n + 1);
            }
        }).ToArray();
        sw.Restart();
        go.SetResult();
        await Task.WhenAll(all);
        foreach (var ch in channels) ch.Dispose();
        string why = string.Join(",", errors.Select(e => System.Text.Json.JsonSerializer.Serialize(e.Key) + ":" + e.Value));
        Console.WriteLine($"{{\"ok\":{ok},\"failed\":{count - ok},\"lastMs\":{Interlocked.Read(ref last)},\"errors\":{{{why}}}}}");
        return 0;
    }
    case "etcd":
    {
        var (host, port) = Target();
        int connections = int.Parse(Opt("connections", "4")), concurrency = int.Parse(Opt("concurrency", "16"));
        var duration = TimeSpan.FromSeconds(double.Parse(Opt("seconds", "5")));
        bool mixed = Opt("mix", "range") switch { "range" => false, "mixed" => true, var m => throw new ArgumentException($"--mix {m}: range or mixed") };
        var clients = Enumerable.Range(0, connections).Select(_ =>
        {
            var handler = new SocketsHttpHandler { SslOptions = Client(host, SslApplicationProtocol.Http2), EnableMultipleHttp2Connections = false };
            return new KV.KVClient(GrpcChannel.ForAddress($"https://{host}:{port}", new GrpcChannelOptions { HttpHandler = handler }));
        }).ToArray();
        var key = ByteString.CopyFromUtf8("bench");
        await clients[0].PutAsync(new PutRequest { Key = key, Value = ByteString.CopyFromUtf8(new string('x', 256)) });
        foreach (var c in clients) await c.RangeAsync(new RangeRequest { Key = key });
        var lat = new List<double>[connections * concurrency];
        bool timeline = opts.ContainsKey("timeline");
        var perSecond = new int[(int)Math.Ceiling(duration.TotalSeconds) + 2];
        // Every client is connected and has made a request: what a relay spends from here on is the load's, not the
        // handshakes' (those are measured per new client, on their own).
        Console.WriteLine("START");
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, connections * concurrency).Select(async w =>
        {
            var mine = lat[w] = new List<double>(100_000);
            var c = clients[w % connections];
            var own = ByteString.CopyFromUtf8($"bench/{w}");
            var value = ByteString.CopyFromUtf8(new string('y', 256));
            bool put = false;
            while (sw.Elapsed < duration)
            {
                long t0 = Stopwatch.GetTimestamp();
                if (!mixed) await c.RangeAsync(new RangeRequest { Key = key });
                else if (put = !put) await c.PutAsync(new PutRequest { Key = own, Value = value });
                else await c.RangeAsync(new RangeRequest { Key = own });
                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                if (timeline) Interlocked.Increment(ref perSecond[Math.Min(perSecond.Length - 1, (int)sw.Elapsed.TotalSeconds)]);
            }
        }));
        double secs = sw.Elapsed.TotalSeconds;
        var all = lat.SelectMany(l => l).OrderBy(x => x).ToArray();
        string series = timeline ? $",\"perSecond\":[{string.Join(',', perSecond)}]" : "";
        Console.WriteLine($"{{\"ops\":{all.Length},\"opsPerSecond\":{all.Length / secs:0},\"p50\":{all[all.Length / 2]:0.000},\"p99\":{all[(int)(all.Length * 0.99)]:0.000}{series}}}");
        return 0;
    }
}

return 2;

// Opens --count clients (64 at a time), prints READY with how many are up, holds them until --hold-file exists.
async Task<int> Hold(Func<Task<IDisposable>> open)
{
    int count = int.Parse(Opt("count"));
    var held = new List<IDisposable>(count);
    var gate = new SemaphoreSlim(64);
    await Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
    {
        await gate.WaitAsync();
        try
        {
            var c = await open();
            lock (held) held.Add(c);
        }
        finally { gate.Release(); }
    }));
    Console.WriteLine($"READY {held.Count}");
    string hold = Opt("hold-file");
    var deadline = Stopwatch.StartNew();
    while (!File.Exists(hold) && deadline.Elapsed < TimeSpan.FromMinutes(5)) await Task.Delay(100);
    foreach (var c in held) c.Dispose();
    return 0;
}
