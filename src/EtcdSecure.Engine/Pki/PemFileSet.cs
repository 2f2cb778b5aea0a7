using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace EtcdSecure.Engine.Pki;

/// <summary>The files cfssljson -bare NAME writes: NAME.pem, NAME-key.pem, NAME.csr.</summary>
public sealed record BareFileNames(string Certificate, string Key, string Csr)
{
    public static BareFileNames For(string directory, string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name is "." or "..")
        {
            throw new EtcdSecureException("InvalidName", ErrorKind.InvalidArgument,
                $"'{name}' cannot be a file base name: it must be a plain name without path separators (cfssljson -bare NAME).", name);
        }

        return new BareFileNames(Path.Combine(directory, name + ".pem"), Path.Combine(directory, name + "-key.pem"), Path.Combine(directory, name + ".csr"));
    }

    public IReadOnlyList<string> All => new[] { Certificate, Key, Csr };

    /// <summary>The file beside NAME.pem that cfssljson -bare would have written (NAME-key.pem, NAME.csr), if it exists.</summary>
    public static string? Beside(string certificatePath, string suffix)
    {
        if (!certificatePath.EndsWith(".pem", StringComparison.OrdinalIgnoreCase)) return null;
        string candidate = certificatePath[..^4] + suffix;
        return File.Exists(candidate) ? candidate : null;
    }
}

/// <summary>
/// Writes a set of files all or nothing: each goes to a temporary file beside its target and is renamed into
/// place only once every one is written, so a failure never leaves half a certificate or a key without its
/// certificate. Private keys are created with mode 0600 from the first byte on, never chmod-ed afterwards.
/// </summary>
public static class PemFileSet
{
    public sealed record Entry(string Path, string Content, bool Secret);

    /// <summary>Fails, before any expensive work, if the folder cannot be made or a file would be overwritten without -Force.</summary>
    public static void EnsureWritable(IEnumerable<string> paths, bool force)
    {
        string[] all = paths.ToArray();
        foreach (string dir in all.Select(p => Path.GetDirectoryName(Path.GetFullPath(p))!).Distinct())
        {
            // The folder is created on write; what must not be in the way is a file anywhere up its path.
            for (string? d = dir; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
            {
                if (File.Exists(d))
                {
                    throw new EtcdSecureException("OutputDirectoryUnavailable", ErrorKind.InvalidArgument, $"'{d}' is a file, so the folder '{dir}' cannot be made for the certificates.", dir);
                }
            }
        }

        string[] existing = all.Where(File.Exists).ToArray();
        if (existing.Length > 0 && !force)
        {
            throw new EtcdSecureException("FileExists", ErrorKind.ResourceExists,
                $"{string.Join(", ", existing)} already exist{(existing.Length == 1 ? "s" : "")}; nothing was written. Use -Force to replace {(existing.Length == 1 ? "it" : "them")} (the old key is then gone).",
                existing[0]);
        }
    }

    /// <summary>An issued certificate as cfssljson -bare writes it: the key (owner-only), the certificate and the CSR, all or nothing.</summary>
    public static void Write(BareFileNames files, IssuedCertificate issued, bool force) => Write(new[]
    {
        new Entry(files.Key, issued.PrivateKeyPem, Secret: true),
        new Entry(files.Certificate, issued.CertificatePem, Secret: false),
        new Entry(files.Csr, issued.CsrPem, Secret: false),
    }, force);

    public static void Write(IReadOnlyList<Entry> entries, bool force)
    {
        EnsureWritable(entries.Select(e => e.Path), force);
        var temps = new List<(string Temp, string Final)>();
        try
        {
            foreach (Entry e in entries)
            {
                string dir = Path.GetDirectoryName(Path.GetFullPath(e.Path))!;
                Directory.CreateDirectory(dir);
                string temp = Path.Combine(dir, $".{Path.GetFileName(e.Path)}.{Guid.NewGuid():N}.tmp");
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = e.Secret
                        ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                        : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
                }

                temps.Add((temp, e.Path));
                using (var fs = new FileStream(temp, options))
                using (var w = new StreamWriter(fs, new System.Text.UTF8Encoding(false)))
                {
                    w.Write(e.Content);
                    w.Flush();
                    fs.Flush(flushToDisk: true);
                }
            }

            foreach ((string temp, string final) in temps)
            {
                File.Move(temp, final, overwrite: force);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            foreach ((string temp, _) in temps)
            {
                try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }

            throw new EtcdSecureException(ex is UnauthorizedAccessException ? "OutputDirectoryNotWritable" : "WriteFailed",
                ex is UnauthorizedAccessException ? ErrorKind.PermissionDenied : ErrorKind.ResourceUnavailable,
                $"Could not write {string.Join(", ", entries.Select(e => e.Path))}: {ex.Message}. Nothing was written.", entries[0].Path, ex);
        }
    }
}
