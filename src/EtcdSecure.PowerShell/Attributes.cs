using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell;

/// <summary>
/// The one rule for every duration parameter: Go's form as cfssl and etcd write durations ("30s", "8760h", "1h30m"),
/// with days as "30d", or a TimeSpan ("365.00:00:00", or a [TimeSpan] object). A bare number has no unit, so it is
/// refused rather than guessed: unquoted, PowerShell reads 30d, 2y or 1s as the numbers 30, 2 and 1 (type suffixes),
/// and a TimeSpan parameter would take a bare 30 as 30 ticks. Zero is the one number taken, as it is zero in any unit.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class DurationTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object? value = inputData is PSObject pso ? pso.BaseObject : inputData;
        return value switch
        {
            null => throw new ArgumentTransformationMetadataException("Give a duration: '30s', '8760h', '30d' or a TimeSpan."),
            TimeSpan t => t,
            string s when Duration.TryParse(s, out TimeSpan parsed) => parsed,
            string s => throw new ArgumentTransformationMetadataException(Duration.NotADuration(s)),
            sbyte or byte or short or ushort or int or uint or long or ulong or decimal or double or float or System.Numerics.BigInteger when IsZero(value) => TimeSpan.Zero,
            sbyte or byte or short or ushort or int or uint or long or ulong or decimal or double or float or System.Numerics.BigInteger => throw new ArgumentTransformationMetadataException(Duration.ArrivedAsNumber(value)),
            _ => throw new ArgumentTransformationMetadataException(Duration.NotADuration(value.ToString() ?? "")),
        };
    }

    private static bool IsZero(object number) => number is System.Numerics.BigInteger b ? b.IsZero : Convert.ToDecimal(number, System.Globalization.CultureInfo.InvariantCulture) == 0;
}

/// <summary>Completes -Profile with the built-in profiles and, when -Config is given, the profiles in that file.</summary>
public sealed class ProfileCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IEnumerable<string> names = SigningConfig.BuiltInNames;
        if (fakeBoundParameters["Config"] is string config)
        {
            try
            {
                names = SigningConfig.Load(config).ProfileNames;
            }
            catch (EtcdSecureException)
            {
                // An unreadable config still completes the built-in names; the cmdlet reports the file itself.
            }
        }

        return names
            .Where(n => n.StartsWith(wordToComplete.Trim('\'', '"'), StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult(n.Contains(' ') ? $"'{n}'" : n, n, CompletionResultType.ParameterValue, n));
    }
}

/// <summary>Lets certificate parameters take an EtcdCertificate from the PKI cmdlets or a path to a PEM file.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class CertificateTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject pso ? pso.BaseObject : inputData;
        switch (value)
        {
            case EtcdCertificate c:
                return c;
            case string or System.IO.FileInfo:
                string path = engineIntrinsics.SessionState.Path.GetUnresolvedProviderPathFromPSPath(value is System.IO.FileInfo f ? f.FullName : (string)value);
                try
                {
                    var cert = CertificateFile.LoadFirst(path);
                    return EtcdCertificate.From(CertificateDetails.From(cert), path, BareFileNames.Beside(path, "-key.pem"), BareFileNames.Beside(path, ".csr"));
                }
                catch (EtcdSecureException ex)
                {
                    throw new ArgumentTransformationMetadataException(ex.Message, ex);
                }

            default:
                throw new ArgumentTransformationMetadataException($"Give a certificate from New-EtcdCertificate or Get-EtcdCertificate, or the path of a PEM certificate, not a {value?.GetType().Name ?? "null"}.");
        }
    }
}

/// <summary>
/// Completes -Name of the member, cluster and proxy cmdlets with what this module started: members and clusters from
/// the state store (any session), proxies of this session and detached ones. The command's noun says which.
/// </summary>
public sealed class NameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var pattern = new WildcardPattern(wordToComplete.Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        IEnumerable<(string Name, string Tip)> items = commandName switch
        {
            _ when commandName.EndsWith("EtcdCluster", StringComparison.OrdinalIgnoreCase) => Engine.Members.ClusterHost.All.Select(c => (c.Name, $"{c.Name} ({c.Path})")),
            _ when commandName.EndsWith("EtcdProxy", StringComparison.OrdinalIgnoreCase) => ProxyRegistry.Everything.Select(p => (ProxyRegistry.NameOf(p), p switch
            {
                EtcdProxyJob j => $"{j.Name} ({j.Location}, {j.JobStateInfo.State})",
                Engine.State.ProxyRecord r => $"{r.Name} ({r.Endpoint}, detached, process {r.ProcessId})",
                _ => ProxyRegistry.NameOf(p),
            })),
            _ => Engine.Members.MemberHost.All.Select(m => (m.Spec.Name, $"{m.Spec.Name} (process {m.ProcessId}, {(m.HasExited ? "exited" : "running")})")),
        };
        return items.Where(i => pattern.IsMatch(i.Name)).Select(i => new CompletionResult(i.Name, i.Name, CompletionResultType.ParameterValue, i.Tip));
    }
}

/// <summary>Completes -CipherSuite with the TLS 1.3 and ECDHE suites (the IANA names .NET knows).</summary>
public sealed class CipherSuiteCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Enum.GetNames<System.Net.Security.TlsCipherSuite>()
            .Where(n => (n.StartsWith("TLS_AES", StringComparison.Ordinal) || n.StartsWith("TLS_CHACHA", StringComparison.Ordinal) || n.StartsWith("TLS_ECDHE_", StringComparison.Ordinal))
                        && n.StartsWith(wordToComplete.Trim('\'', '"'), StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, n));
}
