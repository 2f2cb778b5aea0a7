using System;
using System.IO;
using System.Linq;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Threading;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// A value loaded from files that is loaded again when any of them changes. Checked at most once a second, on use,
/// so a busy proxy pays one stat per file per second and an idle one nothing. A replacement that cannot be loaded
/// (half written, key and certificate out of step) keeps the last good value and is reported once.
/// </summary>
public sealed class Reloading<T> where T : class
{
    private readonly string[] _paths;
    private readonly Func<T> _load;
    private readonly Action<string> _log;
    private T _value;
    private DateTime[] _stamps;
    private long _nextCheck;
    private int _checking;

    public Reloading(string what, Func<T> load, Action<string> log, params string[] paths)
    {
        What = what;
        _paths = paths;
        _load = load;
        _log = log;
        _value = load();
        _stamps = Stamps();
        _nextCheck = Environment.TickCount64 + 1000;
    }

    public string What { get; }

    public int Reloads { get; private set; }

    public T Value
    {
        get
        {
            if (Environment.TickCount64 >= Interlocked.Read(ref _nextCheck) && Interlocked.Exchange(ref _checking, 1) == 0)
            {
                try
                {
                    Check();
                }
                finally
                {
                    Interlocked.Exchange(ref _nextCheck, Environment.TickCount64 + 1000);
                    Volatile.Write(ref _checking, 0);
                }
            }

            return Volatile.Read(ref _value);
        }
    }

    private void Check()
    {
        DateTime[] now = Stamps();
        if (now.SequenceEqual(_stamps)) return;
        try
        {
            T fresh = _load();
            Volatile.Write(ref _value, fresh);
            _stamps = now;
            Reloads++;
            _log($"{What}: reloaded from {string.Join(", ", _paths)}; new connections use it, open ones keep theirs.");
        }
        catch (Exception ex) when (ex is EtcdSecureException or IOException or System.Security.Cryptography.CryptographicException)
        {
            // Try again on the next change only: a file caught mid-write will change again when it is complete.
            _stamps = now;
            _log($"{What}: the changed files cannot be loaded ({ex.Message}); still using the previous ones.");
        }
    }

    private DateTime[] Stamps() => _paths.Select(p => File.Exists(p) ? File.GetLastWriteTimeUtc(p) : DateTime.MinValue).ToArray();
}

/// <summary>What the proxy presents to clients, and how it checks theirs.</summary>
public sealed class ServerCredentials
{
    private ServerCredentials(X509Certificate2 certificate, SslStreamCertificateContext context)
    {
        Certificate = certificate;
        Context = context;
    }

    public X509Certificate2 Certificate { get; }

    public SslStreamCertificateContext Context { get; }

    public static ServerCredentials Load(string certPath, string keyPath)
    {
        X509Certificate2 cert = TlsClientIdentity.LoadWithKey(certPath, keyPath);
        // offline: no AIA fetches while building the chain (traffic stays on loopback and startup stays fast).
        return new ServerCredentials(cert, SslStreamCertificateContext.Create(cert, additionalCertificates: null, offline: true));
    }
}
