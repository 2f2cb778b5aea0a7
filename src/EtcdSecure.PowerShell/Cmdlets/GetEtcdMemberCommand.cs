using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>The members this module started, in this session or any other of this user: running, or exited with why.</summary>
/// <example>
/// <code>
/// Get-EtcdMember
/// </code>
/// Lists the members this module started, whichever session started them: running, or exited with the reason and last log lines.
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
    /// <summary>Names of the members to list; wildcards allowed. Default: all. A plain name that matches nothing writes a non-terminating MemberNotFound error.</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string[] Name { get; set; } = { "*" };

    protected override void Process()
    {
        foreach (RunningMember m in FindByName(Name, MemberHost.All, m => m.Spec.Name, "MemberNotFound", "member")) WriteObject(EtcdMember.From(m));
    }
}
