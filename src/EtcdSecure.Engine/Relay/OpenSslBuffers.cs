using System;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Threading;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// Lets OpenSSL free a TLS connection's record buffers (about 34 KiB: one record in, one out) while the connection
/// is idle: SSL_free_buffers once it has waited a moment (<see cref="FreeWhenIdle"/>), or, where that call is not safe,
/// SSL_MODE_RELEASE_BUFFERS after every record (<see cref="TryRelease"/>). A relay holds two TLS sides per connection
/// and most etcd client connections sit idle, so this is the largest single part of its memory per connection
/// (measured by the idle benchmark and a native heap profile).
/// </summary>
/// <remarks>
/// SslStream does not expose its OpenSSL handle; <see cref="LibSsl"/> reaches it, checked once. If this runtime is
/// laid out differently, <see cref="Unavailable"/> says why and connections simply keep their buffers. The
/// mode is set between the handshake and the first read or write, when no other thread can be using the connection;
/// <see cref="FreeWhenIdle"/> runs on the thread that drives the connection, between its calls into OpenSSL.
/// Setting ETCDSECURE_TLS_KEEP_BUFFERS=1 before the proxy starts turns both off, should a runtime or OpenSSL build
/// ever misbehave with them.
/// </remarks>
public static class OpenSslBuffers
{
    private const int SslCtrlMode = 33;           // SSL_CTRL_MODE, the same in OpenSSL 1.1 and 3.x
    private const long SslModeReleaseBuffers = 0x10;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long SslCtrl(IntPtr ssl, int cmd, long larg, IntPtr parg);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SslFreeBuffers(IntPtr ssl);

    private sealed record Bound(SslCtrl? Ctrl, SslFreeBuffers? Free, string? Why, string? IdleFreeOff);

    private static Bound? _binding;

    /// <summary>"ETCDSECURE_TLS_KEEP_BUFFERS=1" when that switch keeps every TLS buffer a connection has (SslStream's handshake buffer too); otherwise null.</summary>
    internal static readonly string? KeepSwitch = EnvironmentSwitch.Set("ETCDSECURE_TLS_KEEP_BUFFERS", "1");

    // Settled once libssl is found or cannot work here; "not loaded yet" is asked again next time.
    private static Bound Binding => Volatile.Read(ref _binding) ?? Settle(Bind());

    private static Bound Settle((Bound Result, bool Final) b)
    {
        if (b.Final) Volatile.Write(ref _binding, b.Result);
        return b.Result;
    }

    /// <summary>Why the buffers cannot be released on this runtime, or null when they can.</summary>
    public static string? Unavailable => Binding.Why;

    /// <summary>Why idle connections cannot have their buffers freed by SSL_free_buffers, or null when they can.</summary>
    public static string? IdleFreeUnavailable => Binding.IdleFreeOff;

    /// <summary>Switches SSL_MODE_RELEASE_BUFFERS on for one connection whose handshake is done and which nothing else is using (the fallback without <see cref="FreeWhenIdle"/>).</summary>
    public static bool TryRelease(SslStream stream)
    {
        (SslCtrl? ctrl, _, _, _) = Binding;
        return ctrl is not null && LibSsl.HandleOf(stream) is { } handle
            && LibSsl.Call(handle, ctrl, static (ssl, ctrl) => (ctrl(ssl, SslCtrlMode, SslModeReleaseBuffers, IntPtr.Zero) & SslModeReleaseBuffers) != 0);
    }

    /// <summary>
    /// What frees this connection's record buffers while it waits for data, or null where that cannot be done.
    /// SSL_free_buffers frees both, whatever the last record was (the mode alone keeps the 16 KiB read buffer after a
    /// record with no application data, such as a TLS 1.3 session ticket: heaptrack found one on nearly every member
    /// connection in the idle benchmark), and refuses while a record is part-read or waits to go out.
    /// </summary>
    /// <remarks>
    /// Call the returned action only from the one thread that drives this connection's TLS, between calls into it.
    /// <paramref name="freed"/> runs each time OpenSSL took the call (it holds no buffer afterwards).
    /// </remarks>
    public static Action? FreeWhenIdle(SslStream stream, Action? freed = null)
    {
        (_, SslFreeBuffers? free, _, _) = Binding;
        if (free is null || LibSsl.HandleOf(stream) is not { } handle) return null;
        return () =>
        {
            if (LibSsl.Call(handle, free, static (ssl, free) => free(ssl) == 1)) freed?.Invoke();
        };
    }

    private static (Bound Result, bool Final) Bind()
    {
        if (KeepSwitch is { } keep) return (Off(keep), true);
        if (LibSsl.Bind() is not { } lib) return (Off(LibSsl.Why!), LibSsl.Settled);
        SslCtrl? ctrl = lib.Export<SslCtrl>("SSL_ctrl");
        if (ctrl is null) return (Off($"SSL_ctrl not found in {lib.Path}"), true);
        // SSL_free_buffers is in every OpenSSL since 1.1.0, but freed memory it could still use until CVE-2024-4741
        // was fixed; without it the mode alone still works.
        string? noFree = FreeBuffersIsSafe(lib.Version) ? null : $"OpenSSL {LibSsl.Describe(lib.Version)} predates the fix for CVE-2024-4741 in SSL_free_buffers";
        SslFreeBuffers? free = noFree is null ? lib.Export<SslFreeBuffers>("SSL_free_buffers") : null;
        return (new Bound(ctrl, free, null, noFree ?? (free is null ? $"{lib.Path} has no SSL_free_buffers" : null)), true);
    }

    private static Bound Off(string why) => new(null, null, why, why);

    /// <summary>CVE-2024-4741 is fixed from 3.3.1, 3.2.2, 3.1.6, 3.0.14 and 1.1.1y on; 3.4 and later never had it.</summary>
    internal static bool FreeBuffersIsSafe(long v)
    {
        long major = (v >> 28) & 0xF, minor = (v >> 20) & 0xFF;
        if (major >= 3)
        {
            long patch = (v >> 4) & 0xFF;
            return major > 3 || minor >= 4 || patch >= minor switch { 0 => 14, 1 => 6, 2 => 2, _ => 1 };
        }

        // 1.1.1 and its letter releases: 0x1010119f is 1.1.1y.
        return v >= 0x1010119fL;
    }
}
