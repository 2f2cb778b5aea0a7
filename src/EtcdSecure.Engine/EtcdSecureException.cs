using System;

namespace EtcdSecure.Engine;

/// <summary>What went wrong, in terms the cmdlet layer maps onto PowerShell's ErrorCategory.</summary>
public enum ErrorKind
{
    InvalidArgument,
    InvalidData,
    ObjectNotFound,
    ResourceExists,
    ResourceUnavailable,
    PermissionDenied,
    SecurityError,
    ConnectionError,
    OperationTimeout,
    NotInstalled,
    InvalidOperation,
    NotImplemented,
}

/// <summary>
/// The only exception the engine throws on purpose. ErrorId is stable: scripts and tests match on it,
/// so an id is never renamed once shipped.
/// </summary>
public sealed class EtcdSecureException : Exception
{
    public EtcdSecureException(string errorId, ErrorKind kind, string message, object? target = null, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
        Target = target;
    }

    public string ErrorId { get; }
    public ErrorKind Kind { get; }
    public object? Target { get; }
}
