using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Crypto;

namespace EtcdSecure.Engine.Pki;

public enum KeyAlgorithm { Ecdsa, Rsa }

/// <summary>A key algorithm and size that etcd (Go's crypto/tls) accepts.</summary>
public sealed record KeySpec(KeyAlgorithm Algorithm, int Size)
{
    public static KeySpec Create(KeyAlgorithm algorithm, int? size)
    {
        int s = size ?? (algorithm == KeyAlgorithm.Rsa ? 2048 : 256);
        bool ok = algorithm == KeyAlgorithm.Rsa ? s is 2048 or 3072 or 4096 : s is 256 or 384 or 521;
        return ok
            ? new KeySpec(algorithm, s)
            : throw new EtcdSecureException("InvalidKeySize", ErrorKind.InvalidArgument,
                algorithm == KeyAlgorithm.Rsa
                    ? $"An RSA key of {s} bits is not supported: use 2048, 3072 or 4096."
                    : $"An ECDSA key of {s} bits is not supported: use 256 (P-256), 384 (P-384) or 521 (P-521).",
                s);
    }

    public override string ToString() => Algorithm == KeyAlgorithm.Rsa ? $"RSA {Size}" : $"ECDSA P-{Size}";
}

/// <summary>
/// A private key, held by the platform's crypto (OpenSSL on Linux) for signing, with its public half as DER
/// SubjectPublicKeyInfo for certificates and CSRs and as PEM for files. BouncyCastle builds the certificates but never
/// holds an RSA key: it checks every RSA modulus it is given for primality, 40 to 80 ms a key here.
/// </summary>
public sealed class PrivateKey
{
    private readonly AsymmetricAlgorithm _key;

    private PrivateKey(AsymmetricAlgorithm key, string pem)
    {
        _key = key;
        Pem = pem;
        SubjectPublicKeyInfo = key switch
        {
            RSA r => r.ExportSubjectPublicKeyInfo(),
            ECDsa e => e.ExportSubjectPublicKeyInfo(),
            _ => throw new NotSupportedException(key.GetType().Name),
        };
    }

    public string Pem { get; }

    /// <summary>The public key as DER SubjectPublicKeyInfo.</summary>
    internal byte[] SubjectPublicKeyInfo { get; }

    public KeyAlgorithm Algorithm => _key is RSA ? KeyAlgorithm.Rsa : KeyAlgorithm.Ecdsa;

    public int Size => _key.KeySize;

    /// <summary>Signs certificates, CSRs and CRLs that BouncyCastle builds, with this key in the platform's crypto.</summary>
    internal ISignatureFactory Signer => new PlatformSignatureFactory(_key);

    /// <summary>
    /// Generates a key with the platform's crypto (OpenSSL here) and writes it as cfssl does: PKCS#1
    /// "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY" with the named curve, which Go requires. RSA keys come from
    /// <see cref="RsaKeySource"/>, which makes them on every core at once.
    /// </summary>
    public static PrivateKey Generate(KeySpec spec)
    {
        if (spec.Algorithm == KeyAlgorithm.Rsa)
        {
            RSA rsa = RsaKeySource.Take(spec.Size);
            return new PrivateKey(rsa, rsa.ExportRSAPrivateKeyPem() + "\n");
        }

        ECCurve curve = spec.Size switch { 384 => ECCurve.NamedCurves.nistP384, 521 => ECCurve.NamedCurves.nistP521, _ => ECCurve.NamedCurves.nistP256 };
        ECDsa ec = ECDsa.Create(curve);
        return new PrivateKey(ec, ec.ExportECPrivateKeyPem() + "\n");
    }

    /// <summary>Reads an unencrypted PEM private key in any of the forms etcd accepts (PKCS#1, SEC1, PKCS#8).</summary>
    public static PrivateKey Load(string path)
    {
        string text = PemText.Read(path, "private key");
        return Parse(text, path);
    }

    public static PrivateKey Parse(string text, string source)
    {
        if (text.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal) || text.Contains("Proc-Type: 4,ENCRYPTED", StringComparison.Ordinal))
        {
            throw new EtcdSecureException("EncryptedPrivateKey", ErrorKind.InvalidData,
                $"The private key in '{source}' is encrypted. etcd reads only unencrypted keys: decrypt it (openssl pkey -in key.pem -out key.pem) and protect the file with mode 0600 instead.", source);
        }

        if (!text.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            string what = text.Contains("BEGIN CERTIFICATE REQUEST", StringComparison.Ordinal) ? "a certificate request"
                : text.Contains("BEGIN CERTIFICATE", StringComparison.Ordinal) ? "a certificate" : "no PEM private key";
            throw new EtcdSecureException("NotAPrivateKey", ErrorKind.InvalidData, $"'{source}' holds {what}, not a private key.", source);
        }

        // The PEM label says the form; a PKCS#8 "PRIVATE KEY" names its algorithm inside, so both are tried.
        bool rsaLabel = text.Contains("BEGIN RSA PRIVATE KEY", StringComparison.Ordinal);
        bool ecLabel = text.Contains("BEGIN EC PRIVATE KEY", StringComparison.Ordinal);
        Exception? last = null;
        foreach (bool tryRsa in new[] { true, false })
        {
            if ((tryRsa && ecLabel) || (!tryRsa && rsaLabel)) continue;
            AsymmetricAlgorithm key = tryRsa ? RSA.Create() : ECDsa.Create();
            try
            {
                if (key is RSA r) r.ImportFromPem(text);
                else ((ECDsa)key).ImportFromPem(text);
                return new PrivateKey(key, text);
            }
            catch (Exception ex) when (ex is ArgumentException or CryptographicException)
            {
                key.Dispose();
                last = ex;
            }
        }

        if (!rsaLabel && !ecLabel && text.Contains("BEGIN PRIVATE KEY", StringComparison.Ordinal) && IsOtherAlgorithm(text))
        {
            throw new EtcdSecureException("UnsupportedKeyAlgorithm", ErrorKind.InvalidData, $"The key in '{source}' is neither RSA nor ECDSA, the two kinds etcd uses.", source);
        }

        throw new EtcdSecureException("MalformedPrivateKey", ErrorKind.InvalidData, $"The private key in '{source}' cannot be read: {last?.Message}", source, last);
    }

    /// <summary>Whether a PKCS#8 key that neither RSA nor ECDsa took is well formed, just of another algorithm (Ed25519, say).</summary>
    private static bool IsOtherAlgorithm(string text)
    {
        try
        {
            var fields = PemEncoding.Find(text.AsSpan(text.IndexOf("-----BEGIN PRIVATE KEY", StringComparison.Ordinal)));
            byte[] der = Convert.FromBase64String(text[(text.IndexOf("-----BEGIN PRIVATE KEY", StringComparison.Ordinal) + fields.Base64Data.Start.Value)..(text.IndexOf("-----BEGIN PRIVATE KEY", StringComparison.Ordinal) + fields.Base64Data.End.Value)]);
            var info = Org.BouncyCastle.Asn1.Pkcs.PrivateKeyInfo.GetInstance(der);
            string oid = info.PrivateKeyAlgorithm.Algorithm.Id;
            return oid is not "1.2.840.113549.1.1.1" and not "1.2.840.10045.2.1";
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException or IOException)
        {
            return false;
        }
    }

    /// <summary>True when the certificate's public key is this key's public half.</summary>
    internal bool Matches(X509Certificate2 certificate)
    {
        switch (_key)
        {
            case RSA rsa:
            {
                using RSA? other = certificate.GetRSAPublicKey();
                if (other is null) return false;
                RSAParameters a = rsa.ExportParameters(false), b = other.ExportParameters(false);
                return a.Modulus.AsSpan().SequenceEqual(b.Modulus) && a.Exponent.AsSpan().SequenceEqual(b.Exponent);
            }

            case ECDsa ec:
            {
                using ECDsa? other = certificate.GetECDsaPublicKey();
                if (other is null) return false;
                ECParameters a = ec.ExportParameters(false), b = other.ExportParameters(false);
                return a.Q.X.AsSpan().SequenceEqual(b.Q.X) && a.Q.Y.AsSpan().SequenceEqual(b.Q.Y) && a.Curve.Oid.Value == b.Curve.Oid.Value;
            }

            default:
                return false;
        }
    }
}

/// <summary>
/// BouncyCastle's signing interface over a platform key: BouncyCastle hands over the bytes to be signed (a TBS
/// certificate, a CSR's info, a CRL's TBS list) and gets back the signature in X.509's form.
/// </summary>
internal sealed class PlatformSignatureFactory : ISignatureFactory
{
    private readonly AsymmetricAlgorithm _key;
    private readonly HashAlgorithmName _hash;

    public PlatformSignatureFactory(AsymmetricAlgorithm key)
    {
        _key = key;
        // Go's choice for each key (crypto/x509 signingParamsForPublicKey): SHA-256 for RSA and P-256, then the curve's size.
        (_hash, string oid) = key switch
        {
            RSA => (HashAlgorithmName.SHA256, "1.2.840.113549.1.1.11"),
            ECDsa { KeySize: 384 } => (HashAlgorithmName.SHA384, "1.2.840.10045.4.3.3"),
            ECDsa { KeySize: 521 } => (HashAlgorithmName.SHA512, "1.2.840.10045.4.3.4"),
            _ => (HashAlgorithmName.SHA256, "1.2.840.10045.4.3.2"),
        };
        // RSA's AlgorithmIdentifier carries an explicit NULL; ECDSA's has no parameters at all (RFC 5758).
        AlgorithmDetails = key is RSA
            ? new Org.BouncyCastle.Asn1.X509.AlgorithmIdentifier(new Org.BouncyCastle.Asn1.DerObjectIdentifier(oid), Org.BouncyCastle.Asn1.DerNull.Instance)
            : new Org.BouncyCastle.Asn1.X509.AlgorithmIdentifier(new Org.BouncyCastle.Asn1.DerObjectIdentifier(oid));
    }

    public object AlgorithmDetails { get; }

    public IStreamCalculator<IBlockResult> CreateCalculator() => new Calculator(this);

    private byte[] Sign(byte[] data) => _key switch
    {
        RSA r => r.SignData(data, _hash, RSASignaturePadding.Pkcs1),
        ECDsa e => e.SignData(data, _hash, DSASignatureFormat.Rfc3279DerSequence),
        _ => throw new NotSupportedException(_key.GetType().Name),
    };

    private sealed class Calculator : IStreamCalculator<IBlockResult>
    {
        private readonly PlatformSignatureFactory _factory;
        private readonly MemoryStream _data = new();

        public Calculator(PlatformSignatureFactory factory) => _factory = factory;

        public Stream Stream => _data;

        public IBlockResult GetResult() => new SimpleBlockResult(_factory.Sign(_data.ToArray()));
    }
}

internal static class PemText
{
    public static string Read(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (FileNotFoundException ex)
        {
            throw new EtcdSecureException("FileNotFound", ErrorKind.ObjectNotFound, $"There is no {what} file at '{path}'.", path, ex);
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new EtcdSecureException("FileNotFound", ErrorKind.ObjectNotFound, $"There is no {what} file at '{path}'.", path, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new EtcdSecureException("FileNotReadable", ErrorKind.PermissionDenied, $"The {what} file '{path}' cannot be read: {ex.Message}", path, ex);
        }
    }
}
