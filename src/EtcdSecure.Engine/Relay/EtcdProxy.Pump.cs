using System;
using System.Buffers;
using System.IO;
using System.Net.Security;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

public sealed partial class EtcdProxy
{
    private const int BufferSize = 16 * 1024; // one TLS record's worth of plaintext

    private void ReleaseBuffersWhenIdle(Stream tls, Transport transport)
    {
        // Only where one thread drives the connection: .NET's socket engine may run a read and a write of one SslStream
        // on two threads at once, and OpenSSL's buffer calls are not safe against that. (The proxy's own upstream
        // stream would be, under its lock; it follows the same rule, so the counters mean one thing.)
        if (!transport.OneThreadDrives) return;
        // The buffers go back once the connection has been idle for a moment (SSL_free_buffers; see
        // EventLoop.WatchIdle), not after every record: a busy connection keeps them, as allocating them again for
        // each request cost more than the memory they hold while it is busy.
        Action? free = tls switch
        {
            SslStream ssl => OpenSslBuffers.FreeWhenIdle(ssl, _countIdleFree),
            UpstreamTlsStream own when OpenSslBuffers.IdleFreeUnavailable is null => own.FreeWhenIdle(_countIdleFree),
            _ => null,
        };
        if (free is not null)
        {
            transport.RunWhenIdle(free);
            Interlocked.Increment(ref _buffersReleased);
            return;
        }

        // Without SSL_free_buffers (an OpenSSL older than the fix for CVE-2024-4741): OpenSSL's own mode, which frees
        // them after each record.
        bool released = tls switch
        {
            SslStream ssl => OpenSslBuffers.TryRelease(ssl),
            UpstreamTlsStream own => OpenSslBuffers.Unavailable is null && own.TryReleaseBuffers(),
            _ => false,
        };
        if (released) Interlocked.Increment(ref _buffersReleased);
    }

    /// <summary>
    /// Copies one direction until its source ends, then passes the end on (close_notify and FIN), so a client that
    /// half-closes still gets the rest of the answer. The buffer is rented only while data is in flight: an idle
    /// connection waits in a zero-byte read and holds no buffer at all.
    /// </summary>
    private async Task PumpAsync(RelayConnection c, Stream from, Stream to, Func<Task> endTo, Transport toTransport, bool up)
    {
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                await from.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
                buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                int n = await from.ReadAsync(buffer.AsMemory(0, BufferSize)).ConfigureAwait(false);
                if (n == 0) break;
                await to.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = null;
                Interlocked.Add(ref up ? ref _bytesUp : ref _bytesDown, n);
                c.Touch();
            }

            await endTo().ConfigureAwait(false);
            // FIN after everything written so far: a loop stream may still hold gathered bytes that Socket.Shutdown would overtake.
            await toTransport.ShutdownSendAsync().ConfigureAwait(false);
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
