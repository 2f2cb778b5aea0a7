using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Tls;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// The proxy's TLS connection to a member on the shared <see cref="UpstreamTls"/> context: OpenSSL's SSL* over two
/// memory BIOs, fed from and drained to the proxy's own transport, as SslStream drives it.
/// </summary>
/// <remarks>
/// Every call into OpenSSL for this connection holds <see cref="_lock"/>: .NET's socket engine may run a read and a
/// write at once on two threads, and an SSL* is not safe against that. What OpenSSL writes goes to the transport
/// under <see cref="_sending"/>, taken before the bytes are taken, so records leave in the order they were made even
/// when a read makes one (a TLS 1.3 key update answered) while a write is under way.
/// </remarks>
internal sealed class UpstreamTlsStream : DuplexStream
{
    private const int ChunkSize = 16 * 1024 + 512; // a whole TLS record, header and tag included

    private readonly UpstreamTls _tls;
    private readonly OpenSsl _f;
    private readonly Transport _inner;
    private readonly object _lock = new();
    private readonly SemaphoreSlim _sending = new(1, 1);
    private readonly OpenSslPointer _owner; // frees the SSL* on Dispose, or in the finalizer should nobody dispose it
    private IntPtr _ssl; // the owner's handle, read under the lock; zero once disposed
    private IntPtr _rbio;
    private IntPtr _wbio;

    public UpstreamTlsStream(UpstreamTls tls, Transport inner)
    {
        _tls = tls;
        _f = tls.F;
        _inner = inner;
        _ssl = tls.NewSsl();
        if (_ssl == IntPtr.Zero) throw new IOException($"OpenSSL could not start a TLS connection: {_f.Errors()}");
        _owner = new OpenSslPointer(_ssl, _f.SslFree);
        try
        {
            SetFreshBios();
        }
        catch
        {
            _owner.Dispose();
            throw;
        }

        _f.SetConnectState(_ssl);
    }

    /// <summary>
    /// A member connection over <paramref name="inner"/> with its handshake done (<see cref="AuthenticateAsync"/>).
    /// The stream owns <paramref name="inner"/>: when anything fails, both are closed before the exception goes on.
    /// </summary>
    public static async Task<UpstreamTlsStream> OpenAsync(UpstreamTls tls, Transport inner, string host, SslApplicationProtocol protocol, Action<string>? onRejected, CancellationToken cancel)
    {
        UpstreamTlsStream? own = null;
        try
        {
            own = new UpstreamTlsStream(tls, inner);
            await own.AuthenticateAsync(host, protocol, onRejected, cancel).ConfigureAwait(false);
            return own;
        }
        catch
        {
            if (own is not null) await own.DisposeAsync().ConfigureAwait(false);
            else inner.Dispose();
            throw;
        }
    }

    public SslApplicationProtocol NegotiatedApplicationProtocol { get; private set; }

    /// <summary>The SSL*, for the direct relay, which drives it on the loop's thread once the handshake is done; zero once disposed.</summary>
    internal IntPtr Ssl => _ssl;

    internal OpenSsl Functions => _f;

    /// <summary>
    /// The client handshake: SNI (for a name, not an address), the one application protocol the client chose, and
    /// then the member's certificate judged as SslStream's callback would judge it.
    /// </summary>
    /// <param name="onRejected">Told why the member's certificate was refused.</param>
    public async Task AuthenticateAsync(string host, SslApplicationProtocol protocol, Action<string>? onRejected, CancellationToken cancel)
    {
        lock (_lock)
        {
            Live();
            if (!OpenSsl.IsIpLiteral(host))
            {
                IntPtr name = Marshal.StringToCoTaskMemUTF8(host);
                try { _f.SslCtrl(_ssl, OpenSsl.CtrlSetTlsextHostname, 0, name); } // OpenSSL keeps a copy
                finally { Marshal.FreeCoTaskMem(name); }
            }

            if (protocol != default)
            {
                byte[] wire = new byte[protocol.Protocol.Length + 1];
                wire[0] = (byte)protocol.Protocol.Length;
                protocol.Protocol.Span.CopyTo(wire.AsSpan(1));
                if (_f.SetAlpn(_ssl, wire, (uint)wire.Length) != 0) throw new AuthenticationException($"OpenSSL refused the application protocol: {_f.Errors()}");
            }
        }

        while (true)
        {
            int result, error;
            Chunk output;
            string? reason = null;
            lock (_lock)
            {
                Live();
                _f.ClearErrors();
                result = _f.DoHandshake(_ssl);
                error = result == 1 ? 0 : _f.GetError(_ssl, result);
                if (result != 1 && error != OpenSsl.ErrorWantRead) reason = _f.Errors();
                output = TakeOutput();
            }

            // No other operation runs yet, so this needs no turn at sending. An alert goes out too: the member learns
            // why, if it still listens.
            if (reason is not null)
            {
                try { await WriteOutAsync(output, cancel).ConfigureAwait(false); }
                catch (IOException) { }
                throw new AuthenticationException($"the TLS handshake with the member failed: {reason}");
            }

            await WriteOutAsync(output, cancel).ConfigureAwait(false);
            if (result == 1) break;
            if (!await FillAsync(cancel).ConfigureAwait(false)) throw new IOException("the member closed the connection during the TLS handshake");
        }

        string? rejected = JudgeServer(host);
        if (rejected is not null)
        {
            onRejected?.Invoke(rejected);
            throw new AuthenticationException("the member's certificate was refused: " + rejected);
        }

        lock (_lock)
        {
            Live();
            _f.GetAlpn(_ssl, out IntPtr data, out uint length);
            if (data != IntPtr.Zero && length > 0)
            {
                byte[] chosen = new byte[length];
                Marshal.Copy(data, chosen, 0, (int)length);
                NegotiatedApplicationProtocol = new SslApplicationProtocol(chosen);
            }
        }
    }

    /// <returns>Null when the chain the member sent ends at the upstream CA for server auth and names <paramref name="host"/>; otherwise why not.</returns>
    private string? JudgeServer(string host)
    {
        var sent = new List<byte[]>();
        lock (_lock)
        {
            Live();
            // On a client the peer's chain starts with its own certificate.
            IntPtr stack = _f.PeerChain(_ssl);
            int count = stack == IntPtr.Zero ? 0 : _f.StackCount(stack);
            for (int i = 0; i < count; i++) sent.Add(_f.DerOf(_f.StackValue(stack, i)));
        }

        if (sent.Count == 0 || sent[0].Length == 0) return "the server sent no certificate";
        if (_tls.Judged.IsKnownGood(host, sent, DateTime.UtcNow)) return null;
        var certificates = new List<X509Certificate2>();
        try
        {
            foreach (byte[] der in sent) certificates.Add(X509CertificateLoader.LoadCertificate(der));
            using var chain = new X509Chain { ChainPolicy = _tls.Identity.Trust.ChainPolicy(TrustedCAs.ServerAuth) };
            chain.ChainPolicy.ExtraStore.AddRange(certificates.GetRange(1, certificates.Count - 1).ToArray());
            bool built = chain.Build(certificates[0]);
            try
            {
                TlsClientIdentity.ValidateServer(certificates[0], chain, built ? SslPolicyErrors.None : SslPolicyErrors.RemoteCertificateChainErrors, out string? reason, dialledHost: host);
                if (reason is null && built)
                {
                    (DateTime from, DateTime until) = Validity(chain);
                    _tls.Judged.RememberGood(host, sent, from, until);
                }

                return reason;
            }
            finally
            {
                foreach (X509ChainElement element in chain.ChainElements) element.Certificate.Dispose();
            }
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            return $"the server certificate cannot be read: {ex.Message}";
        }
        finally
        {
            foreach (X509Certificate2 c in certificates) c.Dispose();
        }
    }

    /// <summary>When every certificate of the chain that was built is valid: the latest NotBefore to the earliest NotAfter, in UTC.</summary>
    private static (DateTime From, DateTime Until) Validity(X509Chain chain)
    {
        DateTime from = DateTime.MinValue, until = DateTime.MaxValue;
        foreach (X509ChainElement e in chain.ChainElements)
        {
            DateTime notBefore = e.Certificate.NotBefore.ToUniversalTime(), notAfter = e.Certificate.NotAfter.ToUniversalTime();
            if (notBefore > from) from = notBefore;
            if (notAfter < until) until = notAfter;
        }

        return (from, until);
    }

    /// <remarks>
    /// A zero-byte read is the pump's wait for data, and holds no buffer while it waits: records without application
    /// data (a TLS 1.3 session ticket after the handshake) are taken in on the way, so that an idle connection waits
    /// on its socket, where the relay can free its buffers, and not inside OpenSSL.
    /// </remarks>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            (int result, bool end, bool wrote, string? reason) = Take(buffer);
            // Reading can make a record to send (an answer to a key update).
            if (wrote) await SendAsync(shutdown: false, cancellationToken).ConfigureAwait(false);
            if (result > 0) return buffer.IsEmpty ? 0 : result;
            if (end) return 0;
            if (reason is not null) throw new IOException($"TLS from the member failed: {reason}");
            if (buffer.IsEmpty) await _inner.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            // At the end of the stream a zero-byte read returns, and the next read says so.
            if (!await FillAsync(cancellationToken).ConfigureAwait(false)) return 0;
        }
    }

    /// <summary>
    /// One SSL_read into <paramref name="buffer"/>, or for an empty one an SSL_peek of a byte: whether data came (or
    /// would), whether the stream ended (close_notify), whether OpenSSL has a record to send, and why it failed.
    /// </summary>
    private (int Result, bool End, bool Wrote, string? Reason) Take(Memory<byte> buffer)
    {
        Span<byte> one = stackalloc byte[1];
        lock (_lock)
        {
            Live();
            _f.ClearErrors();
            int result = buffer.IsEmpty ? _f.Peek(_ssl, ref one[0], 1) : _f.Read(_ssl, ref MemoryMarshal.GetReference(buffer.Span), buffer.Length);
            int error = result > 0 ? 0 : _f.GetError(_ssl, result);
            string? reason = result > 0 || error is OpenSsl.ErrorWantRead or OpenSsl.ErrorZeroReturn ? null : _f.Errors();
            return (result, error == OpenSsl.ErrorZeroReturn, _f.BioPending(_wbio) > 0, reason);
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return;
        await _sending.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Chunk output;
            lock (_lock)
            {
                Live();
                _f.ClearErrors();
                // With a memory BIO to write to, SSL_write takes everything at once.
                int result = _f.Write(_ssl, ref MemoryMarshal.GetReference(buffer.Span), buffer.Length);
                if (result != buffer.Length) throw new IOException($"TLS to the member failed: {_f.GetError(_ssl, result)}: {_f.Errors()}");
                output = TakeOutput();
            }

            await WriteOutAsync(output, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sending.Release();
        }
    }

    /// <summary>Sends close_notify: the member sees the end of the TLS stream before the FIN.</summary>
    public Task ShutdownAsync() => SendAsync(shutdown: true, CancellationToken.None).AsTask();

    /// <summary>Lets OpenSSL free its record buffers after each record (SSL_MODE_RELEASE_BUFFERS; the fallback without SSL_free_buffers).</summary>
    public bool TryReleaseBuffers()
    {
        lock (_lock)
        {
            return _ssl != IntPtr.Zero && (_f.SslCtrl(_ssl, OpenSsl.CtrlMode, OpenSsl.ModeReleaseBuffers, IntPtr.Zero) & OpenSsl.ModeReleaseBuffers) != 0;
        }
    }

    /// <summary>
    /// What gives back everything this connection holds in native memory while it waits: OpenSSL's record buffers
    /// and the two BIOs, whose buffers keep the size of the largest chunk they ever held. Nothing is freed while a
    /// record is part-read or waits to go out.
    /// </summary>
    public Action FreeWhenIdle(Action freed) => () =>
    {
        if (!Monitor.TryEnter(_lock)) return;
        try
        {
            if (_ssl == IntPtr.Zero || _f.BioPending(_rbio) > 0 || _f.BioPending(_wbio) > 0 || _f.SslPending(_ssl) > 0) return;
            if (_f.FreeBuffers(_ssl) != 1) return;
            SetFreshBios();
            freed();
        }
        catch (IOException)
        {
            // No memory for new BIOs: the connection keeps the ones it has.
        }
        finally
        {
            _f.ClearErrors();
            Monitor.Exit(_lock);
        }
    };

    protected override void Dispose(bool disposing)
    {
        lock (_lock)
        {
            if (_ssl != IntPtr.Zero)
            {
                _owner.Dispose(); // SSL_free, and both BIOs with it
                _ssl = _rbio = _wbio = IntPtr.Zero;
            }
        }

        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Live()
    {
        if (_ssl == IntPtr.Zero) throw new ObjectDisposedException(nameof(UpstreamTlsStream));
    }

    /// <summary>Gives the SSL* two new, empty memory BIOs; OpenSSL frees the ones it had.</summary>
    private void SetFreshBios()
    {
        IntPtr r = _f.BioNew(_f.MemMethod());
        IntPtr w = _f.BioNew(_f.MemMethod());
        if (r == IntPtr.Zero || w == IntPtr.Zero)
        {
            if (r != IntPtr.Zero) _f.BioFree(r);
            if (w != IntPtr.Zero) _f.BioFree(w);
            throw new IOException("OpenSSL could not allocate a BIO");
        }

        _f.SetBio(_ssl, r, w);
        _rbio = r;
        _wbio = w;
    }

    /// <summary>Reads what the member sent next into OpenSSL; false at the end of the stream.</summary>
    private async ValueTask<bool> FillAsync(CancellationToken cancel)
    {
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            int n = await _inner.ReadAsync(chunk.AsMemory(0, ChunkSize), cancel).ConfigureAwait(false);
            if (n == 0) return false;
            lock (_lock)
            {
                Live();
                if (_f.BioWrite(_rbio, ref chunk[0], n) != n) throw new IOException($"OpenSSL did not take what the member sent: {_f.Errors()}");
            }

            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    /// <summary>Sends what OpenSSL has written, after close_notify when <paramref name="shutdown"/>, in its turn.</summary>
    private async ValueTask SendAsync(bool shutdown, CancellationToken cancel)
    {
        await _sending.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            Chunk output;
            lock (_lock)
            {
                Live();
                if (shutdown)
                {
                    _f.ClearErrors();
                    _f.Shutdown(_ssl);
                    _f.ClearErrors();
                }

                output = TakeOutput();
            }

            await WriteOutAsync(output, cancel).ConfigureAwait(false);
        }
        finally
        {
            _sending.Release();
        }
    }

    private async ValueTask WriteOutAsync(Chunk output, CancellationToken cancel)
    {
        if (output.Buffer is null) return;
        try
        {
            await _inner.WriteAsync(output.Buffer.AsMemory(0, output.Count), cancel).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(output.Buffer);
        }
    }

    /// <summary>Everything OpenSSL has written, in a rented buffer; call under <see cref="_lock"/>.</summary>
    private Chunk TakeOutput()
    {
        int pending = (int)_f.BioPending(_wbio);
        if (pending <= 0) return default;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(pending);
        int n = _f.BioRead(_wbio, ref buffer[0], pending);
        if (n == pending) return new Chunk(buffer, n);
        ArrayPool<byte>.Shared.Return(buffer);
        throw new IOException($"OpenSSL's output could not be read: {_f.Errors()}");
    }

    private readonly record struct Chunk(byte[]? Buffer, int Count);
}
