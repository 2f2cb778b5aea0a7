using System;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// How a detached proxy is reached from other sessions: a Unix domain socket, mode 0600 in the user's 0700 state
/// folder, so only the same user can connect. One line in ("stats" or "stop"), one line of JSON out.
/// </summary>
public sealed class ControlServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly EtcdProxy _proxy;
    private readonly Action _stop;
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _serving;

    private ControlServer(Socket listener, EtcdProxy proxy, Action stop)
    {
        _listener = listener;
        _proxy = proxy;
        _stop = stop;
        _serving = Task.Run(ServeAsync);
    }

    public string Path { get; private init; } = "";

    public static ControlServer Start(string path, EtcdProxy proxy, Action stop)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new EtcdSecureException("PlatformNotSupported", ErrorKind.NotImplemented, "A detached proxy's control channel is not implemented on Windows yet; run Start-EtcdProxy -Wait as a service instead.", path);
        }

        if (Encoding.UTF8.GetByteCount(path) > 100)
        {
            throw new EtcdSecureException("ControlSocketPathTooLong", ErrorKind.InvalidArgument,
                $"The control socket path '{path}' is longer than a Unix socket allows (about 100 bytes); set ETCDSECURE_STATE_DIR to a shorter folder.", path);
        }

        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(16);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return new ControlServer(listener, proxy, stop) { Path = path };
    }

    private async Task ServeAsync()
    {
        while (!_closing.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_closing.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        await AnswerAsync(new NetworkStream(client, ownsSocket: false)).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
                    {
                        // A client that went away; the next one is served as usual.
                    }
                }
            });
        }
    }

    private async Task AnswerAsync(Stream stream)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        using var reader = new StreamReader(stream, Encoding.UTF8, leaveOpen: true);
        string? request = await reader.ReadLineAsync(cts.Token).ConfigureAwait(false);
        string answer = request?.Trim() switch
        {
            "stats" => JsonSerializer.Serialize(ProxyStats.Of(_proxy)),
            "stop" => "\"stopping\"",
            _ => "\"unknown request\"",
        };
        await stream.WriteAsync(Encoding.UTF8.GetBytes(answer + "\n"), cts.Token).ConfigureAwait(false);
        await stream.FlushAsync(cts.Token).ConfigureAwait(false);
        if (request?.Trim() == "stop") _stop();
    }

    public async ValueTask DisposeAsync()
    {
        _closing.Cancel();
        _listener.Dispose();
        try
        {
            await _serving.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        File.Delete(Path);
    }
}

/// <summary>The other end of <see cref="ControlServer"/>.</summary>
public static class ControlClient
{
    /// <summary>The detached proxy's counters, or null when nothing answers on the socket.</summary>
    public static async Task<ProxyStats?> StatsAsync(string path, TimeSpan timeout, CancellationToken cancel = default)
    {
        string? line = await AskAsync(path, "stats", timeout, cancel).ConfigureAwait(false);
        return line is null ? null : JsonSerializer.Deserialize<ProxyStats>(line);
    }

    /// <summary>Asks the proxy to stop; true when it took the request.</summary>
    public static async Task<bool> StopAsync(string path, TimeSpan timeout, CancellationToken cancel = default) =>
        await AskAsync(path, "stop", timeout, cancel).ConfigureAwait(false) is not null;

    private static async Task<string?> AskAsync(string path, string request, TimeSpan timeout, CancellationToken cancel)
    {
        if (!File.Exists(path)) return null;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cts.Token).ConfigureAwait(false);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            await stream.WriteAsync(Encoding.UTF8.GetBytes(request + "\n"), cts.Token).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return await reader.ReadLineAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException && !cancel.IsCancellationRequested)
        {
            return null;
        }
    }
}
