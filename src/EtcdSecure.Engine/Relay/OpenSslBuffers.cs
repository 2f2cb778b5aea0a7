using System;
using System.IO;
using System.Linq;
using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Threading;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// Lets OpenSSL free a TLS connection's record buffers (about 34 KiB: one record in, one out) while the connection
/// has nothing in flight, as nginx and HAProxy do (SSL_MODE_RELEASE_BUFFERS). A relay holds two TLS sides per
/// connection and most etcd client connections sit idle, so this is the largest single part of its memory per
/// connection (measured by the idle benchmark and a native heap profile).
/// </summary>
/// <remarks>
/// SslStream does not expose its OpenSSL handle, so this reaches it by reflection and calls SSL_ctrl in the very
/// libssl the runtime loaded (found in /proc/self/maps, never a second copy). Every step is checked once; if this
/// runtime is laid out differently, <see cref="Unavailable"/> says why and connections simply keep their buffers. The
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

    private sealed record Bound(SslCtrl? Ctrl, SslFreeBuffers? Free, FieldInfo? Context, string? Why);

    private static Bound? _binding;

    // Settled once libssl is found or cannot work here; "not loaded yet" is asked again next time.
    private static Bound Binding => Volatile.Read(ref _binding) ?? Settle(Bind());

    private static Bound Settle((Bound Result, bool Final) b)
    {
        if (b.Final) Volatile.Write(ref _binding, b.Result);
        return b.Result;
    }

    /// <summary>Why the buffers cannot be released on this runtime, or null when they can.</summary>
    public static string? Unavailable => Binding.Why;

    /// <summary>Switches the mode on for one connection whose handshake is done and which nothing else is using.</summary>
    public static bool TryRelease(SslStream stream)
    {
        (SslCtrl? ctrl, _, FieldInfo? field, _) = Binding;
        return ctrl is not null && SslHandle(field!.GetValue(stream)) is { IsInvalid: false, IsClosed: false } handle
            && Call(handle, ctrl, static (ssl, ctrl) => (ctrl(ssl, SslCtrlMode, SslModeReleaseBuffers, IntPtr.Zero) & SslModeReleaseBuffers) != 0);
    }

    /// <summary>
    /// What frees this connection's record buffers while it waits for data, or null where that cannot be done. For
    /// the one case the mode misses: OpenSSL frees its read buffer only after a record with application data. A
    /// record without any, such as a TLS 1.3 session ticket, leaves the next read waiting with a 16 KiB buffer it
    /// keeps for as long as the connection stays idle (heaptrack: nearly every member connection in the idle
    /// benchmark, a fifth of the relay's memory per connection). SSL_free_buffers gives it back, and refuses while
    /// a record is part-read.
    /// </summary>
    /// <remarks>
    /// Call the returned action only from the one thread that drives this connection's TLS, between calls into it.
    /// <paramref name="freed"/> runs each time OpenSSL took the call (it holds no buffer afterwards).
    /// </remarks>
    public static Action? FreeWhenIdle(SslStream stream, Action? freed = null)
    {
        (_, SslFreeBuffers? free, FieldInfo? field, _) = Binding;
        if (free is null || SslHandle(field!.GetValue(stream)) is not { IsInvalid: false, IsClosed: false } handle) return null;
        return () =>
        {
            if (Call(handle, free, static (ssl, free) => free(ssl) == 1)) freed?.Invoke();
        };
    }

    /// <summary>Calls into OpenSSL with the SSL*, or answers false once the connection is gone.</summary>
    private static bool Call<TState>(SafeHandle handle, TState state, Func<IntPtr, TState, bool> call)
    {
        bool added = false;
        try
        {
            // Holding a reference keeps a dispose on another thread from freeing the SSL* under the call.
            handle.DangerousAddRef(ref added);
            return call(handle.DangerousGetHandle(), state);
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>
    /// .NET 9 and later keep the OpenSSL SSL* handle itself (SafeSslHandle) in SslStream._securityContext; .NET 8
    /// wraps it in a SafeDeleteSslContext whose _sslContext field holds it.
    /// </summary>
    private static SafeHandle? SslHandle(object? context) => context switch
    {
        SafeHandle h when h.GetType().Name == "SafeSslHandle" => h,
        SafeHandle h => h.GetType().GetField("_sslContext", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(h) is SafeHandle inner && inner.GetType().Name == "SafeSslHandle" ? inner : null,
        _ => null,
    };

    private static (Bound Result, bool Final) Bind()
    {
        if (!OperatingSystem.IsLinux()) return (new Bound(null, null, null, "only on Linux, where SslStream runs on OpenSSL"), true);
        if (Environment.GetEnvironmentVariable("ETCDSECURE_TLS_KEEP_BUFFERS") == "1") return (new Bound(null, null, null, "ETCDSECURE_TLS_KEEP_BUFFERS=1"), true);
        FieldInfo? field = typeof(SslStream).GetField("_securityContext", BindingFlags.NonPublic | BindingFlags.Instance);
        if (field is null) return (new Bound(null, null, null, "this .NET runtime's SslStream has no _securityContext field"), true);

        string? libssl;
        try
        {
            // The runtime opens libssl when the first SslStream is created; by the time a proxy has accepted a
            // connection it is mapped. Choosing it from the maps guarantees the SSL* belongs to that library.
            libssl = File.ReadLines("/proc/self/maps")
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault())
                .FirstOrDefault(p => p is not null && p.StartsWith('/') && Path.GetFileName(p).StartsWith("libssl.so", StringComparison.Ordinal));
        }
        catch (IOException ex)
        {
            return (new Bound(null, null, null, $"cannot read /proc/self/maps: {ex.Message}"), true);
        }

        if (libssl is null) return (new Bound(null, null, null, "libssl is not loaded in this process yet"), false);
        if (!NativeLibrary.TryLoad(libssl, out IntPtr lib) || !NativeLibrary.TryGetExport(lib, "SSL_ctrl", out IntPtr export))
            return (new Bound(null, null, null, $"SSL_ctrl not found in {libssl}"), true);
        // SSL_free_buffers is in every OpenSSL since 1.1.0; without it the mode alone still works.
        SslFreeBuffers? free = NativeLibrary.TryGetExport(lib, "SSL_free_buffers", out IntPtr freeExport) ? Marshal.GetDelegateForFunctionPointer<SslFreeBuffers>(freeExport) : null;
        return (new Bound(Marshal.GetDelegateForFunctionPointer<SslCtrl>(export), free, field, null), true);
    }
}
