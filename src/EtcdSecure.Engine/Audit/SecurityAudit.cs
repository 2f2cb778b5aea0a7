using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Health;
using EtcdSecure.Engine.Pki;
using Grpc.Core;

namespace EtcdSecure.Engine.Audit;

public enum Severity { Info, Low, Medium, High, Critical }

/// <summary>One thing a check observed. Id is stable and documented; Evidence is what was seen, Remedy what fixes it.</summary>
public sealed record Finding(string Id, Severity Severity, string Target, string Evidence, string Remedy);

/// <summary>The findings, and every port that was looked at (peer URLs found through MemberList included).</summary>
public sealed record AuditResult(IReadOnlyList<Finding> Findings, IReadOnlyList<string> Targets)
{
    /// <summary>The findings that say a check could not be made: what they name was not audited, so it cannot pass.</summary>
    public IReadOnlyList<Finding> NotChecked => Findings.Where(f => SecurityAudit.IsNotChecked(f.Id)).ToList();

    /// <summary>Nothing High or Critical, and every check made.</summary>
    public bool Passed => Findings.All(f => f.Severity < Severity.High) && NotChecked.Count == 0;
}

/// <summary>What to look at: ports from the outside, and on this machine the data dirs and key files.</summary>
public sealed record AuditRequest
{
    public IReadOnlyList<Uri> ClientUrls { get; init; } = Array.Empty<Uri>();
    public IReadOnlyList<Uri> PeerUrls { get; init; } = Array.Empty<Uri>();

    /// <summary>The cluster's CA and a client certificate, when at hand: needed for the checks that must get in.</summary>
    public TlsClientIdentity? Identity { get; init; }
    public IReadOnlyList<string> DataDirs { get; init; } = Array.Empty<string>();
    public IReadOnlyList<string> CertificateFiles { get; init; } = Array.Empty<string>();
    public TimeSpan ExpiringWithin { get; init; } = TimeSpan.FromDays(30);

    /// <summary>How long the whole audit may take: every check runs at once, within what is left of it.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Audits an etcd cluster's TLS and access posture from the outside, as an attacker on the network would try it,
/// plus what only this machine can see (file modes). Every check runs in parallel under one timeout; a target that
/// does not answer is a finding, never an exception.
/// </summary>
public static class SecurityAudit
{
    private static readonly HashSet<string> NotCheckedIds = new(StringComparer.Ordinal) { "TargetUnreachable", "HandshakeNotCompleted", "AuthNotChecked", "ProtocolsNotChecked", "IdentityNotChecked" };

    private static bool IsTls(Uri u) => u.Scheme == Uri.UriSchemeHttps;

    /// <summary>Whether a finding of this Id says that something could not be checked.</summary>
    public static bool IsNotChecked(string id) => NotCheckedIds.Contains(id);

    public static async Task<AuditResult> RunAsync(AuditRequest request, CancellationToken cancel)
    {
        var deadline = new Deadline(request.Timeout);
        var tasks = new List<Task<IEnumerable<Finding>>>();
        // What every port's probes share is made once: the openssl client's path and the throwaway certificate.
        string? openssl = Members.EtcdBinary.FindOnPath("openssl");
        using X509Certificate2 foreign = ThrowawayClientCertificate();
        // The client ports are checked while MemberList names the peers; the peer ports get what is left of the time.
        Task<IReadOnlyList<Uri>> discovery = request.PeerUrls.Count > 0 ? Task.FromResult(request.PeerUrls) : DiscoverPeersAsync(request, deadline, cancel);
        foreach (Uri u in request.ClientUrls) tasks.Add(CheckPortAsync(u, peer: false, request, deadline, openssl, foreign, cancel));
        // The checks that must get in speak TLS: an http:// URL is audited from the outside only (it is ClientPlaintext).
        if (request.Identity?.ClientCertificate is not null && request.ClientUrls.FirstOrDefault(IsTls) is { } tlsUrl) tasks.Add(CheckAuthAsync(tlsUrl, request, deadline, cancel));
        tasks.Add(Task.Run(() => LocalFindings(request), cancel));
        IReadOnlyList<Uri> peers = await discovery.ConfigureAwait(false);
        foreach (Uri u in peers) tasks.Add(CheckPortAsync(u, peer: true, request, deadline, openssl, foreign, cancel));
        var all = new List<Finding>();
        foreach (var t in tasks) all.AddRange(await t.ConfigureAwait(false));
        return new AuditResult(
            all.OrderByDescending(f => f.Severity).ThenBy(f => f.Target, StringComparer.Ordinal).ThenBy(f => f.Id, StringComparer.Ordinal).ToList(),
            request.ClientUrls.Concat(peers).Select(u => u.GetLeftPart(UriPartial.Authority)).Distinct(StringComparer.OrdinalIgnoreCase).ToList());
    }

    /// <summary>The members' peer URLs from MemberList, when the credentials given get in; none otherwise.</summary>
    private static async Task<IReadOnlyList<Uri>> DiscoverPeersAsync(AuditRequest request, Deadline deadline, CancellationToken cancel)
    {
        if (request.Identity?.ClientCertificate is null || request.ClientUrls.FirstOrDefault(IsTls) is not { } tlsUrl) return Array.Empty<Uri>();
        try
        {
            using EtcdEndpointClient c = EtcdEndpointClient.Open(tlsUrl, request.Identity);
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            bound.CancelAfter(deadline.Left);
            var list = await c.Client.MemberListAsync(new Etcdserverpb.MemberListRequest(), deadline: deadline.Utc, cancellationToken: bound.Token).ConfigureAwait(false);
            return list.Members.SelectMany(m => m.PeerURLs).Distinct(StringComparer.OrdinalIgnoreCase)
                .Select(u => Uri.TryCreate(u, UriKind.Absolute, out Uri? uri) ? uri : null).OfType<Uri>().ToList();
        }
        catch (Exception ex) when (ex is RpcException or HttpRequestException or OperationCanceledException && !cancel.IsCancellationRequested)
        {
            return Array.Empty<Uri>();
        }
    }

    private static async Task<IEnumerable<Finding>> CheckPortAsync(Uri url, bool peer, AuditRequest request, Deadline deadline, string? openssl, X509Certificate2 foreign, CancellationToken cancel)
    {
        var found = new List<Finding>();
        TimeSpan timeout = deadline.Left;
        string target = url.GetLeftPart(UriPartial.Authority);
        string side = peer ? "peer" : "client";
        string path = peer ? "/members" : "/version";

        // Every probe of the port runs at once, each within the timeout, so a port costs one timeout at most; the
        // findings are then read in order, as an attacker would go: plain HTTP, no certificate, any certificate.
        X509Certificate2? client = peer ? request.Identity?.ClientCertificate : null;
        Task<(bool Reachable, string? StatusLine, string? Why)> plainTask = PlainHttpAsync(url, path, timeout, cancel);
        Task<IEnumerable<Finding>> protocolTask = ProtocolFindingsAsync(url, side, openssl, timeout, cancel);
        Task<TlsResult> anonymousTask = TlsGetAsync(url, path, null, timeout, cancel);
        Task<TlsResult> strangerTask = TlsGetAsync(url, path, foreign, timeout, cancel);
        Task<TlsResult> clientTask = client is null ? Task.FromResult(new TlsResult(null, null)) : TlsGetAsync(url, path, client, timeout, cancel);
        await Task.WhenAll(plainTask, protocolTask, anonymousTask, strangerTask, clientTask).ConfigureAwait(false);

        // 1. Plain HTTP on a port that should speak only TLS.
        (bool reachable, string? plain, string? why) = plainTask.Result;
        if (!reachable)
        {
            found.Add(new Finding("TargetUnreachable", Severity.Info, target, $"The {side} port could not be reached ({why}), so it was not checked.", "Check the URL, or that the member runs."));
            return found;
        }

        if (plain is not null)
        {
            found.Add(new Finding(peer ? "PeerPlaintext" : "ClientPlaintext", Severity.Critical, target,
                $"The {side} port answered plain HTTP to GET {path}: \"{plain}\". Anyone who reaches it reads and writes without TLS.",
                peer ? "--listen-peer-urls https://... with --peer-cert-file, --peer-key-file, --peer-trusted-ca-file and --peer-client-cert-auth (Start-EtcdMember does this)."
                     : "--listen-client-urls https://... with --cert-file, --key-file, --trusted-ca-file and --client-cert-auth (Start-EtcdMember does this)."));
            return found;
        }

        // A port that takes TCP but never shows a certificate (a hung member, or something that is not TLS at all)
        // cannot be judged by any check below: that is a finding, so the audit never passes what it did not see.
        TlsResult anonymous = anonymousTask.Result;
        if (anonymous.ServerCertificate is null && strangerTask.Result.ServerCertificate is null)
        {
            found.Add(new Finding("HandshakeNotCompleted", Severity.Info, target,
                $"The {side} port accepted a TCP connection but no TLS handshake reached the server's certificate within {request.Timeout.TotalSeconds:0.#} s{(anonymous.Failure is { } failure ? $" ({failure})" : "")}, so none of its checks could be made.",
                "Check that a TLS server answers on that port (a hung member, or another service on it), then run the audit again."));
            return found;
        }

        // Protocol versions and suites, offered with openssl's own client, which can still offer what .NET will not.
        found.AddRange(protocolTask.Result);

        // 2. TLS without a client certificate; the server's certificate is looked at on the way.
        if ((anonymous.ServerCertificate ?? strangerTask.Result.ServerCertificate) is { } served) found.AddRange(CertificateFindings(served, url, side, request));
        if (anonymous.Status is >= 200 and < 500)
        {
            found.Add(new Finding(peer ? "PeerCertificateNotRequired" : "ClientCertificateNotRequired", Severity.Critical, target,
                $"A TLS client without any certificate got HTTP {anonymous.Status} for GET {path} on the {side} port.",
                peer ? "--peer-client-cert-auth with --peer-trusted-ca-file." : "--client-cert-auth with --trusted-ca-file."));
            return found;
        }

        // 3. A client certificate from a CA nobody trusts, made for this check and thrown away.
        if (strangerTask.Result.Status is >= 200 and < 500)
        {
            found.Add(new Finding(peer ? "PeerAcceptsForeignCertificate" : "ClientAcceptsForeignCertificate", Severity.Critical, target,
                $"A certificate from a CA made on the spot for this check got HTTP {strangerTask.Result.Status} on the {side} port: any self-made certificate gets in.",
                peer ? "--peer-trusted-ca-file naming only the cluster's peer CA, without --peer-auto-tls." : "--trusted-ca-file naming only the cluster's client CA, without --auto-tls."));
        }

        // 4. A peer port that takes the client certificate at hand: a client could open a raft connection.
        if (client is not null && clientTask.Result.Status is >= 200 and < 300)
        {
            found.Add(new Finding("PeerAcceptsClientCertificate", Severity.High, target,
                $"The client certificate given ({client.GetNameInfo(X509NameType.SimpleName, false)}) was accepted on the peer port (HTTP {clientTask.Result.Status} for GET /members): a client can speak raft to the member.",
                "Issue peer certificates from a CA of their own (New-EtcdCluster does) and point --peer-trusted-ca-file at it, or use --peer-cert-allowed-cn."));
        }

        return found;
    }

    private static async Task<IEnumerable<Finding>> ProtocolFindingsAsync(Uri url, string side, string? openssl, TimeSpan timeout, CancellationToken cancel)
    {
        string target = url.GetLeftPart(UriPartial.Authority);
        if (openssl is null) return new[] { NotChecked(target) };
        var found = new List<Finding>();
        var legacy = new List<string>();
        // Everything TLS 1.2 offers except forward-secret AEAD suites: CBC (Lucky13), static RSA key exchange, 3DES, RC4.
        Task<bool?> weakTask = ServerHelloAsync(openssl, url, new[] { "-tls1_2", "-cipher", "ALL:!aNULL:!eNULL:!ECDHE+AESGCM:!ECDHE+CHACHA20:@SECLEVEL=0" }, timeout, cancel);
        var versions = new[] { ("-tls1", "TLS 1.0"), ("-tls1_1", "TLS 1.1") }
            .Select(v => (v.Item2, Hello: ServerHelloAsync(openssl, url, new[] { v.Item1, "-cipher", "DEFAULT@SECLEVEL=0" }, timeout, cancel))).ToList();
        await Task.WhenAll(versions.Select(v => v.Hello).Append(weakTask)).ConfigureAwait(false);
        foreach ((string name, Task<bool?> hello) in versions)
        {
            if (hello.Result is null) return new[] { NotChecked(target) };
            if (hello.Result == true) legacy.Add(name);
        }

        if (legacy.Count > 0)
        {
            found.Add(new Finding("LegacyTlsAccepted", Severity.Medium, target,
                $"The {side} port answered a {string.Join(" and a ", legacy)} ClientHello with a ServerHello.",
                "--tls-min-version TLS1.2 (etcd 3.4.25, 3.5.8 and later), or --cipher-suites with ECDHE AEAD suites only, which no older protocol can use (Start-EtcdMember passes both where etcd has them)."));
        }

        bool? weak = weakTask.Result;
        if (weak is null) return new[] { NotChecked(target) };
        if (weak == true)
        {
            found.Add(new Finding("WeakCipherSuites", Severity.Medium, target,
                $"The {side} port chose a suite from a TLS 1.2 ClientHello that offered only CBC, static-RSA and other suites without forward secrecy or AEAD.",
                $"--cipher-suites {string.Join(",", Members.EtcdBinaryInfo.CipherSuites)} (Start-EtcdMember passes these)."));
        }

        return found;
    }

    private static Finding NotChecked(string target) =>
        new("ProtocolsNotChecked", Severity.Info, target, "Old protocol versions and weak suites were not offered: this check needs the openssl command, with a client that can still offer them.", "Install openssl (it is on most systems) and run the audit again.");

    /// <summary>
    /// Whether the server answers this ClientHello with a ServerHello: it chose the protocol and a suite offered, even
    /// if it then refuses this client for want of a certificate. Null when it could not be tried.
    /// </summary>
    private static async Task<bool?> ServerHelloAsync(string openssl, Uri url, string[] offer, TimeSpan timeout, CancellationToken cancel)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(openssl) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "s_client", "-connect", $"{url.DialHost()}:{url.Port}", "-msg" }.Concat(offer)) psi.ArgumentList.Add(a);
        if (!System.Net.IPAddress.TryParse(url.DialHost(), out _)) { psi.ArgumentList.Add("-servername"); psi.ArgumentList.Add(url.IdnHost); }
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.StandardInput.Close();
        Task<string> output = p.StandardOutput.ReadToEndAsync(cancel);
        Task<string> errors = p.StandardError.ReadToEndAsync(cancel);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            p.Kill(entireProcessTree: true);
        }

        string text = await output.ConfigureAwait(false) + await errors.ConfigureAwait(false);
        if (text.Contains("no protocols available", StringComparison.Ordinal) || text.Contains("no ciphers available", StringComparison.Ordinal)) return null;
        return System.Text.RegularExpressions.Regex.IsMatch(text, @"<<< TLS [0-9.]+, Handshake \[length [0-9a-f]+\], ServerHello\b");
    }

    private static IEnumerable<Finding> CertificateFindings(X509Certificate2 served, Uri url, string side, AuditRequest request)
    {
        string target = url.GetLeftPart(UriPartial.Authority);
        CertificateDetails d = CertificateDetails.From(served);
        DateTime now = DateTime.UtcNow;
        string name = $"The {side} port's certificate ({d.Subject}, serial {d.SerialNumber})";
        if (d.NotAfter <= now)
        {
            yield return new Finding("CertificateExpired", Severity.Critical, target, $"{name} expired on {d.NotAfter:u}: verifying clients refuse it.", "Update-EtcdCertificate, then nothing else: etcd reads the new files on the next handshake.");
        }
        else if (d.NotAfter <= now + request.ExpiringWithin)
        {
            yield return new Finding("CertificateExpiring", Severity.Medium, target, $"{name} expires on {d.NotAfter:u}, in {(d.NotAfter - now).TotalDays:0.#} days.", "Update-EtcdCertificate before then.");
        }

        if (d.IsSelfSigned)
        {
            yield return new Finding("SelfSignedCertificate", Severity.High, target,
                $"{name} is self-signed{(d.Subject.Contains("autogenerated", StringComparison.OrdinalIgnoreCase) || d.Subject.Contains("etcd", StringComparison.OrdinalIgnoreCase) ? " (as --auto-tls makes them)" : "")}: no client can verify whom it talks to.",
                $"Certificates from a CA (New-EtcdCA, New-EtcdCertificate) instead of --{(side == "peer" ? "peer-" : "")}auto-tls.");
        }

        if (!d.AllowsUsage("server auth"))
        {
            yield return new Finding("CertificateMissingServerAuth", Severity.High, target, $"{name} lacks the server auth extended key usage: Go clients refuse it.", "New-EtcdCertificate -Profile Server (or Peer).");
        }

        if (side == "peer" && !d.AllowsUsage("client auth"))
        {
            yield return new Finding("PeerCertificateMissingClientAuth", Severity.Medium, target, $"{name} lacks the client auth extended key usage: members dial each other with their peer certificate, so the other side refuses this one (\"bad certificate\").", "New-EtcdCertificate -Profile Peer (server and client auth).");
        }

        var host = Hosts.ParseOne(url.DialHost());
        bool covered = host.Kind == HostKind.IPAddress
            ? d.IPAddresses.Any(a => a.ToString() == host.Value)
            : d.DnsNames.Any(n => string.Equals(n, host.Value, StringComparison.OrdinalIgnoreCase) || (n.StartsWith("*.", StringComparison.Ordinal) && host.Value.EndsWith(n[1..], StringComparison.OrdinalIgnoreCase)));
        if (!covered)
        {
            yield return new Finding("CertificateHostMismatch", Severity.High, target, $"{name} does not name {host.Value}, the host dialled: clients that verify refuse it.", $"Reissue it with -Hosts {host.Value}.");
        }

        if (d.KeyAlgorithm == "RSA" && d.KeySize < 2048)
        {
            yield return new Finding("WeakKey", Severity.High, target, $"{name} has a {d.KeySize}-bit RSA key.", "Reissue it with a 2048-bit or larger RSA key, or ECDSA P-256.");
        }

        // Only the client side: the peer port's certificate comes from the peer CA, which need not be the one given.
        if (side == "client" && request.Identity is { } id && !d.IsSelfSigned && !id.Trust.Certificates.Any(ca => ca.SubjectName.RawData.AsSpan().SequenceEqual(served.IssuerName.RawData)))
        {
            yield return new Finding("CertificateNotFromCA", Severity.Medium, target, $"{name} was issued by {d.Issuer}, which is not in the CA file given.", "Give the cluster's CA, or reissue the certificate from it.");
        }
    }

    private static async Task<IEnumerable<Finding>> CheckAuthAsync(Uri url, AuditRequest request, Deadline deadline, CancellationToken cancel)
    {
        string target = url.GetLeftPart(UriPartial.Authority);
        var found = new List<Finding>();
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        bound.CancelAfter(deadline.Left);
        try
        {
            using EtcdEndpointClient c = EtcdEndpointClient.Open(url, request.Identity!);
            // Both calls share the audit's one bound: a port that does not answer costs it once, not twice.
            try
            {
                var status = await c.Client.StatusAsync(new Etcdserverpb.StatusRequest(), deadline: deadline.Utc, cancellationToken: bound.Token).ConfigureAwait(false);
                if (Version.TryParse(status.Version, out Version? v) && !new Members.EtcdBinaryInfo("etcd", "", v, null).SupportsTlsMinVersion)
                {
                    found.Add(new Finding("EtcdLacksTlsMinVersion", Severity.Low, target,
                        $"The member runs etcd {v}, which has no --tls-min-version (it came with 3.4.25 and 3.5.8): TLS 1.0 and 1.1 stay out only while --cipher-suites lists AEAD suites alone.",
                        "Upgrade etcd to 3.4.25, 3.5.8 or later; until then keep --cipher-suites to ECDHE AEAD suites (Start-EtcdMember does)."));
                }
            }
            catch (RpcException ex) when (ex.StatusCode != StatusCode.DeadlineExceeded)
            {
                // Without the version the other checks still stand.
            }

            if (!await Auth.AuthBootstrap.IsEnabledAsync(c, deadline.Utc, bound.Token).ConfigureAwait(false))
            {
                found.Add(new Finding("AuthDisabled", Severity.High, target,
                    "etcd's authentication is off while client certificates are the only gate: every certificate the client CA issued acts as root and reads and writes every key.",
                    "Enable-EtcdAuth, which maps certificates to users by CN and limits each to its key prefixes."));
                return found;
            }

            found.AddRange(await IdentityFindingsAsync(c, url, request, deadline, bound.Token).ConfigureAwait(false));
            return found;
        }
        catch (RpcException ex)
        {
            return found.Append(AuthNotChecked(target, ex.StatusCode == StatusCode.DeadlineExceeded ? $"no answer within {request.Timeout.TotalSeconds:0.#} s" : ex.Status.Detail));
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return found.Append(AuthNotChecked(target, $"no answer within {request.Timeout.TotalSeconds:0.#} s"));
        }
    }

    /// <summary>
    /// With auth on: does etcd see this client as the user its certificate names? A proxy that presents one identity
    /// upstream for every client (its own, root in most set-ups) makes etcd's RBAC see that user instead. Asked as
    /// the client: listing users is for the root role alone, so a non-root certificate that may list them is seen as
    /// someone else. With the root certificate this cannot be told apart, which is said plainly where the endpoint is
    /// something in front of the members.
    /// </summary>
    private static async Task<IEnumerable<Finding>> IdentityFindingsAsync(EtcdEndpointClient c, Uri url, AuditRequest request, Deadline deadline, CancellationToken cancel)
    {
        string target = url.GetLeftPart(UriPartial.Authority);
        string? user = request.Identity!.ClientCertificate!.GetNameInfo(X509NameType.SimpleName, false);
        var members = await c.Client.MemberListAsync(new Etcdserverpb.MemberListRequest(), deadline: deadline.Utc, cancellationToken: cancel).ConfigureAwait(false);
        bool inFront = !members.Members.Any(m => m.ClientURLs.Any(u => ClusterHealth.SameEndpoint(u, url)));
        if (string.IsNullOrEmpty(user) || user == "root")
        {
            return !inFront ? Array.Empty<Finding>() : new[]
            {
                new Finding("IdentityNotChecked", Severity.Info, target,
                    "This endpoint is in front of the members (a proxy), and the client certificate given is root's: whether etcd sees each client as itself through it cannot be told with root's own rights.",
                    "Run the audit through the proxy with a client certificate of a user without the root role."),
            };
        }

        try
        {
            await c.Client.UserListAsync(new Etcdserverpb.AuthUserListRequest(), deadline: deadline.Utc, cancellationToken: cancel).ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied || Auth.AuthBootstrap.FromEtcd(ex, ""))
        {
            // etcd refused it (permission denied, or no such user): it saw a user without the root role.
            return Array.Empty<Finding>();
        }

        // Listing users worked: etcd saw a user with the root role. Only a finding if the certificate's user has none.
        try
        {
            var own = await c.Client.UserGetAsync(new Etcdserverpb.AuthUserGetRequest { Name = user }, deadline: deadline.Utc, cancellationToken: cancel).ConfigureAwait(false);
            if (own.Roles.Contains("root")) return Array.Empty<Finding>();
        }
        catch (RpcException ex) when (Auth.AuthBootstrap.FromEtcd(ex, "user name not found"))
        {
        }

        return new[]
        {
            new Finding("IdentityFlattened", Severity.High, target,
                $"The client certificate '{user}' could list etcd's users through {target}, which only a user with the root role may, and '{user}' has no such role: etcd saw another user for this client. {(inFront ? "This endpoint is in front of the members: a proxy that presents one identity upstream for every client does this, and etcd's RBAC then sees that identity for all of them." : "")}".TrimEnd(),
                "Start-EtcdProxy -IdentityPath with an identity per user (Enable-EtcdAuth -ProxyIdentityPath, New-EtcdProxyIdentity), so each client reaches etcd as itself."),
        };
    }

    private static Finding AuthNotChecked(string target, string why) =>
        new("AuthNotChecked", Severity.Info, target, $"Whether auth is on could not be checked: {why}", "Give -CA and a client -Certificate the cluster accepts, and check that the member answers.");

    private static IEnumerable<Finding> LocalFindings(AuditRequest request)
    {
        var found = new List<Finding>();
        if (OperatingSystem.IsWindows()) return found;
        foreach (string dir in request.DataDirs.Where(Directory.Exists))
        {
            UnixFileMode mode = File.GetUnixFileMode(dir);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)) != 0)
            {
                found.Add(new Finding("DataDirPermissive", Severity.Medium, dir, $"The data dir has mode {Octal(mode)}: other users may read the keyspace (etcd 3.5 and later refuse to start with it).", $"chmod 700 '{dir}'."));
            }
        }

        foreach (string cert in request.CertificateFiles.Where(File.Exists))
        {
            string? key = BareFileNames.Beside(cert, "-key.pem");
            if (key is not null && (File.GetUnixFileMode(key) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            {
                found.Add(new Finding("PrivateKeyReadable", Severity.High, key, $"The private key has mode {Octal(File.GetUnixFileMode(key))}: other users of this machine can read it and act as its certificate.", $"chmod 600 '{key}'."));
            }

            string dir = Path.GetDirectoryName(Path.GetFullPath(cert))!;
            foreach (string other in Directory.EnumerateFiles(dir, "*-key.pem"))
            {
                string? caCert = other[..^"-key.pem".Length] + ".pem";
                if (!File.Exists(caCert) || caCert == Path.GetFullPath(cert)) continue;
                bool isCA;
                try { isCA = CertificateDetails.From(CertificateFile.LoadFirst(caCert)).IsCA; }
                catch (EtcdSecureException) { continue; }
                if (isCA && !found.Any(f => f.Id == "CAKeyBesideMember" && f.Target == other))
                {
                    found.Add(new Finding("CAKeyBesideMember", Severity.Medium, other, $"The CA's private key lies beside the certificate '{cert}': whoever can read the files of that certificate's user (a member's host, a client's) can issue certificates the cluster trusts.", "Keep CA keys off the hosts that use the certificates; copy only ca.pem there."));
                }
            }
        }

        return found;
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0');

    private static async Task<(bool Reachable, string? StatusLine, string? Why)> PlainHttpAsync(Uri url, string path, TimeSpan timeout, CancellationToken cancel)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(timeout);
        using var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(url.DialHost(), url.Port, cts.Token).ConfigureAwait(false);
            NetworkStream s = tcp.GetStream();
            await s.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.0\r\nHost: {url.Authority}\r\n\r\n"), cts.Token).ConfigureAwait(false);
            byte[] buf = new byte[256];
            int n = await s.ReadAsync(buf, cts.Token).ConfigureAwait(false);
            string text = Encoding.ASCII.GetString(buf, 0, n);
            return (true, text.StartsWith("HTTP/", StringComparison.Ordinal) && !text.Contains(" 400 ", StringComparison.Ordinal) ? text.Split('\r', '\n')[0] : null, null);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            // Connected but silent: a TLS server waiting for a ClientHello does exactly this. Not connected: nothing
            // answered the TCP handshake in time (a host that is down, or a firewall that drops).
            return (tcp.Connected, null, $"no TCP answer within {timeout.TotalSeconds:0.#} s");
        }
        catch (SocketException ex)
        {
            return (false, null, ex.SocketErrorCode == SocketError.ConnectionRefused ? "the connection was refused: nothing listens there" : ex.SocketErrorCode.ToString());
        }
        catch (IOException)
        {
            return (true, null, null);
        }
    }

    private sealed record TlsResult(X509Certificate2? ServerCertificate, int? Status, string? Failure = null);

    /// <summary>A TLS handshake that trusts any server (the server is what is looked at), then one HTTP/1.1 GET.</summary>
    private static async Task<TlsResult> TlsGetAsync(Uri url, string path, X509Certificate2? clientCertificate, TimeSpan timeout, CancellationToken cancel)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(timeout);
        X509Certificate2? served = null;
        try
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(url.DialHost(), url.Port, cts.Token).ConfigureAwait(false);
            using var ssl = new SslStream(tcp.GetStream(), false);
            var options = new SslClientAuthenticationOptions
            {
                TargetHost = url.IdnHost,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, cert, _, _) =>
                {
                    if (cert is not null) served = new X509Certificate2(cert);
                    return true;
                },
                ClientCertificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate },
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
            };
            await ssl.AuthenticateAsClientAsync(options, cts.Token).ConfigureAwait(false);
            await ssl.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {url.Authority}\r\nConnection: close\r\n\r\n"), cts.Token).ConfigureAwait(false);
            byte[] buf = new byte[256];
            int n = await ssl.ReadAsync(buf, cts.Token).ConfigureAwait(false);
            string text = Encoding.ASCII.GetString(buf, 0, n);
            int? status = text.StartsWith("HTTP/1.", StringComparison.Ordinal) && text.Length >= 12 && int.TryParse(text.AsSpan(9, 3), out int code) ? code : null;
            return new TlsResult(served, status);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException or OperationCanceledException && !cancel.IsCancellationRequested)
        {
            return new TlsResult(served, null, ex is OperationCanceledException ? "it stayed silent" : ex.GetBaseException().Message);
        }
    }

    private static X509Certificate2 ThrowawayClientCertificate()
    {
        using ECDsa caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caReq = new CertificateRequest("CN=etcdsecure-audit-throwaway-ca", caKey, HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 ca = caReq.CreateSelfSigned(now.AddMinutes(-5), now.AddHours(1));
        ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=root", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(new OidCollection { new Oid("1.3.6.1.5.5.7.3.2") }, false));
        using X509Certificate2 leaf = req.Create(ca, now.AddMinutes(-5), now.AddHours(1), RandomNumberGenerator.GetBytes(16));
        // An ephemeral key cannot be used by SslStream on every platform; a PKCS#12 round trip makes it usable.
        using X509Certificate2 withKey = leaf.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }
}
