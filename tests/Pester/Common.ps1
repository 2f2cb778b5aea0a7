# Dot-sourced by every test file: imports the staged module and defines the shared test helpers.
$script:ModuleManifest = if ($env:ETCDSECURE_MODULE) { $env:ETCDSECURE_MODULE } else {
    $version = (Import-PowerShellDataFile "$PSScriptRoot/../../EtcdSecure.psd1").ModuleVersion
    "$PSScriptRoot/../../out/EtcdSecure/$version/EtcdSecure.psd1"
}
Import-Module $script:ModuleManifest -Force

function Invoke-CleanPwsh {
    <# Runs a script in a new pwsh process (no profile) and returns everything it wrote, all streams merged. #>
    param([Parameter(Mandatory)] [string] $Command)
    # The tool-installed pwsh runs as "dotnet pwsh.dll"; a regular install runs as pwsh itself.
    $exe = [Environment]::ProcessPath
    [string[]] $prefix = if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { @(Join-Path $PSHOME 'pwsh.dll') } else { @() }
    $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($Command))
    $output = & $exe @prefix -NoProfile -NonInteractive -EncodedCommand $encoded 2>&1
    [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = @($output | ForEach-Object { "$_" }) }
}

function Get-ThrownError {
    <# Runs a script block that must throw and returns the ErrorRecord, so tests can assert id, category and target. #>
    param([Parameter(Mandatory)] [scriptblock] $ScriptBlock)
    try { & $ScriptBlock; $null = $PSCmdlet } catch { return $_ }
    throw 'Expected the script block to throw, and it did not.'
}

function Wait-Until {
    <# Polls a condition with a bound instead of sleeping a fixed time. #>
    param([Parameter(Mandatory)] [scriptblock] $Condition, [TimeSpan] $Timeout = '00:00:20', [string] $Because = 'the condition')
    $deadline = [DateTime]::UtcNow + $Timeout
    while ([DateTime]::UtcNow -lt $deadline) {
        if (& $Condition) { return }
        Start-Sleep -Milliseconds 100
    }
    throw "Timed out after $Timeout waiting for $Because."
}

function Get-FreeTcpPort {
    <# An ephemeral loopback port the OS has just handed out, so parallel runs never collide on fixed ports. #>
    $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function Invoke-Etcdctl {
    <# Runs the real etcdctl (API v3) and returns its exit code and merged output. #>
    param([Parameter(Mandatory)] [string[]] $Arguments, [hashtable] $Environment = @{})
    $saved = @{}
    foreach ($k in @('ETCDCTL_API') + $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k) }
    try {
        $env:ETCDCTL_API = '3'
        foreach ($k in $Environment.Keys) { [Environment]::SetEnvironmentVariable($k, $Environment[$k]) }
        $out = & etcdctl @Arguments 2>&1
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($out | ForEach-Object { "$_" }) -join "`n" }
    }
    finally {
        foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
    }
}

function Start-RawEtcd {
    <#
    Starts one etcd member by hand (not through the module), with client certificate auth on, for tests that
    check certificates against the real thing independently of Start-EtcdMember. Returns the process and URL.
    #>
    param([Parameter(Mandatory)] $Server, [Parameter(Mandatory)] $CA, [Parameter(Mandatory)] [string] $DataDir)
    $client = Get-FreeTcpPort
    $peer = Get-FreeTcpPort
    $log = "$DataDir.log"
    $args = @(
        '--name', 'raw', '--data-dir', $DataDir,
        '--listen-client-urls', "https://127.0.0.1:$client", '--advertise-client-urls', "https://127.0.0.1:$client",
        '--listen-peer-urls', "http://127.0.0.1:$peer", '--initial-advertise-peer-urls', "http://127.0.0.1:$peer",
        '--initial-cluster', "raw=http://127.0.0.1:$peer",
        '--cert-file', $Server.Path, '--key-file', $Server.KeyPath, '--trusted-ca-file', $CA.Path, '--client-cert-auth')
    $p = Start-Process etcd -ArgumentList $args -RedirectStandardError $log -RedirectStandardOutput "$log.out" -PassThru
    [pscustomobject]@{ Process = $p; Url = "https://127.0.0.1:$client"; Log = $log }
}

function Stop-TestProcess {
    <# Stops a process this test started, by its PID, and waits (bounded) until it is gone. #>
    param($Process)
    if ($Process -and -not $Process.HasExited) {
        $Process.Kill($true)
        $null = $Process.WaitForExit(10000)
    }
}
