#requires -Version 7.6
<#
.SYNOPSIS
    Wall time of a health check of a 3-member TLS cluster: Test-EtcdClusterHealth -Cluster against
    `etcdctl endpoint health --cluster`, with every member up and with one member down, same run.
.DESCRIPTION
    etcdctl is a process per check, as people run it; Test-EtcdClusterHealth runs in a warm session, as
    people run it at a prompt or in a runbook. Both are also shown as a fresh process, to separate start-up.
#>
param([Parameter(Mandatory)] [string] $ModulePath, [int] $Runs = 7)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$root = Join-Path ([IO.Path]::GetTempPath()) "etcdsecure-bench-health-$PID"

. "$PSScriptRoot/Common.ps1"
function Measure-Median([scriptblock] $Block) { Get-Median @(1..$Runs | ForEach-Object { (Measure-Command $Block).TotalMilliseconds }) }

$lines = [Collections.Generic.List[string]]::new()
try {
    $cluster = New-EtcdCluster -Path $root -Name benchhealth -Size 3 -Force
    $auth = @{ CA = $cluster.CAPath; Certificate = $cluster.ClientCertificatePath }
    $etcdctl = @('--endpoints', $cluster.Endpoints[0], '--cacert', $cluster.CAPath, '--cert', $cluster.ClientCertificatePath, '--key', $cluster.ClientKeyPath, 'endpoint', 'health', '--cluster')
    $env:ETCDCTL_API = '3'
    $pwsh = Get-PwshCommand; $exe = $pwsh.Path; $prefix = $pwsh.Arguments
    $fresh = "Import-Module '$ModulePath'; `$null = Test-EtcdClusterHealth $($cluster.Endpoints[0]) -CA '$($cluster.CAPath)' -Certificate '$($cluster.ClientCertificatePath)' -Cluster"
    # The same in a fresh process, timed inside it: what the module costs on first use, apart from starting pwsh.
    $freshInside = "`$s = [Diagnostics.Stopwatch]::StartNew(); $fresh; `$s.Elapsed.TotalMilliseconds"
    function Measure-FirstUse([string] $Path, [string[]] $Arguments) { [double](& $Path @Arguments -NoProfile -NonInteractive -Command $freshInside | Select-Object -Last 1) }

    $startup = Measure-Median { $null = & $exe @prefix -NoProfile -NonInteractive -Command 'exit' }
    # First use is mostly JIT compiling, PowerShell's own methods among them; the released PowerShell packages ship
    # them precompiled, the dotnet tool does not. So first use is measured in both.
    $released = Get-ReadyToRunPwsh -CacheRoot (Join-Path $PSScriptRoot '../out/bench')
    $releasedArgs = $released.Arguments
    $releasedStartup = if ($released.Path) { Measure-Median { $null = & $released.Path @releasedArgs -NoProfile -NonInteractive -Command 'exit' } }
    $rows = foreach ($state in 'all members up', 'one member down') {
        if ($state -eq 'one member down') { Stop-EtcdMember benchhealth-3 }
        $null = Test-EtcdClusterHealth $cluster.Endpoints[0] @auth -Cluster
        $ours = Measure-Median { $null = Test-EtcdClusterHealth $cluster.Endpoints[0] @auth -Cluster }
        $theirs = Measure-Median { $null = & etcdctl @etcdctl 2>&1 }
        $oursFresh = Measure-Median { $null = & $exe @prefix -NoProfile -NonInteractive -Command $fresh }
        # First use with the import's TLS warm-up and without it (ETCDSECURE_TLS_WARM_UP=0), taking turns.
        # And in the ReadyToRun PowerShell, in the same turns.
        $firstUse = @{ On = [Collections.Generic.List[double]]::new(); Off = [Collections.Generic.List[double]]::new(); Released = [Collections.Generic.List[double]]::new() }
        foreach ($i in 1..$Runs) {
            $firstUse.On.Add((Measure-FirstUse $exe $prefix))
            if ($released.Path) { $firstUse.Released.Add((Measure-FirstUse $released.Path $releasedArgs)) }
            $env:ETCDSECURE_TLS_WARM_UP = '0'
            try { $firstUse.Off.Add((Measure-FirstUse $exe $prefix)) }
            finally { Remove-Item Env:ETCDSECURE_TLS_WARM_UP }
        }
        $oursFirstUse = Get-Median $firstUse.On
        $oursFirstUseCold = Get-Median $firstUse.Off
        $oursFirstUseReleased = if ($firstUse.Released.Count) { Get-Median $firstUse.Released }
        $reported = @(Test-EtcdClusterHealth $cluster.Endpoints[0] @auth -Cluster | Where-Object Healthy).Count
        [pscustomobject]@{ State = $state; Ours = $ours; Theirs = $theirs; OursFresh = $oursFresh; FirstUse = $oursFirstUse; FirstUseCold = $oursFirstUseCold; FirstUseReleased = $oursFirstUseReleased; Healthy = $reported }
    }

    $lines.Add('## Health check of a 3-member TLS cluster (wall time)')
    $lines.Add('')
    $lines.Add("Median of $Runs runs, ms. Test-EtcdClusterHealth -Cluster (MemberList, then Status, a read of 'health' and AlarmList on every member in parallel) against ``etcdctl endpoint health --cluster`` (etcd $((Get-EtcdBinary | Where-Object Name -EQ etcdctl).Version)).")
    $lines.Add('')
    $lines.Add("'fresh pwsh' is a new process, start to exit; 'first use' is Import-Module plus the check, timed inside a fresh process (its start, $([Math]::Round($startup)) ms here, left out); 'no warm-up' is the same with ETCDSECURE_TLS_WARM_UP=0; 'ReadyToRun PowerShell' is the same again in $(if ($released.Path) { "$($released.Note) (start $([Math]::Round($releasedStartup)) ms), as the released packages ship PowerShell: the dotnet tool package that runs this benchmark is IL only" } else { "no ReadyToRun PowerShell: $($released.Note)" }); all three taking turns.")
    $lines.Add('')
    $lines.Add('| cluster | Test-EtcdClusterHealth (session) | etcdctl | ratio (etcdctl / ours) | Test-EtcdClusterHealth (fresh pwsh) | first use in a fresh pwsh | first use, no warm-up | first use, ReadyToRun PowerShell | healthy members reported |')
    $lines.Add('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    foreach ($r in $rows) { $lines.Add(('| {0} | {1:N1} | {2:N1} | {3:N2} | {4:N0} | {5:N0} | {6:N0} | {7} | {8} |' -f $r.State, $r.Ours, $r.Theirs, ($r.Theirs / $r.Ours), $r.OursFresh, $r.FirstUse, $r.FirstUseCold, $(if ($null -ne $r.FirstUseReleased) { '{0:N0}' -f $r.FirstUseReleased }), $r.Healthy)) }
    $lines.Add('')
    foreach ($where in @(@{ Name = 'in this PowerShell'; Value = $rows[0].FirstUse }, @{ Name = 'in the ReadyToRun PowerShell'; Value = $rows[0].FirstUseReleased })) {
        if ($null -eq $where.Value) { continue }
        $lines.Add(('First use with all members up, {0}: {1:N0} ms (target: within 500 ms: {2})' -f $where.Name, $where.Value, $(if ($where.Value -le 500) { 'met' } else { 'NOT met' })))
        $lines.Add('')
    }
}
finally {
    try { Remove-EtcdCluster benchhealth -Confirm:$false } catch { $null = $_ }
    Remove-Item $root -Recurse -Force -ErrorAction Ignore
}
$lines
