using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// What SslStream reads a client's handshake through: never a byte past the end of the TLS record it is in. So when
/// the handshake ends, SslStream holds nothing the client sent after it (an HTTP/2 client's first bytes follow its
/// Finished at once), and its OpenSSL handle can be driven directly from there (<see cref="EtcdProxy"/>'s direct
/// relay). Turned off, it passes reads straight through.
/// </summary>
internal sealed class WholeRecords(Transport inner) : DuplexStream
{
    private int _left;      // bytes of the current record's body still to come
    private int _header;    // bytes of the current header read so far
    private readonly byte[] _head = new byte[5];

    /// <summary>Whether reads stop at record ends; turned off when the connection is not relayed directly.</summary>
    public bool Bounded { get; set; } = true;

    /// <summary>Whether the reads so far ended exactly at the end of a record.</summary>
    public bool AtRecordEnd => _left == 0 && _header == 0;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Bounded || buffer.IsEmpty) return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (_left == 0)
        {
            // The header first, alone: it says how long the body is.
            int n = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, 5 - _header)], cancellationToken).ConfigureAwait(false);
            if (n == 0) return 0;
            buffer.Span[..n].CopyTo(_head.AsSpan(_header));
            _header += n;
            if (_header == 5)
            {
                _left = (_head[3] << 8) | _head[4];
                _header = 0;
            }

            return n;
        }

        int read = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, _left)], cancellationToken).ConfigureAwait(false);
        _left -= read;
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
