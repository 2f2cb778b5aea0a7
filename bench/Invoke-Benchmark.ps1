#requires -Version 7.6
<#
.SYNOPSIS
    Side-by-side benchmarks of EtcdSecure; writes a Markdown report (docs/benchmarks.md).
.DESCRIPTION
    Every number is measured in this run, on this machine, and reported next to the peer it is compared
    with, so the ratios mean something even though the absolute numbers vary between machines.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [string] $OutFile = (Join-Path $PSScriptRoot '../docs/benchmarks.md'),
    [ValidateRange(3, 50)] [int] $ImportRuns = 9,
    # bench/LoadTool, built by build.ps1 bench: the load generator and TLS backend of the proxy benchmarks.
    [string] $LoadTool,
    # bench/BareRelay, built by build.ps1 bench: the least a relay in C# costs, measured beside the proxy.
    [string] $BareRelay,
    # Run only the Bench.*.ps1 sections whose names match (e.g. Proxy), and skip the import measurement.
    [string] $Only,
    # Only these parts of the sections that have parts (Bench.Proxy.ps1: Bulk, Idle, Etcd, Cold, Churn).
    [string[]] $Part
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

. "$PSScriptRoot/Common.ps1"

function Invoke-Pwsh([string] $Command) {
    $pwsh = Get-PwshCommand; $exe = $pwsh.Path; $prefix = $pwsh.Arguments
    & $exe @prefix -NoProfile -NonInteractive -Command $Command
    if ($LASTEXITCODE) { throw "pwsh exited with $LASTEXITCODE running: $Command" }
}

$stamp = "Measured $(Get-Date -Format 'yyyy-MM-dd HH:mm') on $([Environment]::ProcessorCount) cores, $([Runtime.InteropServices.RuntimeInformation]::OSDescription), PowerShell $($PSVersionTable.PSVersion)."
$report = [Collections.Generic.List[string]]::new()

if (-not $Only) {
    # --- Module import --------------------------------------------------------------------------------
    # Each sample is a fresh process; the first run only warms the disk cache and is discarded.
    Write-Host "bench: Import-Module x $ImportRuns (+1 warm-up)"
    $samples = foreach ($i in 0..$ImportRuns) {
        $ms = Invoke-Pwsh "`$sw = [Diagnostics.Stopwatch]::StartNew(); Import-Module '$ModulePath'; `$sw.Elapsed.TotalMilliseconds"
        if ($i -gt 0) { [double] ($ms | Select-Object -Last 1) }
    }
    $baseline = foreach ($i in 0..$ImportRuns) {
        # The same measurement for a module PowerShell ships, as the yardstick for "fast enough".
        $ms = Invoke-Pwsh "`$sw = [Diagnostics.Stopwatch]::StartNew(); Import-Module Microsoft.PowerShell.PSResourceGet; `$sw.Elapsed.TotalMilliseconds"
        if ($i -gt 0) { [double] ($ms | Select-Object -Last 1) }
    }
    $importMedian = Get-Median $samples
    $baselineMedian = Get-Median $baseline
    $report.Add('## Module import (fresh pwsh process, after one warm-up run)')
    $report.Add('')
    $report.Add('| module | median ms | min ms | max ms | target |')
    $report.Add('|---|---:|---:|---:|---|')
    $report.Add(('| EtcdSecure | {0:N1} | {1:N1} | {2:N1} | < 300 ms: {3} |' -f $importMedian, ($samples | Measure-Object -Minimum).Minimum, ($samples | Measure-Object -Maximum).Maximum, $(if ($importMedian -lt 300) { 'met' } else { 'NOT met' })))
    $report.Add(('| Microsoft.PowerShell.PSResourceGet (peer) | {0:N1} | {1:N1} | {2:N1} | |' -f $baselineMedian, ($baseline | Measure-Object -Minimum).Minimum, ($baseline | Measure-Object -Maximum).Maximum))
    $report.Add('')
    $report.Add(('Ratio EtcdSecure / PSResourceGet import time: {0:N2}' -f ($importMedian / $baselineMedian)))
    $report.Add('')
}

$sections = Get-ChildItem $PSScriptRoot -Filter 'Bench.*.ps1' | Sort-Object Name | Where-Object { -not $Only -or $_.BaseName -like "Bench.$Only" }
foreach ($s in $sections) {
    Write-Host "bench: $($s.BaseName)"
    $sectionArgs = @{ ModulePath = $ModulePath }
    if ((Get-Command $s.FullName).Parameters.ContainsKey('LoadTool')) { $sectionArgs.LoadTool = $LoadTool }
    if ($BareRelay -and (Get-Command $s.FullName).Parameters.ContainsKey('BareRelay')) { $sectionArgs.BareRelay = $BareRelay }
    if ($Part -and (Get-Command $s.FullName).Parameters.ContainsKey('Part')) { $sectionArgs.Part = $Part }
    foreach ($line in (& $s.FullName @sectionArgs)) { $report.Add($line) }
}

# Into the report as it is: each section's tables are replaced, the notes people wrote below them stay.
$document = if (Test-Path $OutFile) { Get-Content $OutFile } else {
    '# EtcdSecure benchmarks', '',
    'Written by `dotnet pwsh ./build.ps1 bench` (every section) or `bench/Invoke-Benchmark.ps1` with `-Only` and `-Part` (some of them). Each section says when it was measured; a new run replaces its tables and keeps the notes below them.', ''
}
$sections = @(Split-BenchSection -Lines $report -Stamp $stamp)
New-Item -ItemType Directory -Path (Split-Path $OutFile) -Force | Out-Null
Set-Content -Path $OutFile -Value (Merge-BenchReport -Document $document -Sections $sections)
Write-Host "bench: wrote $($sections.Count) sections into $OutFile"
$report
