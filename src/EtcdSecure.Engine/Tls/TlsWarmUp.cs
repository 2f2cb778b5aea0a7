using System;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading;

namespace EtcdSecure.Engine.Tls;

/// <summary>
/// Work a process pays once before its first TLS handshake can finish, done on another core while the module is
/// still being imported, so that a first Test-EtcdClusterHealth or Start-EtcdProxy does not wait for it.
/// </summary>
/// <remarks>
/// On Linux the first certificate chain a process builds reads every file of the system certificate directory
/// (about 140 here), even for a chain with custom root trust that never uses them, and compiles .NET's chain code.
/// Here that is a chain built for a certificate made up for it, self-signed and thrown away: nothing is trusted, sent
/// or kept. A handshake that gets there first does the work itself; one that comes while this runs waits for it
/// rather than doing it again. Only on Linux, where it was measured.
/// </remarks>
public static class TlsWarmUp
{
    private static int _started;

    /// <summary>
    /// Does the warm-up, once per process, on the caller's thread. What goes wrong here is the caller's to swallow
    /// (the import runs this on a pool thread and catches everything there, a failed engine load included): it is only
    /// a head start, and the first real handshake does the same work and reports its failures.
    /// </summary>
    public static void RunOnce()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("ETCDSECURE_TLS_WARM_UP") == "0" || Interlocked.Exchange(ref _started, 1) != 0) return;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 self = new CertificateRequest("CN=etcdsecure-warm-up", key, HashAlgorithmName.SHA256).CreateSelfSigned(now.AddMinutes(-5), now.AddMinutes(5));
        using var chain = new X509Chain { ChainPolicy = new TrustedCAs(new[] { self }).ChainPolicy(TrustedCAs.ServerAuth) };
        chain.Build(self);
    }
}
