using System;
using System.IO;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.OpenSsl;
using Org.BouncyCastle.Security;

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

/// <summary>A private key with its public half, in BouncyCastle form for signing and in PEM form for files.</summary>
public sealed class PrivateKey
{
    private PrivateKey(AsymmetricKeyParameter priv, AsymmetricKeyParameter pub, string pem)
    {
        Private = priv;
        Public = pub;
        Pem = pem;
    }

    internal AsymmetricKeyParameter Private { get; }
    internal AsymmetricKeyParameter Public { get; }
    public string Pem { get; }

    public KeyAlgorithm Algorithm => Public is RsaKeyParameters ? KeyAlgorithm.Rsa : KeyAlgorithm.Ecdsa;

    public int Size => Public switch
    {
        RsaKeyParameters r => r.Modulus.BitLength,
        ECPublicKeyParameters e => e.Parameters.Curve.FieldSize,
        _ => 0,
    };

    /// <summary>
    /// Generates a key with the platform's crypto (OpenSSL here, fast) and writes it as cfssl does: PKCS#1
    /// "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY" with the named curve, which Go requires.
    /// </summary>
    public static PrivateKey Generate(KeySpec spec)
    {
        if (spec.Algorithm == KeyAlgorithm.Rsa)
        {
            using RSA rsa = RSA.Create(spec.Size);
            return FromPlatform(rsa.ExportPkcs8PrivateKey(), rsa.ExportRSAPrivateKeyPem());
        }

        ECCurve curve = spec.Size switch { 384 => ECCurve.NamedCurves.nistP384, 521 => ECCurve.NamedCurves.nistP521, _ => ECCurve.NamedCurves.nistP256 };
        using ECDsa ec = ECDsa.Create(curve);
        return FromPlatform(ec.ExportPkcs8PrivateKey(), ec.ExportECPrivateKeyPem());
    }

    private static PrivateKey FromPlatform(byte[] pkcs8, string pem)
    {
        AsymmetricKeyParameter priv = PrivateKeyFactory.CreateKey(pkcs8);
        CryptographicOperations.ZeroMemory(pkcs8);
        return new PrivateKey(priv, PublicOf(priv), pem + "\n");
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

        object? obj;
        try
        {
            using var reader = new StringReader(text[text.IndexOf("-----BEGIN", StringComparison.Ordinal)..]);
            var pem = new PemReader(reader);
            obj = pem.ReadObject();
            // "EC PARAMETERS" may precede "EC PRIVATE KEY" (openssl ecparam -genkey): skip to the key.
            while (obj is not null and not AsymmetricCipherKeyPair and not AsymmetricKeyParameter) obj = pem.ReadObject();
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or InvalidOperationException or InvalidCastException or Org.BouncyCastle.Security.SecurityUtilityException or Org.BouncyCastle.Asn1.Asn1Exception)
        {
            throw new EtcdSecureException("MalformedPrivateKey", ErrorKind.InvalidData, $"The private key in '{source}' cannot be read: {ex.Message}", source, ex);
        }

        AsymmetricKeyParameter priv = obj switch
        {
            AsymmetricCipherKeyPair pair => pair.Private,
            AsymmetricKeyParameter { IsPrivate: true } k => k,
            _ => throw new EtcdSecureException("MalformedPrivateKey", ErrorKind.InvalidData, $"'{source}' holds no private key this module can read.", source),
        };
        if (priv is not RsaPrivateCrtKeyParameters and not ECPrivateKeyParameters)
        {
            throw new EtcdSecureException("UnsupportedKeyAlgorithm", ErrorKind.InvalidData, $"The key in '{source}' is neither RSA nor ECDSA, the two kinds etcd uses.", source);
        }

        return new PrivateKey(priv, PublicOf(priv), text);
    }

    /// <summary>True when <paramref name="publicKey"/> is this key's public half.</summary>
    internal bool Matches(AsymmetricKeyParameter publicKey) => (Public, publicKey) switch
    {
        (RsaKeyParameters a, RsaKeyParameters b) => a.Modulus.Equals(b.Modulus) && a.Exponent.Equals(b.Exponent),
        (ECPublicKeyParameters a, ECPublicKeyParameters b) => a.Q.Normalize().Equals(b.Q.Normalize()),
        _ => false,
    };

    internal string SignatureAlgorithm => Public switch
    {
        RsaKeyParameters => "SHA256WITHRSA",
        ECPublicKeyParameters { Parameters.Curve.FieldSize: 384 } => "SHA384WITHECDSA",
        ECPublicKeyParameters { Parameters.Curve.FieldSize: 521 } => "SHA512WITHECDSA",
        _ => "SHA256WITHECDSA",
    };

    private static AsymmetricKeyParameter PublicOf(AsymmetricKeyParameter priv) => priv switch
    {
        RsaPrivateCrtKeyParameters r => new RsaKeyParameters(false, r.Modulus, r.PublicExponent),
        ECPrivateKeyParameters e => e.PublicKeyParamSet is { } oid
            ? new ECPublicKeyParameters(e.AlgorithmName, e.Parameters.G.Multiply(e.D).Normalize(), oid)
            : new ECPublicKeyParameters(e.AlgorithmName, e.Parameters.G.Multiply(e.D).Normalize(), e.Parameters),
        _ => throw new NotSupportedException(priv.GetType().Name),
    };
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
