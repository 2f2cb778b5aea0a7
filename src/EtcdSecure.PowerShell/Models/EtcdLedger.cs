using System;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure;

/// <summary>A certificate as its CA's ledger records it (Get-EtcdIssuedCertificate, Revoke-EtcdCertificate).</summary>
public sealed class EtcdIssuedCertificate
{
    public string SerialNumber { get; init; } = "";
    public string CommonName { get; init; } = "";
    public string Subject { get; init; } = "";
    public string[] Hosts { get; init; } = Array.Empty<string>();
    public string? Profile { get; init; }
    public DateTime NotBefore { get; init; }
    public DateTime NotAfter { get; init; }
    public TimeSpan ExpiresIn => NotAfter - DateTime.UtcNow;

    /// <summary>Whole days until NotAfter, as Get-EtcdCertificate counts them; negative once expired.</summary>
    public int DaysLeft => (int)Math.Floor(ExpiresIn.TotalDays);

    /// <summary>Revoked, Renewed (a newer certificate replaced it), Expired or Valid.</summary>
    public string Status => RevokedAt is not null ? "Revoked" : RenewedBy is not null ? "Renewed" : NotAfter <= DateTime.UtcNow ? "Expired" : "Valid";
    public DateTime IssuedAt { get; init; }
    public DateTime? RevokedAt { get; init; }
    public string? RevocationReason { get; init; }
    public string? RenewedBy { get; init; }
    public string? Path { get; init; }
    public string CA { get; init; } = "";
    public string? CrlPath { get; init; }

    internal static EtcdIssuedCertificate From(LedgerEntry e, string ca, string? crlPath = null) => new()
    {
        SerialNumber = e.SerialNumber,
        CommonName = e.CommonName,
        Subject = e.Subject,
        Hosts = e.Hosts,
        Profile = e.Profile,
        NotBefore = e.NotBefore,
        NotAfter = e.NotAfter,
        IssuedAt = e.IssuedAt,
        RevokedAt = e.RevokedAt,
        RevocationReason = e.RevocationReason,
        RenewedBy = e.RenewedBy,
        Path = e.Path,
        CA = ca,
        CrlPath = crlPath,
    };
}

/// <summary>A CRL a CA published (Update-EtcdCrl): pass Path to -CrlPath of Start-EtcdMember and Start-EtcdProxy.</summary>
public sealed class EtcdCrl
{
    public string Path { get; init; } = "";
    public string Issuer { get; init; } = "";
    public DateTime ThisUpdate { get; init; }
    public DateTime NextUpdate { get; init; }
    public long Number { get; init; }
    public int RevokedCount { get; init; }

    public override string ToString() => Path;

    internal static EtcdCrl From(CrlInfo c) => new()
    {
        Path = c.Path,
        Issuer = c.Issuer,
        ThisUpdate = c.ThisUpdate,
        NextUpdate = c.NextUpdate,
        Number = c.Number,
        RevokedCount = c.RevokedCount,
    };
}

/// <summary>RFC 5280 revocation reasons, as Revoke-EtcdCertificate -Reason takes them.</summary>
public enum EtcdRevocationReason
{
    Unspecified = 0,
    KeyCompromise = 1,
    CACompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    PrivilegeWithdrawn = 9,
}

/// <summary>What Enable-EtcdAuth left in place.</summary>
public sealed class EtcdAuthStatus
{
    public string Endpoint { get; init; } = "";
    public bool Enabled { get; init; }

    /// <summary>Whether auth was on already before this run; empty where etcd cannot say (before 3.5, which lacks AuthStatus).</summary>
    public bool? WasEnabled { get; init; }
    public string[] Users { get; init; } = Array.Empty<string>();
    public string[] Roles { get; init; } = Array.Empty<string>();
}

/// <summary>How bad a Test-EtcdSecurity finding is.</summary>
public enum EtcdSeverity
{
    Info = 0,
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

/// <summary>One Test-EtcdSecurity finding: a stable Id (docs/security.md), what was seen, and what fixes it.</summary>
public sealed class EtcdSecurityFinding
{
    public string Id { get; init; } = "";
    public EtcdSeverity Severity { get; init; }
    public string Target { get; init; } = "";
    public string Evidence { get; init; } = "";
    public string Remedy { get; init; } = "";
}

/// <summary>Test-EtcdSecurity -Summary: counts per severity; Passed when nothing High or Critical was found.</summary>
public sealed class EtcdSecuritySummary
{
    public int Critical { get; init; }
    public int High { get; init; }
    public int Medium { get; init; }
    public int Low { get; init; }
    public int Info { get; init; }

    /// <summary>Findings that say a check could not be made (TargetUnreachable, HandshakeNotCompleted, AuthNotChecked, ProtocolsNotChecked).</summary>
    public int NotChecked { get; init; }

    /// <summary>Nothing High or Critical, and every check made.</summary>
    public bool Passed { get; init; }
    public string[] Targets { get; init; } = Array.Empty<string>();
}
