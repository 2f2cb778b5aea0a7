using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using EtcdSecure.Engine;
using EtcdSecure.Engine.Members;

namespace EtcdSecure.PowerShell.Cmdlets;

/// <summary>
/// Starts an etcd member with TLS on client and peer traffic and client certificates required on both,
/// detached from the shell, and returns once its client port answers TLS.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "EtcdMember", SupportsShouldProcess = true)]
[OutputType(typeof(EtcdMember))]
public sealed class StartEtcdMemberCommand : MemberSpecCmdlet
{
    /// <summary>How long the member may take to answer TLS before it is stopped and the start fails.</summary>
    [Parameter]
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    protected override void Process()
    {
        var (spec, etcd) = BuildSpec();
        var advertiseClient = spec.AdvertiseClientUrls;
        var (exe, args) = MemberHost.Plan(spec, etcd);
        string commandLine = EtcdCommandLine.Quote(exe, args);
        WriteVerbose(commandLine);
        if (!ShouldProcess($"member {Name}", $"Start etcd {etcd.Version}: {commandLine}")) return;

        var progress = new ProgressRecord(1, $"Starting etcd member {Name}", $"waiting for TLS on {advertiseClient[0]}");
        WriteProgress(progress);
        RunningMember member = MemberHost.StartAsync(spec, etcd, StartTimeout, CancelToken).GetAwaiter().GetResult();
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
        WriteObject(EtcdMember.From(member));
    }
}
