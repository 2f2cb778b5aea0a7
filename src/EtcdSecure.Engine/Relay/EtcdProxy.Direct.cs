using System;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace EtcdSecure.Engine.Relay;

public sealed partial class EtcdProxy
{
    /// <summary>
    /// An authenticated connection relayed record by record on its loop's thread, straight from one OpenSSL SSL* to
    /// the other: the client's (SslStream's own, which it no longer uses once the handshake is done) and the member's
    /// (<see cref="UpstreamTlsStream"/>'s). No tasks, no streams, no awaits per record: ciphertext from a socket into the
    /// SSL*'s memory BIO, SSL_read, SSL_write into the other SSL*, its ciphertext out to the other socket.
    /// </summary>
    /// <remarks>
    /// Everything here runs on the loop's thread, one event at a time, so nothing here needs a lock. A stream that
    /// closes from another thread (an abort, the proxy stopping) only asks the loop to finish the relay; the SSL*s are
    /// freed after that, by the connection's disposal, never while the loop may still use them.
    /// </remarks>
    private sealed class DirectRelay : IDirectReady
    {
        private const int RecordsPerTurn = 32; // then the loop's other connections get a turn, as a loop stream's reads do
        private const int WireRecord = 16 * 1024 + 512; // the most one SSL_write of up to 16 KiB makes: one record

        // Read from a socket at once when the other side has room for it: in bulk, one receive for about four records
        // instead of one each. Measured: see docs/benchmarks.md.
        private const int ReceiveBytes = 64 * 1024;

        [ThreadStatic] private static byte[]? t_plain;
        [ThreadStatic] private static byte[]? t_wire;
        [ThreadStatic] private static byte[]? t_received;

        private readonly EtcdProxy _proxy;
        private readonly RelayConnection _c;
        private readonly OpenSsl _f;
        private readonly Side _client;
        private readonly Side _member;
        private readonly SafeHandle _clientHandle; // referenced while the relay runs, so that SslStream cannot free it under us
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private bool _finished;
        private int _finishQueued;

        private DirectRelay(EtcdProxy proxy, RelayConnection c, OpenSsl f, Side client, Side member, SafeHandle clientHandle)
        {
            _proxy = proxy;
            _c = c;
            _f = f;
            _client = client;
            _member = member;
            _clientHandle = clientHandle;
        }

        private sealed class Side(IDirectTransport transport, IntPtr ssl, bool up)
        {
            public readonly IDirectTransport T = transport;
            public readonly IntPtr Ssl = ssl;
            public readonly bool Up = up;     // reading this side carries bytes up, to the member
            public string Name => Up ? "client" : "member";
            public bool InputEnded;           // nothing more comes from this side (close_notify or end of stream)
        }

        /// <summary>
        /// Takes the connection over when both its sides allow it; then the returned task ends with the relay, as the
        /// pumps' would. Null, and <paramref name="why"/>, when it cannot: the pumps relay it as before.
        /// </summary>
        public static Task? TryStart(EtcdProxy proxy, RelayConnection c, out string? why)
        {
            why = null;
            if (c.ClientStream.Direct is not { } client || c.UpstreamStream?.Direct is not { } member) { why = "not on the event loops"; return null; }
            if (client.Driver != member.Driver) { why = "the member connection is driven by another thread"; return null; }
            if (c.Upstream is not UpstreamTlsStream own || own.Ssl == IntPtr.Zero) { why = "member connections are not on the shared client context"; return null; }
            if (c.Records is not { AtRecordEnd: true }) { why = "the client's handshake was not read record by record"; return null; }
            if (c.Client is not { } ssl || LibSsl.HandleOf(ssl) is not { } handle) { why = "SslStream's OpenSSL handle cannot be reached"; return null; }
            OpenSsl f = own.Functions;
            bool added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                IntPtr s = handle.DangerousGetHandle();
                // What SslStream leaves behind must be nothing but the SSL* itself: memory BIOs with nothing in them, no
                // record half-read. Anything else is a runtime this code does not know.
                IntPtr r = f.GetRbio(s), w = f.GetWbio(s);
                if (r == IntPtr.Zero || w == IntPtr.Zero || f.BioMethodType(r) != OpenSsl.BioTypeMem || f.BioMethodType(w) != OpenSsl.BioTypeMem)
                {
                    why = "SslStream's OpenSSL handle does not use memory BIOs";
                }
                else if (f.BioPending(r) != 0 || f.BioPending(w) != 0 || f.SslPending(s) != 0)
                {
                    why = "SslStream left bytes in its OpenSSL handle";
                }
                // Nothing SslStream read may wait in its own buffer either: the reads record by record make sure of it,
                // and where the runtime lets this be checked, it is. An empty buffer goes back to the pool (should a
                // later check fail, SslStream rents one again for the copy loops).
                else if (SslStreamBuffer.ReturnIfEmpty(ssl) is > 0)
                {
                    why = "SslStream holds bytes past its handshake";
                }
                // SslStream refuses a renegotiation itself, when it sees one; OpenSSL alone would go along with a
                // client's new ClientHello with a whole second handshake (seen in the tests). It must refuse them.
                else if ((f.SslSetOptions(s, OpenSsl.OpNoRenegotiation) & OpenSsl.OpNoRenegotiation) == 0)
                {
                    why = "OpenSSL would not turn renegotiation off on SslStream's handle";
                }

                if (why is not null) return null;
                var relay = new DirectRelay(proxy, c, f, new Side(client, s, up: true), new Side(member, own.Ssl, up: false), handle);
                added = false; // the relay releases it
                try
                {
                    client.BeginDirect(relay);
                    member.BeginDirect(relay);
                }
                catch (InvalidOperationException ex)
                {
                    // One side may already send its events to the relay: the connection ends, as a failed pump ends it.
                    relay.Finish(new IOException("the connection could not be relayed directly: " + ex.Message, ex));
                    return relay._done.Task;
                }

                // Whatever arrived during the handshakes (the client's first bytes, the member's settings) is there now.
                relay.OnReady();
                return relay._done.Task;
            }
            catch (ObjectDisposedException)
            {
                why = "the connection closed";
                return null;
            }
            finally
            {
                if (added) handle.DangerousRelease();
            }
        }

        public void OnReady()
        {
            if (_finished) return;
            // SSL_get_error reads this thread's error queue: whatever another connection's failure left there must go.
            _f.ClearErrors();
            if (Pump(_client, _member) && !_finished) Pump(_member, _client);
            TryComplete();
        }

        public void OnClosed()
        {
            if (Interlocked.Exchange(ref _finishQueued, 1) != 0) return;
            if (_client.T.OnDriverThread) Finish(new IOException("The connection was closed."));
            else _client.T.Post(() => Finish(new IOException("The connection was closed.")));
        }

        /// <returns>False once the relay has finished.</returns>
        private bool Pump(Side from, Side to)
        {
            byte[] plain = t_plain ??= new byte[16 * 1024];
            byte[] received = t_received ??= new byte[ReceiveBytes];
            int fed = 0, got = 0; // received[fed..got]: read from the socket, not yet handed to OpenSSL
            // A turn goes on past its length to hand over what was read (in bulk, a few records more), but no further
            // than twice that: 64 KiB of one-byte records would otherwise keep the loop to itself for milliseconds.
            for (int turn = 0; turn < RecordsPerTurn || (fed < got && turn < 2 * RecordsPerTurn); turn++)
            {
                if (from.InputEnded) return true;
                // A record read here becomes one for the other side: only while that side holds less than its limit
                // for a slow reader. When it holds that much, an event says when its socket has taken some.
                int room = to.T.RoomDirect(WireRecord);
                if (room < WireRecord) return Keep(from, received, fed, got);
                int n = _f.Read(from.Ssl, ref plain[0], plain.Length);
                if (n > 0)
                {
                    if (_f.Write(to.Ssl, ref plain[0], n) != n) return Fail($"TLS to the {to.Name} failed: {_f.Errors()}");
                    if (!SendOutput(to)) return false;
                    Interlocked.Add(ref from.Up ? ref _proxy._bytesUp : ref _proxy._bytesDown, n);
                    _c.Touch();
                    continue;
                }

                int error = _f.GetError(from.Ssl, n);
                if (error == OpenSsl.ErrorZeroReturn) return End(from, to);
                if (error != OpenSsl.ErrorWantRead) return Fail($"TLS from the {from.Name} failed: {_f.Errors()}");
                // Reading can make a record of its own to send back (an answer to a key update).
                if (!SendOutput(from)) return false;
                if (fed == got)
                {
                    // As much as the other side has room for, so that what is read is relayed in this turn.
                    fed = 0;
                    got = from.T.ReceiveDirect(received.AsSpan(0, Math.Min(received.Length, room)), out SocketError socketError);
                    if (got < 0) return true; // the next event goes on
                    if (got == 0) return socketError == SocketError.Success ? End(from, to) : Fail($"the {from.Name} connection failed: {socketError}");
                }

                // A record's worth at a time: OpenSSL's memory BIO keeps the largest buffer it ever grew to for as long as
                // the connection lives. Only what a turn leaves over (Keep) goes in at once.
                int slice = Math.Min(got - fed, WireRecord);
                if (!Feed(from, received, fed, slice)) return false;
                fed += slice;
            }

            // More may be waiting: the loop's other connections first.
            if (!Keep(from, received, fed, got)) return false;
            from.T.YieldDirect();
            return true;
        }

        /// <summary>
        /// The other side has no room, or the turn is over: what was read and not yet handed to OpenSSL waits in its BIO
        /// for the next turn.
        /// </summary>
        private bool Keep(Side from, byte[] received, int fed, int got) => fed == got || Feed(from, received, fed, got - fed);

        /// <summary>Hands <paramref name="count"/> bytes read from <paramref name="from"/>'s socket to its OpenSSL handle.</summary>
        private bool Feed(Side from, byte[] received, int start, int count) =>
            _f.BioWrite(_f.GetRbio(from.Ssl), ref received[start], count) == count || Fail($"OpenSSL did not take what was read: {_f.Errors()}");

        /// <summary>Nothing more comes from <paramref name="from"/>: close_notify and the FIN go on to <paramref name="to"/>, whose own direction goes on.</summary>
        private bool End(Side from, Side to)
        {
            from.InputEnded = true;
            // SslStream keeps its handle quiet (no close_notify when it is freed) and lifts that for its own shutdown.
            _f.SetQuietShutdown(to.Ssl, 0);
            _f.Shutdown(to.Ssl);
            _f.ClearErrors();
            if (!SendOutput(to)) return false;
            to.T.ShutdownSendDirect();
            TryComplete();
            return !_finished;
        }

        /// <summary>
        /// Both directions have ended: the relay is over once every byte and both FINs are out, as the pumps' ends
        /// waited for theirs. A socket that cannot take the rest yet says when it can (an event), and this runs again.
        /// </summary>
        private void TryComplete()
        {
            if (_finished || !_client.InputEnded || !_member.InputEnded) return;
            bool clientDone = _client.T.FlushDirect();
            if (_member.T.FlushDirect() && clientDone) Finish(null);
        }

        /// <summary>Everything OpenSSL wrote for <paramref name="side"/>, behind what waits already, to its socket.</summary>
        private bool SendOutput(Side side)
        {
            IntPtr wbio = _f.GetWbio(side.Ssl);
            byte[] wire = t_wire ??= new byte[WireRecord];
            for (int pending = (int)_f.BioPending(wbio); pending > 0; pending = (int)_f.BioPending(wbio))
            {
                int n = _f.BioRead(wbio, ref wire[0], Math.Min(pending, wire.Length));
                if (n <= 0) return Fail($"OpenSSL's output could not be read: {_f.Errors()}");
                if (!side.T.SendDirect(wire.AsSpan(0, n), out SocketError error)) return Fail($"the {side.Name} connection failed: {error}");
            }

            return true;
        }

        private bool Fail(string why)
        {
            _f.ClearErrors();
            _c.Abort();
            Finish(new IOException(why));
            return false;
        }

        /// <summary>On the loop's thread: the relay is over, and it never touches either SSL* again.</summary>
        private void Finish(Exception? error)
        {
            if (_finished) return;
            _finished = true;
            _clientHandle.DangerousRelease();
            if (error is null) _done.TrySetResult();
            else _done.TrySetException(error);
        }
    }
}
