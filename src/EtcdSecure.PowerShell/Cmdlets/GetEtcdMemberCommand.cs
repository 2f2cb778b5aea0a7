using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>The members this module started in this session: running, stopped, or exited with their last log lines.</summary>
/// <example>
/// <code>
/// Get-EtcdMember
/// </code>
/// Lists the members started in this session: running, stopped, or exited with their exit code and last log lines.
/// </example>
/// <example>
/// <code>
/// Get-EtcdMember n* | Where-Object State -EQ Exited | Select-Object -ExpandProperty LastLogLines
/// </code>
/// Shows why members named n-something exited.
/// </example>
[Cmdlet(VerbsCommon.Get, "EtcdMember")]
[OutputType(typeof(EtcdMember))]
public sealed class GetEtcdMemberCommand : EtcdCmdlet
{
    /// <summary>Names of the members to list; wildcards allowed. Default: all.</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(MemberNameCompleter))]
    public string[] Name { get; set; } = { "*" };

    protected override void Process()
    {
        var patterns = Name.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToList();
        foreach (RunningMember m in MemberHost.All.Where(m => patterns.Any(p => p.IsMatch(m.Spec.Name))))
        {
            WriteObject(EtcdMember.From(m));
        }
    }
}
