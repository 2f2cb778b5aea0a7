using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Pki;

namespace EtcdSecure.PowerShell;

/// <summary>Lets -Validity take cfssl's Go durations ("8760h", "1h30m") as well as TimeSpans ("365.00:00:00").</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class GoDurationTransformationAttribute : ArgumentTransformationAttribute
{
    /// <summary>
    /// For windows counted in days (-ExpiringWithin): a bare number is days, and "30d" is 30 days. Unquoted, 30d
    /// reaches the cmdlet as the decimal 30, so both spellings mean the same.
    /// </summary>
    public bool NumbersAreDays { get; set; }

    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject pso ? pso.BaseObject : inputData;
        switch (value)
        {
            case TimeSpan t:
                return t;
            case string s when TryParse(s, out TimeSpan parsed):
                return parsed;
            case string s when NumbersAreDays && s.EndsWith('d') && double.TryParse(s[..^1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double days) && days >= 0:
                return TimeSpan.FromDays(days);
            case sbyte or byte or short or ushort or int or uint or long or ulong or decimal or double when NumbersAreDays:
                return TimeSpan.FromDays(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
            case sbyte or byte or short or ushort or int or uint or long or ulong or decimal or double:
                // PowerShell reads 1s, 30d or 10l as numbers (type suffixes), so the unit never arrives.
                throw new ArgumentTransformationMetadataException(
                    $"'{value}' arrived as a number, without a unit: PowerShell reads suffixes such as 's' or 'd' as number types. Quote the duration: '1s', '8760h'.");
            default:
                throw new ArgumentTransformationMetadataException(
                    $"'{value}' is not a duration. Use Go's form as cfssl does (\"8760h\", \"43800h\", \"90m\") or a TimeSpan (\"365.00:00:00\").");
        }
    }

    private static bool TryParse(string s, out TimeSpan value) =>
        GoDuration.TryParse(s, out value) || TimeSpan.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out value);
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
