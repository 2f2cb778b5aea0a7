using System;
using System.Net.Security;
using System.Reflection;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// The buffer SslStream read a handshake into. SslStream hands it back to the pool on its next read that finds it
/// empty; a connection relayed directly never reads through SslStream again, so without this each one would keep it
/// (8 KiB) for as long as it lives: measured, 52 against 44 KiB per idle connection.
/// </summary>
/// <remarks>
/// SslStream keeps it private (a struct field, SslBuffer, with ActiveLength and ReturnBuffer), so this reaches it by
/// reflection, checked once. Where the runtime is laid out differently, nothing is returned and the connection keeps
/// the buffer: a cost in memory, not in behaviour, and <see cref="KeptBecause"/> says so. ETCDSECURE_TLS_KEEP_BUFFERS=1,
/// which keeps OpenSSL's buffers, keeps this one too (the emptiness check still runs): the path such a runtime takes.
/// </remarks>
internal static class SslStreamBuffer
{
    private const BindingFlags Members = BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance;
    private static readonly (FieldInfo Field, MethodInfo Active, MethodInfo Return)? Binding = Bind();
    private static string? Keep => OpenSslBuffers.KeepSwitch;

    /// <summary>Why each connection relayed directly keeps the 8 KiB buffer SslStream read its handshake into; null when it goes back.</summary>
    public static string? KeptBecause => Keep ?? (Binding is null ? "this runtime's SslStream does not keep it in the private field this code knows" : null);

    private static (FieldInfo, MethodInfo, MethodInfo)? Bind()
    {
        FieldInfo? field = typeof(SslStream).GetField("_buffer", BindingFlags.NonPublic | BindingFlags.Instance);
        if (field is null || !field.FieldType.IsValueType) return null;
        MethodInfo? active = field.FieldType.GetProperty("ActiveLength", Members)?.GetMethod;
        MethodInfo? giveBack = field.FieldType.GetMethod("ReturnBuffer", Members, Type.EmptyTypes);
        if (active is null || active.ReturnType != typeof(int) || giveBack is null) return null;
        return (field, active, giveBack);
    }

    /// <summary>
    /// Hands the buffer back to the pool when it holds nothing (SslStream rents a new one when it reads again), unless
    /// <see cref="KeptBecause"/>; only while nothing else uses <paramref name="stream"/>.
    /// </summary>
    /// <returns>The bytes SslStream holds that it read and did not hand out (then the buffer stays); null where this cannot be told.</returns>
    public static int? ReturnIfEmpty(SslStream stream)
    {
        if (Binding is not { } b) return null;
        // A struct: its method runs on a boxed copy, which then goes back into the field.
        object boxed = b.Field.GetValue(stream)!;
        int held = (int)b.Active.Invoke(boxed, null)!;
        if (held != 0 || Keep is not null) return held;
        b.Return.Invoke(boxed, null);
        b.Field.SetValue(stream, boxed);
        return 0;
    }
}
