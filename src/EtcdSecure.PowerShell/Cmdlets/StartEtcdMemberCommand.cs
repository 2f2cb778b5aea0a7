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
/// <example>
/// <code>
/// $peers = @{ n1 = 'https://127.0.0.1:2380'; n2 = 'https://127.0.0.1:2382'; n3 = 'https://127.0.0.1:2384' }
/// Start-EtcdMember n1 -ClientUrl https://127.0.0.1:2379 -PeerUrl $peers.n1 -InitialCluster $peers -Certificate $node -CA $ca
/// </code>
/// Starts the first member of a 3-member cluster with client and peer certificate authentication.
/// </example>
/// <example>
/// <code>
/// Start-EtcdMember n1 -ClientUrl https://127.0.0.1:2379 -PeerUrl https://127.0.0.1:2380 -Certificate $node -CA $ca -WhatIf
/// </code>
/// Prints the etcd command line without starting anything.
/// </example>
/// <example>
/// <code>
/// Start-EtcdMember n1 -ClientUrl https://127.0.0.1:2379 -PeerUrl $peers.n1 -InitialCluster $peers -ClusterState Existing -Certificate $node -CA $ca -DataDir ./n1.etcd
/// </code>
/// Restarts a stopped member so it rejoins its cluster with its data.
/// </example>
[Cmdlet(VerbsLifecycle.Start, "EtcdMember", SupportsShouldProcess = true)]
[OutputType(typeof(EtcdMember))]
public sealed class StartEtcdMemberCommand : MemberSpecCmdlet
{
    /// <summary>How long the member may take to answer TLS before it is stopped and the start fails ('30s', '2m' or a TimeSpan).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A CRL of -CA (--client-crl-file), such as the NAME-crl.pem that Revoke-EtcdCertificate and Update-EtcdCrl
    /// write: clients whose certificates it names are refused. etcd reads it on every new connection, so a later
    /// revocation needs no restart. etcd does not check the CRL's signature or its nextUpdate; this cmdlet checks the
    /// signature before it starts the member.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CrlPath { get; set; }

    /// <summary>A CRL of -PeerCA (--peer-crl-file): peers whose certificates it names cannot join. Default: none.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? PeerCrlPath { get; set; }

    protected override void Process()
    {
        var (spec, etcd) = BuildSpec();
        if ((CrlPath ?? PeerCrlPath) is not null && !etcd.SupportsCrlFiles)
        {
            throw new EtcdSecureException("EtcdTooOld", ErrorKind.NotImplemented,
                $"etcd {etcd.Version} has no --client-crl-file or --peer-crl-file (they came with 3.2); install a newer etcd to use -CrlPath.", etcd.Path);
        }

        spec = spec with
        {
            ClientCrlPath = CrlPath is null ? null : ResolveLocalPath(CrlPath),
            PeerCrlPath = PeerCrlPath is null ? null : ResolveLocalPath(PeerCrlPath),
        };
        var (exe, args) = MemberHost.Plan(spec, etcd);
        string commandLine = EtcdCommandLine.Quote(exe, args);
        WriteVerbose(commandLine);
        if (!ShouldProcess($"member {Name}", $"Start etcd {etcd.Version}: {commandLine}")) return;

        var progress = new ProgressRecord(1, $"Starting etcd member {Name}", $"waiting for TLS on {spec.AdvertiseClientUrls[0]}");
        WriteProgress(progress);
        WarnStrayEnvironment();
        RunningMember member = MemberHost.StartAsync(spec, etcd, StartTimeout, CancelToken).GetAwaiter().GetResult();
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
        WriteObject(EtcdMember.From(member));
    }
}
