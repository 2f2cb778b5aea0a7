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
/// libssl the runtime loaded: the only one mapped into the process, and the version the runtime's own OpenSSL shim
/// reports, or nothing. Every step is checked once; if this runtime is laid out differently, <see cref="Unavailable"/>
/// says why and connections simply keep their buffers. The
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

    private sealed record Bound(SslCtrl? Ctrl, SslFreeBuffers? Free, FieldInfo? Context, string? Why, string? IdleFreeOff);

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

    /// <summary>Why idle connections cannot give back the buffer the mode misses (SSL_free_buffers), or null when they can.</summary>
    public static string? IdleFreeUnavailable => Binding.IdleFreeOff;

    /// <summary>Switches the mode on for one connection whose handshake is done and which nothing else is using.</summary>
    public static bool TryRelease(SslStream stream)
    {
        (SslCtrl? ctrl, _, FieldInfo? field, _, _) = Binding;
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
        (_, SslFreeBuffers? free, FieldInfo? field, _, _) = Binding;
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
        if (!OperatingSystem.IsLinux()) return (Off("only on Linux, where SslStream runs on OpenSSL"), true);
        if (Environment.GetEnvironmentVariable("ETCDSECURE_TLS_KEEP_BUFFERS") == "1") return (Off("ETCDSECURE_TLS_KEEP_BUFFERS=1"), true);
        FieldInfo? field = typeof(SslStream).GetField("_securityContext", BindingFlags.NonPublic | BindingFlags.Instance);
        if (field is null) return (Off("this .NET runtime's SslStream has no _securityContext field"), true);

        string[] mapped;
        try
        {
            // The runtime opens libssl when the first SslStream is created; by the time a proxy has accepted a
            // connection it is mapped.
            mapped = File.ReadLines("/proc/self/maps")
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault())
                .Where(p => p is not null && p.StartsWith('/') && Path.GetFileName(p).StartsWith("libssl.so", StringComparison.Ordinal))
                .Distinct(StringComparer.Ordinal)
                .ToArray()!;
        }
        catch (IOException ex)
        {
            return (Off($"cannot read /proc/self/maps: {ex.Message}"), true);
        }

        if (mapped.Length == 0) return (Off("libssl is not loaded in this process yet"), false);
        // With two builds loaded (another library brought its own), which one owns SslStream's SSL* cannot be told.
        if (mapped.Length > 1) return (Off($"several libssl builds are loaded ({string.Join(", ", mapped)})"), true);
        string libssl = mapped[0];
        if (!NativeLibrary.TryLoad(libssl, out IntPtr lib) || !NativeLibrary.TryGetExport(lib, "SSL_ctrl", out IntPtr export))
            return (Off($"SSL_ctrl not found in {libssl}"), true);

        // The runtime's shim reports the OpenSSL it bound to; the mapped libssl (through its libcrypto) must be that one.
        long? runtimeVersion = RuntimeOpenSslVersion();
        long? mappedVersion = NativeLibrary.TryGetExport(lib, "OpenSSL_version_num", out IntPtr versionExport)
            ? Marshal.GetDelegateForFunctionPointer<VersionNumber>(versionExport)() : null;
        if (runtimeVersion is null || mappedVersion is null || runtimeVersion != mappedVersion)
        {
            return (Off($"cannot verify that {libssl} is the OpenSSL the runtime uses (runtime {Describe(runtimeVersion)}, library {Describe(mappedVersion)})"), true);
        }

        var ctrl = Marshal.GetDelegateForFunctionPointer<SslCtrl>(export);
        // SSL_free_buffers is in every OpenSSL since 1.1.0, but freed memory it could still use until CVE-2024-4741
        // was fixed; without it the mode alone still works.
        string? noFree = FreeBuffersIsSafe(runtimeVersion.Value) ? null : $"OpenSSL {Describe(runtimeVersion)} predates the fix for CVE-2024-4741 in SSL_free_buffers";
        SslFreeBuffers? free = noFree is null && NativeLibrary.TryGetExport(lib, "SSL_free_buffers", out IntPtr freeExport) ? Marshal.GetDelegateForFunctionPointer<SslFreeBuffers>(freeExport) : null;
        return (new Bound(ctrl, free, field, null, noFree ?? (free is null ? $"{libssl} has no SSL_free_buffers" : null)), true);
    }

    private static Bound Off(string why) => new(null, null, null, why, why);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long VersionNumber();

    /// <summary>OPENSSL_VERSION_NUMBER of the OpenSSL the runtime's own shim bound to; null where it cannot be asked.</summary>
    private static long? RuntimeOpenSslVersion()
    {
        string shim = Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "libSystem.Security.Cryptography.Native.OpenSsl.so");
        return NativeLibrary.TryLoad(shim, out IntPtr lib) && NativeLibrary.TryGetExport(lib, "CryptoNative_OpenSslVersionNumber", out IntPtr f)
            ? Marshal.GetDelegateForFunctionPointer<VersionNumber>(f)()
            : null;
    }

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

    private static string Describe(long? v) => v is not { } n ? "unknown"
        : (n >> 28) >= 3 ? $"{(n >> 28) & 0xF}.{(n >> 20) & 0xFF}.{(n >> 4) & 0xFF}" : $"0x{n:x}";
}
