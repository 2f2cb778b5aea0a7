using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecureTests
{
    /// <summary>
    /// A burst of real TLS clients (.NET's SslStream, as the module's own client stack uses), all started at once from
    /// one source address: each connects, authenticates with its client certificate, and asks GET /version through the
    /// proxy, keeping its connection open until every client is done, so that they are all there at the same time.
    /// </summary>
    public static class TlsBurst
    {
        public sealed class Result
        {
            public int Ok;
            public int Failed;
            public double LastMs;
            public string[] Errors = Array.Empty<string>();
        }

        public static Result Run(string source, int port, int clients, X509Certificate2 certificate, string caPath, int timeoutMs)
        {
            var trust = new X509Certificate2Collection();
            trust.ImportFromPemFile(caPath);
            var errors = new ConcurrentBag<string>();
            var sockets = new ConcurrentBag<IDisposable>();
            var clock = Stopwatch.StartNew();
            long last = 0;
            int ok = 0;
            using var cts = new CancellationTokenSource(timeoutMs);
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task[] all = Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
            {
                await start.Task;
                try
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    sockets.Add(s);
                    s.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
                    await s.ConnectAsync(IPAddress.Loopback, port, cts.Token);
                    var ssl = new SslStream(new NetworkStream(s, ownsSocket: false));
                    sockets.Add(ssl);
                    await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                    {
                        TargetHost = "localhost",
                        ClientCertificates = new X509CertificateCollection { certificate },
                        ApplicationProtocols = new() { SslApplicationProtocol.Http11 },
                        CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { trust[0] }, RevocationMode = X509RevocationMode.NoCheck },
                    }, cts.Token);
                    await ssl.WriteAsync(Encoding.ASCII.GetBytes("GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n"), cts.Token);
                    var buffer = new byte[512];
                    int n = await ssl.ReadAsync(buffer, cts.Token);
                    string answer = Encoding.ASCII.GetString(buffer, 0, n);
                    if (!answer.StartsWith("HTTP/1.1 200", StringComparison.Ordinal)) throw new Exception("answered: " + answer.Split('\r')[0]);
                    Interlocked.Increment(ref ok);
                    long at = clock.ElapsedMilliseconds;
                    long seen;
                    while ((seen = Interlocked.Read(ref last)) < at && Interlocked.CompareExchange(ref last, at, seen) != seen) { }
                }
                catch (Exception ex)
                {
                    errors.Add(ex.GetBaseException().GetType().Name + ": " + ex.GetBaseException().Message);
                }
            })).ToArray();
            clock.Restart();
            start.SetResult();
            Task.WaitAll(all);
            foreach (IDisposable d in sockets) { try { d.Dispose(); } catch { } }
            return new Result { Ok = ok, Failed = clients - ok, LastMs = Interlocked.Read(ref last), Errors = errors.GroupBy(e => e).Select(g => g.Count() + "x " + g.Key).ToArray() };
        }
    }
}

namespace EtcdSecureTests
{
    /// <summary>Clients that are not what they seem: one that stalls in its handshake, one that sends its hello at a crawl.</summary>
    public static class SlowClients
    {
        /// <summary>A real TLS 1.3 ClientHello, as .NET's client writes it.</summary>
        public static byte[] ClientHello()
        {
            var capture = new Capture();
            var ssl = new SslStream(capture);
            _ = ssl.AuthenticateAsClientAsync("localhost");
            if (!capture.Written.Wait(5000)) throw new TimeoutException("no ClientHello was written");
            return capture.Bytes.ToArray();
        }

        /// <summary>Sends a whole ClientHello, then never answers the proxy: stalled in the middle of its handshake.</summary>
        public static Socket Stalled(int port)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Connect(IPAddress.Loopback, port);
            s.Send(ClientHello());
            return s;
        }

        /// <summary>Sends a ClientHello one byte every <paramref name="intervalMs"/>: slow, but always making progress.</summary>
        public static Socket Trickle(int port, int intervalMs)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Connect(IPAddress.Loopback, port);
            s.NoDelay = true;
            byte[] hello = ClientHello();
            _ = Task.Run(async () =>
            {
                try
                {
                    foreach (byte b in hello)
                    {
                        s.Send(new[] { b });
                        await Task.Delay(intervalMs);
                    }
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                }
            });
            return s;
        }

        private sealed class Capture : System.IO.Stream
        {
            public readonly System.Collections.Generic.List<byte> Bytes = new();
            public readonly ManualResetEventSlim Written = new(false);
            public override bool CanRead => true;
            public override bool CanWrite => true;
            public override bool CanSeek => false;
            public override long Length => throw new NotSupportedException();
            public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
            public override void Flush() { }
            public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
            public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => new TaskCompletionSource<int>().Task;
            public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(new TaskCompletionSource<int>().Task);
            public override long Seek(long offset, System.IO.SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
            public override void Write(byte[] buffer, int offset, int count) { Bytes.AddRange(new ArraySegment<byte>(buffer, offset, count)); Written.Set(); }
            public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) { Write(buffer, offset, count); return Task.CompletedTask; }
            public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) { Bytes.AddRange(buffer.ToArray()); Written.Set(); return default; }
        }
    }
}
