using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Stops members this module started, in this session or any other: SIGTERM, then a kill after -Timeout, each sent
/// only while the PID still belongs to the member (checked by the process's start time). The member's record goes;
/// its data is kept unless -RemoveData. A member that has exited already just loses its record.
/// </summary>
/// <example>
/// <code>
/// Stop-EtcdMember n1
/// </code>
/// Sends SIGTERM to the member and kills it if it has not exited within 10 s. Its data stays.
/// </example>
/// <example>
/// <code>
/// Get-EtcdMember | Stop-EtcdMember -RemoveData
/// </code>
/// Stops every member this module started and deletes their data dirs.
/// </example>
[Cmdlet(VerbsLifecycle.Stop, "EtcdMember", SupportsShouldProcess = true, DefaultParameterSetName = ByName)]
[OutputType(typeof(EtcdMember))]
public sealed class StopEtcdMemberCommand : EtcdCmdlet
{
    private const string ByName = "Name";
    private const string ById = "ProcessId";

    /// <summary>Names of members started by this module, in any session; wildcards allowed. Binds from Get-EtcdMember on the pipeline.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = ByName)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(NameCompleter))]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>Process ids of members started by this module; any other process is left alone.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ById)]
    [Alias("Id")]
    public int[] ProcessId { get; set; } = Array.Empty<int>();

    /// <summary>How long a member may take to exit after SIGTERM before it is killed ('10s', '1m' or a TimeSpan).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Also delete the member's data dir (its keys and WAL): the member cannot rejoin with its old identity.</summary>
    [Parameter]
    public SwitchParameter RemoveData { get; set; }

    /// <summary>Return the stopped members.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void Process()
    {
        var targets = ParameterSetName == ById
            ? ProcessId.Select(pid => MemberHost.All.LastOrDefault(m => m.ProcessId == pid && !m.HasExited)
                ?? throw new EtcdSecureException("MemberNotFound", ErrorKind.ObjectNotFound, $"Process {pid} is not a member this module started (or its PID now belongs to another program); it is left alone.", pid)).ToList()
            : MatchByName(Name, () => MemberHost.All, m => m.Spec.Name,
                n => new EtcdSecureException("MemberNotFound", ErrorKind.ObjectNotFound, $"No member named '{n}' was started by this module (state store: {Engine.State.StateStore.Current.Root}).", n)).ToList();

        foreach (RunningMember m in targets.Distinct())
        {
            if (!ShouldProcess($"member {m.Spec.Name} (process {m.ProcessId})", RemoveData ? "Stop and remove its data dir" : "Stop")) continue;
            WriteVerbose($"Stopping {m.Spec.Name} (process {m.ProcessId}): SIGTERM, then a kill after {Timeout.TotalSeconds:0} s.");
            MemberHost.StopAsync(m, Timeout, CancelToken).GetAwaiter().GetResult();
            if (RemoveData && Directory.Exists(m.Spec.DataDir)) Directory.Delete(m.Spec.DataDir, recursive: true);
            if (PassThru) WriteObject(EtcdMember.From(m));
        }
    }
}
