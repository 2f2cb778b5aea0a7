using System;
using System.IO;
using System.Linq;
using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Threading;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// The libssl that SslStream runs on, and SslStream's own SSL* for a connection, for the few OpenSSL settings .NET
/// does not expose (idle buffer release, and the cipher suites of a shared server context).
/// </summary>
/// <remarks>
/// SslStream keeps its OpenSSL handle private, so this reaches it by reflection, and calls only into the very libssl
/// the runtime loaded: the only one mapped into the process, and the version the runtime's own OpenSSL shim reports,
/// or nothing. Every step is checked once; on a runtime laid out differently <see cref="Bind"/> answers null and
/// <see cref="Why"/> says why, and each caller keeps .NET's own behaviour.
/// </remarks>
internal static class LibSsl
{
    internal sealed record Library(IntPtr Handle, string Path, long Version, FieldInfo ContextField)
    {
        public T? Export<T>(string name) where T : Delegate =>
            NativeLibrary.TryGetExport(Handle, name, out IntPtr f) ? Marshal.GetDelegateForFunctionPointer<T>(f) : null;
    }

    private sealed record Outcome(Library? Lib, string? Why);

    private static Outcome? _settled;
    private static string? _lastWhy;

    /// <summary>Why libssl cannot be used, after a <see cref="Bind"/> that answered null.</summary>
    public static string? Why => Volatile.Read(ref _settled)?.Why ?? _lastWhy;

    /// <summary>Whether the last answer of <see cref="Bind"/> is final (libssl not loaded yet is asked again).</summary>
    public static bool Settled => Volatile.Read(ref _settled) is not null;

    public static Library? Bind()
    {
        if (Volatile.Read(ref _settled) is { } s) return s.Lib;
        (Library? lib, string? why, bool final) = Find();
        if (final) Volatile.Write(ref _settled, new Outcome(lib, why));
        else _lastWhy = why;
        return lib;
    }

    /// <summary>The connection's SSL*, while it is open; null once disposed or where it cannot be reached.</summary>
    public static SafeHandle? HandleOf(SslStream stream) =>
        Bind() is { } lib && SslHandle(lib.ContextField.GetValue(stream)) is { IsInvalid: false, IsClosed: false } h ? h : null;

    /// <summary>Calls into OpenSSL with the SSL*, or answers false once the connection is gone.</summary>
    public static bool Call<TState>(SafeHandle handle, TState state, Func<IntPtr, TState, bool> call)
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
    /// SslStream._securityContext holds the OpenSSL SSL* itself (a SafeSslHandle) on the .NET this module requires;
    /// anything else there is a layout this code does not know, and the caller keeps .NET's own behaviour.
    /// </summary>
    private static SafeHandle? SslHandle(object? context) =>
        context is SafeHandle h && h.GetType().Name == "SafeSslHandle" ? h : null;

    private static (Library? Lib, string? Why, bool Final) Find()
    {
        if (!OperatingSystem.IsLinux()) return (null, "only on Linux, where SslStream runs on OpenSSL", true);
        FieldInfo? field = typeof(SslStream).GetField("_securityContext", BindingFlags.NonPublic | BindingFlags.Instance);
        if (field is null) return (null, "this .NET runtime's SslStream has no _securityContext field", true);

        string[] mapped;
        try
        {
            // The runtime opens libssl when the first SslStream is created; by the time a connection is there it is mapped.
            mapped = File.ReadLines("/proc/self/maps")
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault())
                .Where(p => p is not null && p.StartsWith('/') && System.IO.Path.GetFileName(p).StartsWith("libssl.so", StringComparison.Ordinal))
                .Distinct(StringComparer.Ordinal)
                .ToArray()!;
        }
        catch (IOException ex)
        {
            return (null, $"cannot read /proc/self/maps: {ex.Message}", true);
        }

        if (mapped.Length == 0) return (null, "libssl is not loaded in this process yet", false);
        // With two builds loaded (another library brought its own), which one owns SslStream's SSL* cannot be told.
        if (mapped.Length > 1) return (null, $"several libssl builds are loaded ({string.Join(", ", mapped)})", true);
        string libssl = mapped[0];
        if (!NativeLibrary.TryLoad(libssl, out IntPtr lib)) return (null, $"cannot load {libssl}", true);

        // The runtime's shim reports the OpenSSL it bound to; the mapped libssl (through its libcrypto) must be that one.
        long? runtimeVersion = RuntimeOpenSslVersion();
        long? mappedVersion = NativeLibrary.TryGetExport(lib, "OpenSSL_version_num", out IntPtr versionExport)
            ? Marshal.GetDelegateForFunctionPointer<VersionNumber>(versionExport)() : null;
        if (runtimeVersion is null || mappedVersion is null || runtimeVersion != mappedVersion)
        {
            return (null, $"cannot verify that {libssl} is the OpenSSL the runtime uses (runtime {Describe(runtimeVersion)}, library {Describe(mappedVersion)})", true);
        }

        return (new Library(lib, libssl, runtimeVersion.Value, field), null, true);
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long VersionNumber();

    /// <summary>OPENSSL_VERSION_NUMBER of the OpenSSL the runtime's own shim bound to; null where it cannot be asked.</summary>
    private static long? RuntimeOpenSslVersion()
    {
        string shim = System.IO.Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "libSystem.Security.Cryptography.Native.OpenSsl.so");
        return NativeLibrary.TryLoad(shim, out IntPtr lib) && NativeLibrary.TryGetExport(lib, "CryptoNative_OpenSslVersionNumber", out IntPtr f)
            ? Marshal.GetDelegateForFunctionPointer<VersionNumber>(f)()
            : null;
    }

    public static string Describe(long? v) => v is not { } n ? "unknown"
        : (n >> 28) >= 3 ? $"{(n >> 28) & 0xF}.{(n >> 20) & 0xFF}.{(n >> 4) & 0xFF}" : $"0x{n:x}";
}
