# Dot-sourced by every test file: imports the staged module and defines the shared test helpers.
$script:ModuleManifest = if ($env:ETCDSECURE_MODULE) { $env:ETCDSECURE_MODULE } else {
    $version = (Import-PowerShellDataFile "$PSScriptRoot/../../EtcdSecure.psd1").ModuleVersion
    "$PSScriptRoot/../../out/EtcdSecure/$version/EtcdSecure.psd1"
}
Import-Module $script:ModuleManifest -Force
# Each test file keeps what it starts in a state store of its own (inherited by the pwsh processes it starts), so
# Get-EtcdMember and the cleanup in AfterAll see only this file's members, never a developer's own. Not in
# $TestDrive: Pester deletes what a Describe block wrote there when the block ends, records of running members too.
$env:ETCDSECURE_STATE_DIR = Join-Path ([IO.Path]::GetTempPath()) "etcdsecure-test-state-$([guid]::NewGuid().ToString('n'))"
. "$PSScriptRoot/../../tools/PwshCommand.ps1"

function Invoke-CleanPwsh {
    <# Runs a script in a new pwsh process (no profile) and returns everything it wrote, all streams merged. #>
    param([Parameter(Mandatory)] [string] $Command)
    $pwsh = Get-PwshCommand; $exe = $pwsh.Path; $prefix = $pwsh.Arguments
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

function Wait-TcpListening {
    <# Polls, with a bound, until something accepts TCP connections on a loopback port. #>
    param([Parameter(Mandatory)] [int] $Port, [string] $Because = "port $Port to listen")
    Wait-Until -Because $Because { try { [Net.Sockets.TcpClient]::new('127.0.0.1', $Port).Dispose(); $true } catch { $false } }
}

function Invoke-Etcdctl {
    <# Runs the real etcdctl (API v3) and returns its exit code and merged output. #>
    param([Parameter(Mandatory)] [string[]] $Arguments, [hashtable] $Environment = @{})
    $saved = @{}
    foreach ($k in @('ETCDCTL_API') + $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k) }
    try {
        $env:ETCDCTL_API = '3'
        foreach ($k in $Environment.Keys) { Set-TestEnvironment $k $Environment[$k] }
        $out = & etcdctl @Arguments 2>&1
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($out | ForEach-Object { "$_" }) -join "`n" }
    }
    finally {
        foreach ($k in $saved.Keys) { Set-TestEnvironment $k $saved[$k] }
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

function Test-ProcessRunning {
    <#
    Whether a process runs under this id. A zombie does not: a member whose starting session has exited is an orphan,
    and where PID 1 does not reap orphans (some containers) it stays a zombie after it exits.
    #>
    param([Parameter(Mandatory)] [int] $Id)
    $stat = Get-Content "/proc/$Id/stat" -Raw -ErrorAction Ignore
    [bool] $stat -and $stat.Substring($stat.LastIndexOf(')') + 2, 1) -ne 'Z'
}

function Stop-TestProcess {
    <# Stops a process this test started, by its PID, and waits (bounded) until it is gone. #>
    param($Process)
    if ($Process -and -not $Process.HasExited) {
        $Process.Kill($true)
        $null = $Process.WaitForExit(10000)
    }
}

function New-TestCluster {
    <#
    A CA, a peer/server certificate for every member, a client certificate (CN root), and three members on free
    loopback ports, started with the module. Returns what the tests need to reach the cluster.
    #>
    param([Parameter(Mandatory)] [string] $Root, [string[]] $Names = @('n1', 'n2', 'n3'))
    $ca = New-EtcdCA -Path (Join-Path $Root 'pki') -CommonName etcd-ca
    $node = $ca | New-EtcdCertificate -Profile Peer -CommonName etcd-node -Hosts localhost, 127.0.0.1
    $client = $ca | New-EtcdCertificate -Profile Client -CommonName root
    $clientUrls = [ordered]@{}; $peers = [ordered]@{}
    foreach ($n in $Names) { $clientUrls[$n] = "https://127.0.0.1:$(Get-FreeTcpPort)"; $peers[$n] = "https://127.0.0.1:$(Get-FreeTcpPort)" }
    $members = foreach ($n in $Names) {
        Start-EtcdMember $n -ClientUrl $clientUrls[$n] -PeerUrl $peers[$n] -InitialCluster $peers -ClusterToken "pester-$(Split-Path $Root -Leaf)" `
            -Certificate $node -CA $ca -DataDir (Join-Path $Root "nodes/$n")
    }
    $cluster = [pscustomobject]@{
        CA = $ca; Node = $node; Client = $client; Members = $members
        ClientUrls = $clientUrls; PeerUrls = $peers; Endpoints = @($clientUrls.Values)
    }
    Wait-Until -Timeout '00:00:30' -Because 'the cluster to elect a leader' {
        Test-EtcdClusterHealth -Endpoint $cluster.Endpoints -CA $ca -Certificate $client -Quiet -Timeout '00:00:02'
    }
    $cluster
}

function Restart-TestMember {
    <# Starts a stopped member of a New-TestCluster cluster again, rejoining with its data. #>
    param([Parameter(Mandatory)] $Cluster, [Parameter(Mandatory)] [string] $Name)
    $m = $Cluster.Members | Where-Object Name -EQ $Name
    Start-EtcdMember $Name -ClientUrl $Cluster.ClientUrls[$Name] -PeerUrl $Cluster.PeerUrls[$Name] -InitialCluster $Cluster.PeerUrls `
        -ClusterState Existing -Certificate $Cluster.Node -CA $Cluster.CA -DataDir $m.DataDir
}

function Stop-TestCluster {
    <# Stops every cluster, member and proxy this test file started, checks that none is left running, and drops its state store. #>
    $pids = @(Get-EtcdMember | ForEach-Object ProcessId)
    Get-EtcdProxy | Stop-EtcdProxy
    Get-EtcdCluster | Remove-EtcdCluster -Confirm:$false
    Get-EtcdMember | Stop-EtcdMember
    foreach ($p in $pids) { Test-ProcessRunning $p | Should -BeFalse }
    Remove-Item $env:ETCDSECURE_STATE_DIR -Recurse -Force -ErrorAction Ignore
}

function Invoke-WithEnvironment {
    <# Runs a script block with environment variables set (a $null value unsets one), restoring them afterwards. #>
    param([Parameter(Mandatory)] [hashtable] $Environment, [Parameter(Mandatory)] [scriptblock] $ScriptBlock)
    $saved = @{}
    foreach ($k in $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k) }
    try {
        foreach ($k in $Environment.Keys) { Set-TestEnvironment $k $Environment[$k] }
        & $ScriptBlock
    }
    finally {
        foreach ($k in $saved.Keys) { Set-TestEnvironment $k $saved[$k] }
    }
}

function Set-TestEnvironment([string] $Name, $Value) {
    # PowerShell passes $null to a .NET string parameter as "", which on Unix sets the variable to empty
    # instead of removing it; an empty ETCDCTL_* still conflicts with etcdctl's flags.
    if ($null -eq $Value) { Remove-Item "env:$Name" -ErrorAction Ignore } else { Set-Item "env:$Name" $Value }
}

function Get-ServedCertificate {
    <# The certificate a TLS server on loopback presents, whatever it then thinks of this client. #>
    param([Parameter(Mandatory)] [int] $Port)
    $tcp = [Net.Sockets.TcpClient]::new('127.0.0.1', $Port)
    $seen = [System.Collections.Generic.List[object]]::new()
    try {
        $ssl = [Net.Security.SslStream]::new($tcp.GetStream(), $false, { param($s, $cert) $seen.Add([Security.Cryptography.X509Certificates.X509Certificate2]::new($cert)); $true }.GetNewClosure())
        try { $ssl.AuthenticateAsClient('127.0.0.1') } catch { $null = $_ }
    }
    finally { $tcp.Dispose() }
    $seen[0]
}

function Invoke-EtcdctlThrough {
    <#
    etcdctl against one endpoint (a proxy's), with the client certificate given or none. A refused client gets no
    answer at all: etcdctl tries again until its command timeout, so a short one there (-Refused).
    #>
    param(
        [Parameter(Mandatory)] [string] $Endpoint,
        [Parameter(Mandatory)] [string] $CAPath,
        $Certificate,
        [Parameter(Mandatory)] [string[]] $Arguments,
        [switch] $Refused
    )
    $a = @('--endpoints', $Endpoint, '--cacert', $CAPath, '--dial-timeout', '3s', '--command-timeout', $(if ($Refused) { '2s' } else { '5s' }))
    if ($Certificate) { $a += @('--cert', $Certificate.Path, '--key', $Certificate.KeyPath) }
    Invoke-Etcdctl ($a + $Arguments)
}

function Read-UntilSeen {
    <# Reads a stream until a text has gone by Count times, or the stream ends; returns how many times it went by. #>
    param(
        [Parameter(Mandatory)] [IO.Stream] $Stream,
        [Parameter(Mandatory)] [string] $Text,
        [Parameter(Mandatory)] [int] $Count
    )
    $chunk = [byte[]]::new(64KB); $seen = 0; $tail = ''
    while ($seen -lt $Count) {
        $n = $Stream.Read($chunk, 0, $chunk.Length)
        if ($n -le 0) { break }
        $all = $tail + [Text.Encoding]::ASCII.GetString($chunk, 0, $n)
        $seen += [regex]::Matches($all, [regex]::Escape($Text)).Count
        # Kept for a match the next read completes: shorter than the text, so no match is counted twice.
        $tail = $all.Substring([Math]::Max(0, $all.Length - ($Text.Length - 1)))
    }
    $seen
}

function Connect-TlsClient {
    <#
    A raw TLS client on loopback with a client certificate, speaking HTTP/1.1 (ALPN), that trusts only the given CA:
    returns Tcp and Ssl, for a test to write and read as it likes (or to stay silent).
    #>
    param(
        [Parameter(Mandatory)] [int] $Port,
        [Parameter(Mandatory)] [Security.Cryptography.X509Certificates.X509Certificate2] $Certificate,
        [Parameter(Mandatory)] [string] $CAPath
    )
    $tcp = [Net.Sockets.TcpClient]::new('127.0.0.1', $Port)
    $ssl = [Net.Security.SslStream]::new($tcp.GetStream(), $false)
    $o = [Net.Security.SslClientAuthenticationOptions]::new()
    $o.TargetHost = 'localhost'
    $o.ClientCertificates = [Security.Cryptography.X509Certificates.X509CertificateCollection]::new(@($Certificate))
    $o.ApplicationProtocols = [Collections.Generic.List[Net.Security.SslApplicationProtocol]]@([Net.Security.SslApplicationProtocol]::Http11)
    $o.CertificateChainPolicy = [Security.Cryptography.X509Certificates.X509ChainPolicy]::new()
    $o.CertificateChainPolicy.TrustMode = 'CustomRootTrust'
    $o.CertificateChainPolicy.RevocationMode = 'NoCheck'
    $null = $o.CertificateChainPolicy.CustomTrustStore.Add([Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPem((Get-Content $CAPath -Raw)))
    $null = $ssl.AuthenticateAsClientAsync($o).GetAwaiter().GetResult()
    $ssl.ReadTimeout = 10000
    [pscustomobject]@{ Tcp = $tcp; Ssl = $ssl }
}
