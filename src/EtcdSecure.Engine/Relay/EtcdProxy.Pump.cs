using System;
using System.Buffers;
using System.Net.Security;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

public sealed partial class EtcdProxy
{
    private const int BufferSize = 16 * 1024; // one TLS record's worth of plaintext

    private void ReleaseBuffersWhenIdle(SslStream ssl, Transport transport)
    {
        // Only where one thread drives the connection: .NET's socket engine may run a read and a write of one SslStream
        // on two threads at once, and OpenSSL's buffer calls are not safe against that.
        if (!transport.OneThreadDrives || !OpenSslBuffers.TryRelease(ssl)) return;
        Interlocked.Increment(ref _buffersReleased);
        // Whatever the mode leaves behind is freed each time the connection falls idle.
        if (OpenSslBuffers.FreeWhenIdle(ssl, _countIdleFree) is { } free) transport.RunWhenIdle(free);
    }

    /// <summary>
    /// Copies one direction until its source ends, then passes the end on (close_notify and FIN), so a client that
    /// half-closes still gets the rest of the answer. The buffer is rented only while data is in flight: an idle
    /// connection waits in a zero-byte read and holds no buffer at all.
    /// </summary>
    private async Task PumpAsync(RelayConnection c, SslStream from, SslStream to, Transport toTransport, bool up)
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

            await to.ShutdownAsync().ConfigureAwait(false);
            // FIN after everything written so far: a loop stream may still hold gathered bytes that Socket.Shutdown would overtake.
            await toTransport.ShutdownSendAsync().ConfigureAwait(false);
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
