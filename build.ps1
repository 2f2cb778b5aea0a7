#requires -Version 7.6
<#
.SYNOPSIS
    Builds, stages, tests, demonstrates, benchmarks and packages the EtcdSecure module.
.DESCRIPTION
    Tasks (several may be given, in order):
      bootstrap  Pester into .tools/, etcd + etcdctl (Debian etcd-server/etcd-client) when missing.
      build      Compiles and stages out/EtcdSecure/<version>/ (manifest, cmdlet dll, Dependencies/, formats, help).
      test       build + bootstrap, then Pester on the staged module; prints "N passed, N failed" last.
      demo       build + bootstrap, then examples/secure-cluster-behind-proxy.ps1 in a temporary folder.
      bench      build + bootstrap, then bench/Invoke-Benchmark.ps1 (its tables into docs/benchmarks.md; notes kept).
      package    build, then out/packages/EtcdSecure.<version>.nupkg.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 test
.EXAMPLE
    dotnet pwsh ./build.ps1 test -Tag Unit
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0, ValueFromRemainingArguments)]
    [ValidateSet('bootstrap', 'build', 'test', 'demo', 'bench', 'package')]
    [string[]] $Task = @('build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Pester tags to run or leave out, e.g. -Tag Unit for a quick loop without etcd.
    [string[]] $Tag,
    [string[]] $ExcludeTag,

    # Test files (or folders) to run instead of tests/Pester.
    [string[]] $TestPath
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Every pwsh process sends usage telemetry to Microsoft unless told not to. The processes this script starts (tests,
# the demo's and the bench's proxies) keep their traffic on loopback, and a long-running proxy would otherwise spend
# a tenth of its idle CPU serializing telemetry (perf).
$env:POWERSHELL_TELEMETRY_OPTOUT = '1'

$Root = $PSScriptRoot
. (Join-Path $Root 'tools/PwshCommand.ps1')
$PesterVersion = '5.7.1'
$ToolsDir = Join-Path $Root '.tools'
$PesterManifest = Join-Path $ToolsDir "packages/pester/$PesterVersion/tools/Pester.psd1"
$ModuleVersion = (Import-PowerShellDataFile (Join-Path $Root 'EtcdSecure.psd1')).ModuleVersion
$StageDir = Join-Path $Root "out/EtcdSecure/$ModuleVersion"
$StagedManifest = Join-Path $StageDir 'EtcdSecure.psd1'

function Invoke-Native {
    # Native failures do not stop a script on their own; every call here must.
    # A plain function on purpose: an advanced one would bind switches such as -v to its common parameters.
    $FilePath, $Arguments = $args
    & $FilePath @Arguments
    if ($LASTEXITCODE -ne 0) { throw "'$FilePath $($Arguments -join ' ')' failed with exit code $LASTEXITCODE." }
}

function Install-DebianPackage {
    param([string[]] $Package)
    if (-not $IsLinux -or -not (Get-Command apt-get -ErrorAction Ignore)) {
        throw "Install $($Package -join ', ') (or the equivalent for this system) and run again: this bootstrap can only install them with apt-get on Debian or Ubuntu."
    }
    $prefix = @()
    if ((id -u) -ne '0') {
        if (-not (Get-Command sudo -ErrorAction Ignore)) { throw "Installing $($Package -join ', ') needs root: run as root, or install them yourself." }
        $prefix = @('sudo')
    }
    # Debian's etcd-server would start a system etcd on 2379 where services run; keep installs inert.
    $policy = '/usr/sbin/policy-rc.d'
    $madePolicy = $false
    if (-not (Test-Path $policy) -and $prefix.Count -eq 0) {
        Set-Content -Path $policy -Value "#!/bin/sh`nexit 101"
        chmod 755 $policy
        $madePolicy = $true
    }
    try {
        $env:DEBIAN_FRONTEND = 'noninteractive'
        Write-Host "bootstrap: apt-get install $($Package -join ' ')"
        Invoke-Native @prefix apt-get -qq update
        Invoke-Native @prefix apt-get -qq install -y --no-install-recommends @Package
    }
    finally {
        if ($madePolicy) { Remove-Item $policy -Force }
    }
}

function Invoke-Bootstrap {
    if (-not (Test-Path $PesterManifest)) {
        Write-Host "bootstrap: Pester $PesterVersion into .tools/"
        Invoke-Native dotnet restore (Join-Path $Root 'tools/tools.proj') --packages (Join-Path $ToolsDir 'packages') --nologo --verbosity quiet
    }
    $missing = @()
    if (-not (Get-Command etcd -CommandType Application -ErrorAction Ignore)) { $missing += 'etcd-server' }
    if (-not (Get-Command etcdctl -CommandType Application -ErrorAction Ignore)) { $missing += 'etcd-client' }
    if (-not (Get-Command openssl -CommandType Application -ErrorAction Ignore)) { $missing += 'openssl' }
    # curl is the plain HTTPS (HTTP/1.1) client the proxy tests use.
    if (-not (Get-Command curl -CommandType Application -ErrorAction Ignore)) { $missing += 'curl' }
    # cfssl is the reference the PKI is tested against (interop both ways).
    if (-not (Get-Command cfssl -CommandType Application -ErrorAction Ignore)) { $missing += 'golang-cfssl' }
    if ($missing) { Install-DebianPackage $missing }
    # grpc-js (the etcd3 package) is the second, independent etcd client stack the proxy's burst tests and the
    # bench drive; it needs node and npm, which this bootstrap does not install: without them those tests are skipped.
    $nodeModules = Join-Path $ToolsDir 'node/node_modules/etcd3'
    if (-not (Test-Path $nodeModules) -and (Get-Command npm -CommandType Application -ErrorAction Ignore)) {
        Write-Host 'bootstrap: grpc-js etcd client (npm etcd3) into .tools/node'
        $nodeDir = New-Item -ItemType Directory (Join-Path $ToolsDir 'node') -Force
        Copy-Item (Join-Path $Root 'tests/node/package.json') $nodeDir
        Invoke-Native npm install --prefix $nodeDir --no-audit --no-fund --loglevel error
    }
}

function Invoke-Build {
    $obj = Join-Path $Root 'out/obj'
    Remove-Item $obj, $StageDir -Recurse -Force -ErrorAction Ignore
    # Published ReadyToRun for this machine's platform: every assembly the module ships carries native code beside
    # its IL, so a fresh session JITs about half as many methods on its first health check. On another platform the
    # runtime ignores that code and JITs the IL as it would anyway. The engine's packages have Publish="true",
    # without which publish leaves PrivateAssets=all packages out.
    $rid = [Runtime.InteropServices.RuntimeInformation]::RuntimeIdentifier
    $publish = @('-c', $Configuration, '-r', $rid, '--self-contained', 'false', '-p:PublishReadyToRun=true', '--nologo', '--verbosity', 'quiet')
    Invoke-Native dotnet publish (Join-Path $Root "src/EtcdSecure.Engine/EtcdSecure.Engine.csproj") @publish -o (Join-Path $obj 'engine')
    Invoke-Native dotnet publish (Join-Path $Root "src/EtcdSecure.PowerShell/EtcdSecure.PowerShell.csproj") @publish -o (Join-Path $obj 'cmdlets')

    $deps = New-Item -ItemType Directory -Path (Join-Path $StageDir 'Dependencies') -Force
    Copy-Item (Join-Path $Root 'EtcdSecure.psd1') $StageDir
    Copy-Item (Join-Path $obj 'cmdlets/EtcdSecure.PowerShell.dll'), (Join-Path $obj 'cmdlets/EtcdSecure.Format.ps1xml') $StageDir
    # Everything the engine needs, and nothing PowerShell itself provides.
    Get-ChildItem (Join-Path $obj 'engine') -Filter *.dll |
        Where-Object Name -NotLike 'System.Management.Automation*' |
        Copy-Item -Destination $deps
    # Help is generated from the doc comments, in a separate process that imports the staged module to read
    # each cmdlet's parameter sets exactly as PowerShell sees them; the module is complete by then, since reading a
    # cmdlet's types may load the engine from Dependencies/.
    $helpFile = Join-Path $StageDir 'en-US/EtcdSecure.PowerShell.dll-Help.xml'
    New-Item -ItemType Directory (Join-Path $StageDir 'en-US') -Force | Out-Null
    Copy-Item (Join-Path $Root 'src/EtcdSecure.PowerShell/en-US/about_EtcdSecure.help.txt') (Join-Path $StageDir 'en-US')
    $pwsh = Get-PwshCommand
    $prefix = $pwsh.Arguments
    Invoke-Native $pwsh.Path @prefix -NoProfile -NonInteractive -File (Join-Path $Root 'tools/New-MamlHelp.ps1') -ModuleManifest $StagedManifest -DocumentationXml (Join-Path $obj 'cmdlets/EtcdSecure.PowerShell.xml') -OutFile $helpFile
    Write-Host "build: staged $StageDir"
}

function Invoke-Test {
    Import-Module $PesterManifest -Force
    $config = New-PesterConfiguration
    $config.Run.Path = if ($TestPath) { $TestPath } else { Join-Path $Root 'tests/Pester' }
    $config.Run.PassThru = $true
    $config.Output.Verbosity = 'Detailed'
    $config.TestResult.Enabled = $true
    $config.TestResult.OutputPath = Join-Path $Root 'out/testResults.xml'
    if ($Tag) { $config.Filter.Tag = $Tag }
    if ($ExcludeTag) { $config.Filter.ExcludeTag = $ExcludeTag }
    $env:ETCDSECURE_MODULE = $StagedManifest
    $result = Invoke-Pester -Configuration $config
    # Failed setup blocks and containers are failures too, though Pester counts them apart from tests.
    $failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    if ($result.TotalCount -eq 0) { $failed++ ; Write-Host 'test: no test ran' }
    # Repeated at the end because a CI log is often read from its tail: what failed, and the first lines of why.
    $why = @(
        foreach ($c in $result.Failed) { '{0}: {1}' -f $c.ExpandedPath, "$($c.ErrorRecord | Select-Object -First 1)" }
        foreach ($c in $result.FailedBlocks) { '{0} (setup): {1}' -f $c.ExpandedPath, "$($c.ErrorRecord | Select-Object -First 1)" }
        foreach ($c in $result.FailedContainers) { '{0} (file): {1}' -f $c.Item, "$($c.ErrorRecord | Select-Object -First 1)" })
    if ($why) {
        Write-Host 'test: what failed'
        foreach ($line in $why | Select-Object -First 30) { Write-Host ('  ' + (($line -split "`n" | Select-Object -First 4) -join ' | ')) }
    }
    Write-Host ("{0} passed, {1} failed, {2} skipped" -f $result.PassedCount, $failed, $result.SkippedCount)
    if ($failed -gt 0) { exit 1 }
}

function Invoke-Demo {
    $path = Join-Path ([IO.Path]::GetTempPath()) "etcdsecure-demo-$PID"
    # The example prints what it does and a summary of what runs; its returned objects are for callers and tests.
    $null = & (Join-Path $Root 'examples/secure-cluster-behind-proxy.ps1') -Path $path -ModulePath $StagedManifest -Cleanup
}

function Invoke-Bench {
    # The peers the proxy is measured against, and the load generator that drives them all the same way.
    $missing = @()
    if (-not (Get-Command haproxy -CommandType Application -ErrorAction Ignore)) { $missing += 'haproxy' }
    if (-not (Get-Command nginx -CommandType Application -ErrorAction Ignore)) { $missing += 'nginx' }
    if (-not (Test-Path /usr/lib/nginx/modules/ngx_stream_module.so)) { $missing += 'libnginx-mod-stream' }
    if ($missing) { Install-DebianPackage $missing }
    $loadTool = Join-Path $Root 'out/bench/LoadTool'
    Invoke-Native dotnet build (Join-Path $Root 'bench/LoadTool/LoadTool.csproj') -c Release -o $loadTool --nologo --verbosity quiet
    $bareRelay = Join-Path $Root 'out/bench/BareRelay'
    Invoke-Native dotnet build (Join-Path $Root 'bench/BareRelay/BareRelay.csproj') -c Release -o $bareRelay --nologo --verbosity quiet
    & (Join-Path $Root 'bench/Invoke-Benchmark.ps1') -ModulePath $StagedManifest -OutFile (Join-Path $Root 'docs/benchmarks.md') -LoadTool (Join-Path $loadTool 'LoadTool.dll') -BareRelay (Join-Path $bareRelay 'BareRelay.dll')
}

function Invoke-Package {
    $dest = New-Item -ItemType Directory -Path (Join-Path $Root 'out/packages') -Force
    Remove-Item (Join-Path $dest "EtcdSecure.$ModuleVersion.nupkg") -ErrorAction Ignore
    # Compress-PSResource builds the same .nupkg Publish-PSResource would, without registering a repository.
    Compress-PSResource -Path $StageDir -DestinationPath $dest
    Get-Item (Join-Path $dest "EtcdSecure.$ModuleVersion.nupkg")
}

$done = @{}
function Step([string] $Name, [scriptblock] $Action) {
    if (-not $done[$Name]) { & $Action; $done[$Name] = $true }
}

foreach ($t in $Task) {
    switch ($t) {
        'bootstrap' { Step bootstrap { Invoke-Bootstrap } }
        'build' { Step build { Invoke-Build } }
        'test' { Step bootstrap { Invoke-Bootstrap }; Step build { Invoke-Build }; Invoke-Test }
        'demo' { Step bootstrap { Invoke-Bootstrap }; Step build { Invoke-Build }; Invoke-Demo }
        'bench' { Step bootstrap { Invoke-Bootstrap }; Step build { Invoke-Build }; Invoke-Bench }
        'package' { Step build { Invoke-Build }; Invoke-Package }
    }
}
