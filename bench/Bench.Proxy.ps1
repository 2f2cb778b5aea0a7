#requires -Version 7.6
<#
.SYNOPSIS
    The proxy against its peers, all in this run on loopback with mutual TLS on both sides:
    bulk throughput (EtcdSecure, HAProxy tcp mode, nginx stream, direct), etcd request rate and latency
    (EtcdSecure, HAProxy, etcd grpc-proxy, direct), memory per idle connection, CPU at rest and per new client, and
    a burst of clients from one host (EtcdSecure, HAProxy).
.DESCRIPTION
    Every relay runs in its own process, so the machine's two cores are shared the same way for each: the client
    (LoadTool), the relay, and the backend (LoadTool serve for bytes, a 3-member etcd cluster for requests).
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $LoadTool,
    # bench/BareRelay.dll: when given, the least a relay written in C# costs is measured beside the proxy (Bulk, Etcd).
    [string] $BareRelay,
    [long] $BulkBytes = 512MB,
    [int] $Runs = 3,
    [double] $EtcdSeconds = 5,
    # Load on every path before its measured rounds: connections, caches and the kernel's buffers settle, and every
    # path gets the same, peers included. The proxy runs as a service runs it ($ServiceRuntime), so it is not
    # JIT-compiling its hot path by then (with the runtime's defaults it would be for 10 to 25 s: -Part Cold).
    [double] $EtcdWarmUpSeconds = 10,
    [int] $BulkWarmUps = 3,
    [int] $IdleConnections = 9000,
    # Seconds of load on a freshly started proxy, reported second by second.
    [int] $ColdSeconds = 15,
    # Clients that each connect, make one Range and leave, per relay and round; and seconds per window at rest.
    [int] $ChurnClients = 2000,
    [int] $RestSeconds = 10,
    # Which measurements to run (all by default); a subset is handy while working on the relay.
    [ValidateSet('Bulk', 'Idle', 'Etcd', 'Cold', 'Churn', 'Burst')] [string[]] $Part = @('Bulk', 'Idle', 'Etcd', 'Cold', 'Churn', 'Burst'),
    # Rounds of each burst per relay (the median of their last answers is reported).
    [int] $BurstRuns = 3
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$root = Join-Path ([IO.Path]::GetTempPath()) "etcdsecure-bench-proxy-$PID"
$started = [Collections.Generic.List[Diagnostics.Process]]::new()
$logs = @{}

function Get-Port {
    $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0); $l.Start()
    try { $l.LocalEndpoint.Port } finally { $l.Stop() }
}

function Start-Bg([string] $File, [string[]] $Arguments, [string] $Log, [hashtable] $Environment = @{}) {
    $psi = [Diagnostics.ProcessStartInfo]::new($File)
    foreach ($a in $Arguments) { $psi.ArgumentList.Add($a) }
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = [string]$Environment[$k] }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $p = [Diagnostics.Process]::Start($psi)
    # Drain both pipes into the log so a chatty process never blocks on a full pipe.
    $null = $p.StandardOutput.BaseStream.CopyToAsync([IO.File]::Create("$Log.out"))
    $null = $p.StandardError.BaseStream.CopyToAsync([IO.File]::Create("$Log.err"))
    $started.Add($p)
    $script:logs[$p.Id] = $Log
    $p
}

function Wait-Tls([int] $Port, [string] $What) {
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while ([DateTime]::UtcNow -lt $deadline) {
        try { $t = [Net.Sockets.TcpClient]::new('127.0.0.1', $Port); $t.Dispose(); return } catch { Start-Sleep -Milliseconds 100 }
    }
    $tail = foreach ($p in $started) { if ($p.HasExited -and $script:logs[$p.Id]) { "exited $($p.ExitCode): " + ((Get-Content "$($script:logs[$p.Id]).err", "$($script:logs[$p.Id]).out" -ErrorAction Ignore | Select-Object -Last 8) -join ' | ') } }
    throw "$What did not listen on $Port within 30 s. $($tail -join '; ')"
}

function Invoke-Load([string[]] $Arguments) {
    $out = & dotnet $LoadTool @Arguments $script:auth
    if ($LASTEXITCODE) { throw "LoadTool $($Arguments -join ' ') failed ($LASTEXITCODE): $out" }
    $out | Select-Object -Last 1 | ConvertFrom-Json
}

function Start-LoadTool([string[]] $Arguments, [string[]] $Auth = $script:auth) {
    # LoadTool in the background, its output to read line by line as it comes; stopped at the end if still running.
    $psi = [Diagnostics.ProcessStartInfo]::new('dotnet')
    foreach ($a in @($LoadTool) + $Arguments + $Auth) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true
    $p = [Diagnostics.Process]::Start($psi)
    $started.Add($p)
    $p
}

. "$PSScriptRoot/Common.ps1"

function Get-Rss([int[]] $ProcessIds) {
    # Resident memory of a relay, all its processes together (nginx runs a master and workers).
    ($ProcessIds | ForEach-Object { (Get-Content "/proc/$_/status" | Where-Object { $_ -match '^VmRSS:' }) -replace '\D', '' } | Measure-Object -Sum).Sum * 1KB
}

function Get-CpuSeconds([int[]] $ProcessIds) {
    # User + system time of a relay, all its processes together, from /proc (clock ticks of 1/100 s).
    ($ProcessIds | ForEach-Object { $f = ((Get-Content "/proc/$_/stat" -Raw) -replace '^.*\) ', '') -split ' '; [double]$f[11] + [double]$f[12] } | Measure-Object -Sum).Sum / 100
}

function Measure-IdleMemory([int[]] $ProcessIds, [string] $Mode, [int] $Port, [string] $Name, [int] $Count = $IdleConnections) {
    # Growth of a relay's resident memory while LoadTool holds $Count idle clients through it, per client.
    $before = Get-Rss $ProcessIds
    $hold = Join-Path $root "hold-$($Name -replace '\W')"
    Write-Host "bench: $Count idle $Mode clients through $Name"
    $holder = Start-LoadTool @($Mode, '--target', "127.0.0.1:$Port", '--count', $Count, '--hold-file', $hold)
    $ready = $holder.StandardOutput.ReadLine()
    Start-Sleep -Seconds 2 # let allocations settle before reading RSS
    $after = Get-Rss $ProcessIds
    Set-Content $hold 'done'
    $null = $holder.WaitForExit(60000)
    [pscustomobject]@{ Ready = $ready; PerConnection = ($after - $before) / $Count; Before = $before; After = $after }
}

function Add-IdleTable($Idle) {
    $lines.Add('| relay | RSS before MiB | RSS with connections MiB | KiB per connection | client saw |')
    $lines.Add('|---|---:|---:|---:|---|')
    foreach ($k in $Idle.Keys) { $i = $Idle[$k]; $lines.Add(('| {0} | {1:N1} | {2:N1} | {3:N1} | {4} |' -f $k, ($i.Before / 1MB), ($i.After / 1MB), ($i.PerConnection / 1KB), $i.Ready)) }
}

# The runtime settings that a detached proxy and Export-EtcdServiceUnit's unit run the proxy with: every method
# compiled once, fully optimized. The measurements of steady state run the proxy as a service runs it; the cold
# proxy's measurement (-RuntimeDefaults) is the one that shows what they change.
$ServiceRuntime = @{ DOTNET_TieredCompilation = '0'; DOTNET_ReadyToRun = '0' }

function Start-OurProxy([int] $Port, [string[]] $Endpoints, [string] $Name, [string] $UpstreamCertificate = $client.Path, [string] $UpstreamCA = $ca.Path, [hashtable] $Environment = @{}, [switch] $RuntimeDefaults, [string] $IdentityPath) {
    # In its own process, in the foreground (-Wait), as a service would run it, with the default caps: every bench
    # client comes from 127.0.0.1, and a burst of them from one address gets in with those (docs/proxy.md).
    $pwsh = Get-PwshCommand; $exe = $pwsh.Path; $prefix = $pwsh.Arguments
    $identity = if ($IdentityPath) { "-IdentityPath '$IdentityPath'" } else { '-SingleIdentity' }
    $cmd = "Import-Module '$ModulePath'; Start-EtcdProxy -Wait -Name $Name -Listen https://127.0.0.1:$Port -Endpoint $($Endpoints -join ',') -Certificate '$($relay.Path)' -ClientCA '$($ca.Path)' -UpstreamCertificate '$UpstreamCertificate' $identity -UpstreamCA '$UpstreamCA'"
    $runtime = if ($RuntimeDefaults) { @{} } else { $ServiceRuntime }
    $p = Start-Bg $exe ($prefix + @('-NoProfile', '-Command', $cmd)) (Join-Path $root "$Name") ($runtime + $Environment)
    Wait-Tls $Port "EtcdSecure proxy $Name"
    $p
}

# The same proxy on .NET's own socket engine instead of the relay's epoll loops, with the engine's continuations run
# inline on its epoll threads (one per core, as the loops): the comparison that decides whether the loops stay.
$InlineName = 'EtcdSecure, .NET sockets inline'
$PerClientName = 'EtcdSecure, identity per client'
function Start-OurInlineProxy([int] $Port, [string[]] $Endpoints, [string] $Name, [string] $UpstreamCertificate = $client.Path, [string] $UpstreamCA = $ca.Path) {
    Start-OurProxy $Port $Endpoints $Name $UpstreamCertificate $UpstreamCA -Environment @{
        ETCDSECURE_PROXY_EVENT_LOOP = '0'; DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS = '1'; DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT = [Environment]::ProcessorCount }
}

# Not a product: a relay with nothing but OpenSSL and one epoll loop per core, every record moved on the loop thread
# straight from one SSL* to the other (memory BIOs, the relay's own recv and send), no tasks, streams or SslStream.
# What the relay's design could cost at least in C#, beside what the proxy costs.
$FloorName = 'C# floor (bench/BareRelay)'
if ($BareRelay -and -not ($IsLinux -and [Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture -eq 'X64')) {
    Write-Host 'bench: no C# floor: bench/BareRelay runs on Linux x64 only'
    $BareRelay = $null
}
$FloorDescription = "'$FloorName' is not a product and not a peer: a relay of about 300 lines with OpenSSL and one epoll loop per core and nothing else, each record moved on the loop thread from one SSL* straight to the other (memory BIOs, its own recv and send), no tasks, streams or SslStream, JIT-compiled fully optimized (tiered compilation off). It checks client certificates against the CA and the member's certificate and address, and has none of the proxy's caps, probes, reloads or half-close. It shows what a relay of the proxy's design costs at least in C# on this machine."
function Start-BareRelay([int] $Port, [string[]] $Members, [string] $Name, [string] $UpstreamCertificate = $client.Path, [string] $UpstreamKey = $client.KeyPath, [string] $UpstreamCA = $ca.Path) {
    $p = Start-Bg dotnet @($BareRelay, '--listen', $Port, '--members', ($Members -join ','), '--cert', $relay.Path, '--key', $relay.KeyPath, '--ca', $ca.Path,
        '--upstream-cert', $UpstreamCertificate, '--upstream-key', $UpstreamKey, '--upstream-ca', $UpstreamCA, '--bio', 'mem') (Join-Path $root $Name)
    Wait-Tls $Port "BareRelay $Name"
    $p
}

function Start-HAProxy([int] $Port, [int[]] $Backends, [string] $Name, [switch] $H2, [int] $MaxConn = 9500, [string] $ServerCA = $ca.Path, [string] $ServerPem = $clientPem) {
    # TCP mode, TLS on both sides, client certificates required from clients and presented to the servers.
    $alpn = if ($H2) { ' alpn h2,http/1.1' } else { '' }
    $servers = for ($i = 0; $i -lt $Backends.Count; $i++) {
        "  server s$i 127.0.0.1:$($Backends[$i]) ssl verify required ca-file $ServerCA crt $ServerPem sni str(localhost)$(if ($H2) { ' alpn h2' }) check check-ssl inter 500"
    }
    $cfg = @"
global
  maxconn $MaxConn
  tune.ssl.default-dh-param 2048
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend fe
  bind 127.0.0.1:$Port ssl crt $relayPem ca-file $($ca.Path) verify required$alpn
  default_backend be
backend be
  balance leastconn
$($servers -join "`n")
"@
    $file = Join-Path $root "$Name.cfg"
    Set-Content $file $cfg
    $p = Start-Bg haproxy @('-db', '-f', $file) (Join-Path $root $Name)
    Wait-Tls $Port "HAProxy $Name"
    $p
}

function Start-Nginx([int] $Port, [int] $Backend) {
    $dir = New-Item -ItemType Directory (Join-Path $root 'nginx') -Force
    $cfg = @"
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes auto;
worker_rlimit_nofile 19000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 19000; }
stream {
  server {
    listen 127.0.0.1:$Port ssl;
    ssl_certificate $($relay.Path);
    ssl_certificate_key $($relay.KeyPath);
    ssl_client_certificate $($ca.Path);
    ssl_verify_client on;
    proxy_pass 127.0.0.1:$Backend;
    proxy_ssl on;
    proxy_ssl_certificate $($client.Path);
    proxy_ssl_certificate_key $($client.KeyPath);
    proxy_ssl_trusted_certificate $($ca.Path);
    proxy_ssl_verify on;
    proxy_ssl_name localhost;
    proxy_ssl_server_name on;
  }
}
"@
    Set-Content (Join-Path $dir 'nginx.conf') $cfg
    $p = Start-Bg nginx @('-p', "$dir", '-c', (Join-Path $dir 'nginx.conf')) (Join-Path $root 'nginx')
    Wait-Tls $Port 'nginx'
    $p
}

function Get-NginxPids([Diagnostics.Process] $Master) {
    @($Master.Id) + @(Get-ChildItem /proc -Directory | Where-Object { $_.Name -match '^\d+$' } | Where-Object {
            (Get-Content "/proc/$($_.Name)/stat" -ErrorAction Ignore) -match "^\d+ \([^)]*\) \S $($Master.Id) "
        } | ForEach-Object { [int] $_.Name })
}

$lines = [Collections.Generic.List[string]]::new()
try {
    New-Item -ItemType Directory $root -Force | Out-Null
    Write-Host 'bench: proxy PKI'
    $ca = New-EtcdCA -Path (Join-Path $root 'pki') -CommonName bench-ca
    $relay = $ca | New-EtcdCertificate -Profile Server -CommonName relay -Hosts localhost, 127.0.0.1
    $client = $ca | New-EtcdCertificate -Profile Peer -CommonName client -Hosts localhost, 127.0.0.1
    $relayPem = Join-Path $root 'relay-combined.pem'; Set-Content $relayPem ((Get-Content $relay.Path -Raw) + (Get-Content $relay.KeyPath -Raw))
    $clientPem = Join-Path $root 'client-combined.pem'; Set-Content $clientPem ((Get-Content $client.Path -Raw) + (Get-Content $client.KeyPath -Raw))
    $script:auth = @('--ca', $ca.Path, '--cert', $client.Path, '--key', $client.KeyPath)

    # --- Bulk throughput ------------------------------------------------------------------------------
    if ($Part -contains 'Bulk' -or $Part -contains 'Idle') {
    $backendPort = Get-Port
    $null = Start-Bg dotnet @($LoadTool, 'serve', '--port', $backendPort, '--ca', $ca.Path, '--cert', $client.Path, '--key', $client.KeyPath) (Join-Path $root 'backend')
    Wait-Tls $backendPort 'the TLS backend'
    $ports = [ordered]@{ direct = $backendPort; EtcdSecure = (Get-Port); $InlineName = (Get-Port); HAProxy = (Get-Port); 'nginx stream' = (Get-Port) }
    $ours = Start-OurProxy $ports.EtcdSecure @("https://127.0.0.1:$backendPort") 'bulk'
    $oursInline = Start-OurInlineProxy $ports.$InlineName @("https://127.0.0.1:$backendPort") 'bulk-inline'
    if ($BareRelay -and $Part -contains 'Bulk') {
        $ports.Insert(3, $FloorName, (Get-Port))
        $floor = Start-BareRelay $ports.$FloorName @("127.0.0.1:$backendPort") 'bulk-floor'
    }
    if ($Part -contains 'Idle') {
        # The same proxy with OpenSSL's buffers kept, to show what releasing them saves (idle memory only).
        $keepPort = Get-Port
        $oursKeep = Start-OurProxy $keepPort @("https://127.0.0.1:$backendPort") 'bulk-keep' -Environment @{ ETCDSECURE_TLS_KEEP_BUFFERS = '1' }
    }
    $ha = Start-HAProxy $ports.HAProxy @($backendPort) 'bulk-haproxy'
    $ng = Start-Nginx $ports.'nginx stream' $backendPort

    }
    if ($Part -contains 'Bulk') {
    $bulk = [ordered]@{}
    $cpu = [ordered]@{}
    $relayPids = @{}
    foreach ($name in $ports.Keys) { $relayPids[$name] = switch ($name) { 'direct' { @() } 'EtcdSecure' { @($ours.Id) } $InlineName { @($oursInline.Id) } $FloorName { @($floor.Id) } 'HAProxy' { @($ha.Id) } default { Get-NginxPids $ng } } }
    foreach ($streams in 1, 4) {
        $samples = @{}
        foreach ($name in $ports.Keys) {
            Write-Host "bench: bulk $name x$streams (warm-up)"
            # Full-size runs first, discarded: the proxy is a long-running service, and a profile of its first
            # seconds shows a fifth of its time in the JIT (tiering up; still 6% in the third run), which says
            # nothing about steady state.
            foreach ($w in 1..$BulkWarmUps) { $null = Invoke-Load @('bulk', '--target', "127.0.0.1:$($ports[$name])", '--streams', $streams, '--bytes', $BulkBytes) }
            $samples[$name] = [Collections.Generic.List[double]]::new()
            if ($relayPids[$name]) { $cpu["$name/$streams"] = 0.0 }
        }
        # Rounds, each relay once per round: this shared VM's speed drifts by ten percent and more within minutes,
        # and interleaving spreads that drift over every relay instead of charging it to whichever ran last.
        foreach ($round in 1..$Runs) {
            foreach ($name in $ports.Keys) {
                Write-Host "bench: bulk $name x$streams (round $round)"
                $cpu0 = if ($relayPids[$name]) { Get-CpuSeconds $relayPids[$name] }
                $samples[$name].Add((Invoke-Load @('bulk', '--target', "127.0.0.1:$($ports[$name])", '--streams', $streams, '--bytes', $BulkBytes)).mibps)
                if ($relayPids[$name]) { $cpu["$name/$streams"] += ((Get-CpuSeconds $relayPids[$name]) - $cpu0) * 1000 / ($Runs * $BulkBytes / 1MB) }
            }
        }
        foreach ($name in $ports.Keys) { $bulk["$name/$streams"] = Get-Median $samples[$name] }
    }
    $lines.Add('## Proxy: bulk throughput (TLS in, TLS out)')
    $lines.Add('')
    $lines.Add("Client and backend are bench/LoadTool (mutual TLS, ECDSA P-256); $([math]::Round($BulkBytes / 1MB)) MiB per run, median of $Runs runs after $BulkWarmUps discarded runs of the same size, MiB/s; the relays take turns, one run each per round. Direct = client to backend without a relay. EtcdSecure runs as a detached proxy and the systemd unit run it: Start-EtcdProxy -Wait in a pwsh of its own, with DOTNET_TieredCompilation=0 and DOTNET_ReadyToRun=0.")
    $lines.Add('')
    $lines.Add('The CPU columns are the relay process''s own user + system time per MiB relayed (all its processes), over the same runs: what the relay costs, apart from the client and the backend it shares the cores with.')
    $lines.Add('')
    if ($ports.Contains($FloorName)) { $lines.Add($FloorDescription); $lines.Add('') }
    $lines.Add('| relay | 1 stream | 4 streams | relay CPU ms/MiB, 1 stream | relay CPU ms/MiB, 4 streams |')
    $lines.Add('|---|---:|---:|---:|---:|')
    foreach ($name in $ports.Keys) {
        $c1 = if ($cpu.Contains("$name/1")) { '{0:N2}' -f $cpu["$name/1"] } else { '' }
        $c4 = if ($cpu.Contains("$name/4")) { '{0:N2}' -f $cpu["$name/4"] } else { '' }
        $lines.Add(('| {0} | {1:N0} | {2:N0} | {3} | {4} |' -f $name, $bulk["$name/1"], $bulk["$name/4"], $c1, $c4))
    }
    foreach ($streams in 1, 4) {
        $best = [math]::Min($cpu["HAProxy/$streams"], $cpu["nginx stream/$streams"])
        $ratio = $cpu["EtcdSecure/$streams"] / $best
        $inline = $cpu["$InlineName/$streams"] / $cpu["EtcdSecure/$streams"]
        $lines.Add('')
        $floorText = if ($cpu.Contains("$FloorName/$streams")) { '; C# floor / best of HAProxy and nginx = {0:N2}' -f ($cpu["$FloorName/$streams"] / $best) } else { '' }
        $lines.Add(('{0} stream(s): relay CPU per MiB, EtcdSecure / best of HAProxy and nginx = {1:N2} (target <= 0.9: {2}); .NET sockets inline / event loops = {3:N2}{4}' -f $streams, $ratio, $(if ($ratio -le 0.9) { 'met' } else { 'NOT met' }), $inline, $floorText))
    }
    $lines.Add('')

    }

    # --- Memory per idle connection -------------------------------------------------------------------
    if ($Part -contains 'Idle') {
    $idle = [ordered]@{}
    $keepName = 'EtcdSecure, buffers kept'
    $ports[$keepName] = $keepPort
    foreach ($relayName in 'EtcdSecure', $keepName, 'HAProxy', 'nginx stream') {
        $pids = switch ($relayName) { 'EtcdSecure' { @($ours.Id) } $keepName { @($oursKeep.Id) } 'HAProxy' { @($ha.Id) } default { Get-NginxPids $ng } }
        $idle[$relayName] = Measure-IdleMemory $pids idle $ports[$relayName] $relayName
    }
    $lines.Add("## Proxy: memory per idle connection ($IdleConnections connections held open)")
    $lines.Add('')
    $lines.Add("Each connection makes one round trip through the relay (a line up, a line back, as a client's first request) and then sits idle. Growth of the relay's resident memory (all its processes) with the connections open, divided by their number. $IdleConnections rather than 10,000: this container's hard limit is 20,000 open files, and a relay holds two per connection. 'Buffers kept' is the same proxy started with ETCDSECURE_TLS_KEEP_BUFFERS=1, which leaves the TLS buffers allocated on idle connections (OpenSSL's record buffers, and on a connection relayed directly SslStream's handshake buffer).")
    $lines.Add('')
    Add-IdleTable $idle
    $perConn = $idle['EtcdSecure'].PerConnection / 1KB
    $haConn = $idle['HAProxy'].PerConnection / 1KB
    $lines.Add('')
    $lines.Add(('EtcdSecure: {0:N1} KiB per idle connection, HAProxy {1:N1} (target: no more than HAProxy: {2})' -f $perConn, $haConn, $(if ($perConn -le $haConn) { 'met' } else { 'NOT met' })))
    $lines.Add('')
    }
    # Only the parts that ran set these: under strict mode an unset one is looked up, not read.
    foreach ($p in 'ours', 'oursKeep', 'oursInline', 'floor', 'ha', 'ng' | ForEach-Object { Get-Variable $_ -ValueOnly -ErrorAction Ignore }) { if ($p -and -not $p.HasExited) { $p.Kill($true) } }

    # --- etcd request rate ----------------------------------------------------------------------------
    if ($Part -contains 'Etcd' -or $Part -contains 'Cold' -or $Part -contains 'Churn' -or $Part -contains 'Burst') {
    Write-Host 'bench: 3-member etcd cluster'
    $cluster = New-EtcdCluster -Path (Join-Path $root 'cluster') -Name bench -Size 3 -Force
    $memberPorts = $cluster.Endpoints | ForEach-Object { [int]($_ -replace '^.*:') }
    # The cluster's CA differs from the relays' one: relays present their own certificates to clients, and the
    # cluster's client certificate upstream.
    $clusterCA = $cluster.CAPath
    $etcdPorts = [ordered]@{ 'direct (one member)' = $memberPorts[0]; EtcdSecure = (Get-Port); $InlineName = (Get-Port); HAProxy = (Get-Port); 'etcd grpc-proxy' = (Get-Port) }
    $etcdRelay = [ordered]@{}
    $etcdRelay.EtcdSecure = Start-OurProxy $etcdPorts.EtcdSecure $cluster.Endpoints 'etcd' -UpstreamCertificate $cluster.ClientCertificatePath -UpstreamCA $clusterCA
    $etcdRelay.$InlineName = Start-OurInlineProxy $etcdPorts.$InlineName $cluster.Endpoints 'etcd-inline' -UpstreamCertificate $cluster.ClientCertificatePath -UpstreamCA $clusterCA
    if ($Part -contains 'Etcd') {
        # The same proxy with an upstream identity per client (-IdentityPath): what keeping each client's etcd user costs.
        $identities = Join-Path $root 'proxy-identities'
        $null = New-EtcdProxyIdentity -Path $identities -User client -CA $clusterCA
        $etcdPorts.Insert(2, $PerClientName, (Get-Port))
        $etcdRelay.$PerClientName = Start-OurProxy $etcdPorts.$PerClientName $cluster.Endpoints 'etcd-per-client' -UpstreamCertificate $cluster.ClientCertificatePath -UpstreamCA $clusterCA -IdentityPath $identities
    }
    if ($BareRelay -and $Part -contains 'Etcd') {
        $etcdPorts.Insert(3, $FloorName, (Get-Port))
        $etcdRelay.$FloorName = Start-BareRelay $etcdPorts.$FloorName ($cluster.Endpoints -replace '^https://') 'etcd-floor' $cluster.ClientCertificatePath $cluster.ClientKeyPath $clusterCA
    }
    $clusterClientPem = Join-Path $root 'cluster-client.pem'; Set-Content $clusterClientPem ((Get-Content $cluster.ClientCertificatePath -Raw) + (Get-Content $cluster.ClientKeyPath -Raw))
    # HAProxy verifies the members against the cluster CA and presents the cluster's client certificate.
    $etcdRelay.HAProxy = Start-HAProxy $etcdPorts.HAProxy $memberPorts 'etcd-haproxy' -H2 -MaxConn 9500 -ServerCA $clusterCA -ServerPem $clusterClientPem
    # grpc-proxy insists on a client certificate with an empty common name (so that no user is implied by it);
    # EtcdSecure requires a common name, so cfssl makes this one.
    $gp = New-Item -ItemType Directory (Join-Path $root 'grpc-proxy-cert') -Force
    Set-Content (Join-Path $gp 'config.json') '{"signing":{"profiles":{"client":{"usages":["signing","key encipherment","client auth"],"expiry":"8760h"}}}}'
    Set-Content (Join-Path $gp 'csr.json') '{"CN":"","names":[{"O":"grpc-proxy"}],"key":{"algo":"ecdsa","size":256}}'
    Push-Location $gp
    try { cfssl gencert -ca $clusterCA -ca-key ($clusterCA -replace '\.pem$', '-key.pem') -config config.json -profile client csr.json 2>$null | cfssljson -bare gp }
    finally { Pop-Location }
    $etcdRelay.'etcd grpc-proxy' = Start-Bg etcd @('grpc-proxy', 'start', "--endpoints=$($cluster.Endpoints -join ',')", "--listen-addr=127.0.0.1:$($etcdPorts.'etcd grpc-proxy')",
        "--cacert=$clusterCA", "--cert=$(Join-Path $gp 'gp.pem')", "--key=$(Join-Path $gp 'gp-key.pem')",
        "--cert-file=$($relay.Path)", "--key-file=$($relay.KeyPath)", "--trusted-ca-file=$($ca.Path)") (Join-Path $root 'grpc-proxy')
    Wait-Tls $etcdPorts.'etcd grpc-proxy' 'etcd grpc-proxy'

    function Invoke-EtcdLoad([string] $Name, [double] $Seconds, [int] $Clients, [string] $Mix, [int[]] $RelayPid) {
        <#
        Each client is a gRPC channel with an HTTP/2 connection of its own and one request in flight. With RelayPid, the
        result's RelayCpu is what the relay spent from when every client was connected (LoadTool's START) to the last
        answer (its result line): its requests, not its handshakes, which at 256 clients cost about as much again.
        #>
        # Direct talks to a member with the cluster's own client certificate; the relays take the relay CA's.
        $authFor = if ($Name -like 'direct*') { @('--ca', $clusterCA, '--cert', $cluster.ClientCertificatePath, '--key', $cluster.ClientKeyPath) } else { $script:auth }
        $loader = Start-LoadTool @('etcd', '--target', "127.0.0.1:$($etcdPorts[$Name])", '--connections', $Clients, '--concurrency', 1, '--seconds', $Seconds, '--mix', $Mix) $authFor
        $cpu0 = $cpu1 = 0.0; $result = $null
        while ($null -ne ($line = $loader.StandardOutput.ReadLine())) {
            if ($line -eq 'START' -and $RelayPid) { $cpu0 = Get-CpuSeconds $RelayPid }
            elseif ($line -like '{*') {
                if ($RelayPid) { $cpu1 = Get-CpuSeconds $RelayPid }
                $result = $line | ConvertFrom-Json
            }
        }
        $loader.WaitForExit()
        if ($loader.ExitCode -or -not $result) { throw "LoadTool etcd through $Name failed ($($loader.ExitCode))" }
        $result | Add-Member RelayCpu ($cpu1 - $cpu0) -PassThru
    }

    if ($Part -contains 'Etcd') {
    $lines.Add('## Proxy: etcd requests, what each relay costs')
    $lines.Add('')
    $lines.Add("Linearizable requests with dotnet gRPC (bench/LoadTool): N clients, each a gRPC channel with its own HTTP/2 connection and one request in flight. Range = a Range of one 256-byte key; mixed = each client alternates a Put and a Range of a key of its own. $EtcdSeconds s per run after a warm-up on each path ($EtcdWarmUpSeconds s before the first load, 3 s before the others); median of $Runs rounds, each path once per round, against a 3-member etcd $((Get-EtcdBinary | Where-Object Name -EQ etcd).Version) cluster on the same machine. '$PerClientName' is this proxy started with -IdentityPath: each client's member connection presents that client's own upstream identity (its own TLS context), where 'EtcdSecure' presents one identity for all (-SingleIdentity). '$InlineName' is this proxy with ETCDSECURE_PROXY_EVENT_LOOP=0, DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 and one socket engine thread per core. Both run as a detached proxy and the systemd unit run it: Start-EtcdProxy -Wait in a pwsh of its own, with DOTNET_TieredCompilation=0 and DOTNET_ReadyToRun=0.")
    $lines.Add('')
    $lines.Add('Relay CPU is the relay process''s own user + system time while the clients make their requests (from when every client has connected and made one to the last answer), over all its rounds, divided by the requests it carried: what connecting costs is in ''CPU per new client'', below. Added p99 is the path''s p99 minus the direct path''s in the same load.')
    $lines.Add('')
    if ($etcdPorts.Contains($FloorName)) { $lines.Add($FloorDescription); $lines.Add('') }
    $lines.Add('| load | path | ops/s | p50 ms | p99 ms | added p99 ms | relay CPU µs per request | CPU / HAProxy''s |')
    $lines.Add('|---|---|---:|---:|---:|---:|---:|---:|')
    $verdicts = [Collections.Generic.List[string]]::new()
    $firstLoad = $true
    foreach ($load in @(@{ Mix = 'range'; Clients = 16 }, @{ Mix = 'range'; Clients = 256 }, @{ Mix = 'mixed'; Clients = 16 }, @{ Mix = 'mixed'; Clients = 256 })) {
        $label = '{0}, {1} clients' -f $(if ($load.Mix -eq 'range') { 'Range' } else { 'mixed' }), $load.Clients
        $runsOf = [ordered]@{}
        $relayCpu = @{}
        foreach ($name in $etcdPorts.Keys) { $runsOf[$name] = [Collections.Generic.List[object]]::new(); $relayCpu[$name] = 0.0 }
        $warm = if ($firstLoad) { $EtcdWarmUpSeconds } else { 3 }
        $firstLoad = $false
        foreach ($name in $etcdPorts.Keys) { Write-Host "bench: etcd $label through $name (warm-up)"; $null = Invoke-EtcdLoad $name $warm $load.Clients $load.Mix }
        # Rounds, as for bulk: each path once per round, so drift in the machine's speed falls on all of them alike.
        foreach ($round in 1..$Runs) {
            foreach ($name in $etcdPorts.Keys) {
                Write-Host "bench: etcd $label through $name (round $round)"
                $relayPid = if ($etcdRelay.Contains($name)) { @($etcdRelay[$name].Id) }
                $run = Invoke-EtcdLoad $name $EtcdSeconds $load.Clients $load.Mix $relayPid
                $runsOf[$name].Add($run)
                $relayCpu[$name] += $run.RelayCpu
            }
        }
        $rate = [ordered]@{}
        foreach ($name in $etcdPorts.Keys) {
            $r = $runsOf[$name]
            $ops = ($r | Measure-Object -Property ops -Sum).Sum
            $cpuPerRequest = if ($etcdRelay.Contains($name) -and $ops) { $relayCpu[$name] * 1e6 / $ops }
            $rate[$name] = [pscustomobject]@{ opsPerSecond = Get-Median ($r | ForEach-Object opsPerSecond); p50 = Get-Median ($r | ForEach-Object p50); p99 = Get-Median ($r | ForEach-Object p99); CpuPerRequest = $cpuPerRequest }
        }
        $directP99 = $rate['direct (one member)'].p99
        foreach ($k in $rate.Keys) {
            $r = $rate[$k]
            $added = if ($k -like 'direct*') { '' } else { '{0:N2}' -f ($r.p99 - $directP99) }
            $vsHa = if ($null -ne $r.CpuPerRequest) { '{0:N2}' -f ($r.CpuPerRequest / $rate.HAProxy.CpuPerRequest) } else { '' }
            $cpuText = if ($null -ne $r.CpuPerRequest) { '{0:N1}' -f $r.CpuPerRequest } else { '' }
            $lines.Add(('| {0} | {1} | {2:N0} | {3:N2} | {4:N2} | {5} | {6} | {7} |' -f $label, $k, $r.opsPerSecond, $r.p50, $r.p99, $added, $cpuText, $vsHa))
        }
        $cpuRatio = $rate.EtcdSecure.CpuPerRequest / $rate.HAProxy.CpuPerRequest
        $rateOk = $rate.EtcdSecure.opsPerSecond -ge $rate.HAProxy.opsPerSecond
        $p99Ok = $rate.EtcdSecure.p99 -le $rate.HAProxy.p99
        $met = $cpuRatio -le 0.8 -and $rateOk -and $p99Ok
        $floorText = if ($rate.Contains($FloorName)) { '; C# floor / HAProxy = {0:N2}' -f ($rate.$FloorName.CpuPerRequest / $rate.HAProxy.CpuPerRequest) } else { '' }
        if ($rate.Contains($PerClientName)) { $floorText += '; identity per client / single identity CPU per request = {0:N2}' -f ($rate.$PerClientName.CpuPerRequest / $rate.EtcdSecure.CpuPerRequest) }
        $verdicts.Add(('{0}: relay CPU per request EtcdSecure / HAProxy = {1:N2} (<= 0.8), rate {2:N0} against {3:N0} ops/s, p99 {4:N2} against {5:N2} ms: target {6}; .NET sockets inline / event loops CPU per request = {7:N2}{8}' -f $label, $cpuRatio, $rate.EtcdSecure.opsPerSecond, $rate.HAProxy.opsPerSecond, $rate.EtcdSecure.p99, $rate.HAProxy.p99, $(if ($met) { 'met' } else { 'NOT met' }), ($rate.$InlineName.CpuPerRequest / $rate.EtcdSecure.CpuPerRequest), $floorText))
    }
    $lines.Add('')
    foreach ($v in $verdicts) { $lines.Add("- $v") }
    $lines.Add('')

    }

    # --- A cold proxy under load -----------------------------------------------------------------------
    if ($Part -contains 'Cold') {
        $coldSeconds = $ColdSeconds
        $lines.Add('## Proxy: a cold proxy under load')
        $lines.Add('')
        $lines.Add("A proxy started for this measurement, then at once Range from 16 clients (as above) for $coldSeconds s: relay CPU µs per request in each second of load. Steady state is the median of the last 5 seconds; 'steady from' is the first second from which the mean of every 3 seconds in a row stays within 15% of it (single seconds vary by more than that on these shared cores). The first second also carries the 16 clients' TLS handshakes. 'Listening after' is the time from starting the proxy's pwsh (Import-Module, then Start-EtcdProxy -Wait) to its first TLS handshake, and 'CPU to listen' that process's CPU by then.")
        $lines.Add('')
        $lines.Add('| proxy | ' + ((1..$coldSeconds | ForEach-Object { "s$_" }) -join ' | ') + ' | steady µs | steady from | listening after | CPU to listen |')
        $lines.Add('|---|' + ((1..$coldSeconds | ForEach-Object { '---:' }) -join '|') + '|---:|---:|---:|---:|')
        $coldVariants = @(
            @{ Name = 'EtcdSecure'; Env = @{} }
            @{ Name = 'EtcdSecure, DOTNET_TieredPGO=0'; Env = @{ DOTNET_TieredPGO = '0' } }
            @{ Name = 'EtcdSecure, DOTNET_TieredCompilation=0'; Env = @{ DOTNET_TieredCompilation = '0' } }
            @{ Name = 'EtcdSecure, DOTNET_TieredCompilation=0 DOTNET_ReadyToRun=0'; Env = @{ DOTNET_TieredCompilation = '0'; DOTNET_ReadyToRun = '0' } }
            @{ Name = 'EtcdSecure, DOTNET_TieredPGO=0 DOTNET_ReadyToRun=0'; Env = @{ DOTNET_TieredPGO = '0'; DOTNET_ReadyToRun = '0' } })
        foreach ($variant in $coldVariants) {
            $coldPort = Get-Port
            $startClock = [Diagnostics.Stopwatch]::StartNew()
            $cold = Start-OurProxy $coldPort $cluster.Endpoints "cold-$(Get-Random)" -UpstreamCertificate $cluster.ClientCertificatePath -UpstreamCA $clusterCA -Environment $variant.Env -RuntimeDefaults
            $startSeconds = $startClock.Elapsed.TotalSeconds
            $startCpu = Get-CpuSeconds @($cold.Id)
            Write-Host "bench: cold $($variant.Name)"
            $loader = Start-LoadTool @('etcd', '--target', "127.0.0.1:$coldPort", '--connections', 16, '--concurrency', 1, '--seconds', $coldSeconds, '--timeline', 1)
            $null = $loader.StandardOutput.ReadLine() # START: the load begins now
            $clock = [Diagnostics.Stopwatch]::StartNew()
            $cpuAt = [Collections.Generic.List[double]]::new()
            $cpuAt.Add((Get-CpuSeconds @($cold.Id)))
            foreach ($second in 1..$coldSeconds) {
                while ($clock.Elapsed.TotalSeconds -lt $second) { Start-Sleep -Milliseconds 10 }
                $cpuAt.Add((Get-CpuSeconds @($cold.Id)))
            }
            $result = $loader.StandardOutput.ReadToEnd() -split "`n" | Where-Object { $_ -like '{*' } | Select-Object -Last 1 | ConvertFrom-Json
            $null = $loader.WaitForExit(30000)
            $cold.Kill($true); $null = $cold.WaitForExit(10000)
            $perRequest = foreach ($i in 0..($coldSeconds - 1)) { if ($result.perSecond[$i]) { ($cpuAt[$i + 1] - $cpuAt[$i]) * 1e6 / $result.perSecond[$i] } else { [double]::NaN } }
            $steady = Get-Median @($perRequest[($coldSeconds - 5)..($coldSeconds - 1)])
            $from = $coldSeconds - 2
            for ($i = $coldSeconds - 3; $i -ge 0; $i--) {
                $window = ($perRequest[$i..($i + 2)] | Measure-Object -Average).Average
                if ([math]::Abs($window - $steady) -gt 0.15 * $steady) { break }
                $from = $i + 1
            }
            $lines.Add("| $($variant.Name) | " + (($perRequest | ForEach-Object { '{0:N0}' -f $_ }) -join ' | ') + (' | {0:N0} | {1} s | {2:N1} s | {3:N1} s |' -f $steady, $from, $startSeconds, $startCpu))
        }
        $lines.Add('')
        $lines.Add('CPU is sampled from /proc every second, in 10 ms ticks.')
        $lines.Add('')
    }

    if ($Part -contains 'Churn') {
        # What a relay costs while nothing is relayed (its checks of the members), and per client that connects, makes
        # one request and leaves: both TLS handshakes, the request, the close.
        $churn = 'EtcdSecure', 'HAProxy', 'etcd grpc-proxy'
        $rest = @{}; $perClient = @{}
        foreach ($n in $churn) { $rest[$n] = [Collections.Generic.List[double]]::new(); $perClient[$n] = [Collections.Generic.List[double]]::new() }
        # The hold file exists already, so each LoadTool run closes its clients as soon as all are open.
        $now = Join-Path $root 'hold-none'; Set-Content $now 'now'
        foreach ($r in 0..$Runs) {
            foreach ($n in $churn) {
                Write-Host "bench: $ChurnClients new clients through $n$(if ($r -eq 0) { ' (warm-up)' })"
                $before = Get-CpuSeconds @($etcdRelay[$n].Id)
                $out = & dotnet $LoadTool etcd-idle --target "127.0.0.1:$($etcdPorts[$n])" --count $ChurnClients --hold-file $now $script:auth
                if ($LASTEXITCODE -or -not ($out -match "READY $ChurnClients")) { throw "LoadTool etcd-idle through $n failed ($LASTEXITCODE): $out" }
                if ($r -gt 0) { $perClient[$n].Add(((Get-CpuSeconds @($etcdRelay[$n].Id)) - $before) * 1000 / $ChurnClients) }
            }
        }
        # At rest once every relay has served clients, so that a freshly started one is not measured compiling its code;
        # the first window, right after the last clients left, is not counted.
        Write-Host "bench: CPU at rest, $Runs windows of $RestSeconds s after one more"
        foreach ($r in 0..$Runs) {
            $before = @{}; foreach ($n in $churn) { $before[$n] = Get-CpuSeconds @($etcdRelay[$n].Id) }
            Start-Sleep -Seconds $RestSeconds
            if ($r -gt 0) { foreach ($n in $churn) { $rest[$n].Add(((Get-CpuSeconds @($etcdRelay[$n].Id)) - $before[$n]) * 1000 / $RestSeconds) } }
        }

        $lines.Add('## Proxy: CPU at rest and per new client')
        $lines.Add('')
        $lines.Add("The relays of the etcd section, in front of the same 3-member cluster. At rest: no client, only each relay's own checks of the members (EtcdSecure: a TLS handshake and GET /version to every member every 500 ms; HAProxy: a TLS handshake every 500 ms; etcd grpc-proxy: its own), relay CPU per second over $Runs windows of $RestSeconds s after the clients below (and one more window not counted), all relays in the same windows. Per new client: $ChurnClients dotnet gRPC clients (bench/LoadTool etcd-idle), 64 connecting at a time, each with its own HTTP/2 connection, making one Range and closing once all are open; relay CPU divided by the clients, which includes the few seconds at rest the run takes; $Runs rounds after one to warm up, relays taking turns. Medians.")
        $lines.Add('')
        $lines.Add('| relay | CPU at rest ms/s | CPU per new client ms | per new client / HAProxy |')
        $lines.Add('|---|---:|---:|---:|')
        $haClient = Get-Median $perClient.HAProxy
        foreach ($n in $churn) { $lines.Add(('| {0} | {1:N1} | {2:N2} | {3:N2} |' -f $n, (Get-Median $rest[$n]), (Get-Median $perClient[$n]), ((Get-Median $perClient[$n]) / $haClient))) }
        $lines.Add('')
        $lines.Add(('EtcdSecure at rest {0:N1} ms a second, HAProxy {1:N1}; per new client {2:N2} ms, HAProxy {3:N2} ({4:N2} times). No target is set for these.' -f (Get-Median $rest.EtcdSecure), (Get-Median $rest.HAProxy), (Get-Median $perClient.EtcdSecure), $haClient, ((Get-Median $perClient.EtcdSecure) / $haClient)))
        $lines.Add('')
    }

    # The idle measurement again, with etcd itself behind the relays and real gRPC clients in front.
    if ($Part -contains 'Burst') {
    # Two independent client stacks: dotnet gRPC (LoadTool burst) and grpc-js (the etcd3 package, no retries), where
    # build.ps1 bootstrap could install it.
    $grpcJs = Join-Path $PSScriptRoot '../.tools/node/node_modules'
    $stacks = [ordered]@{ 'dotnet gRPC' = { param($Port, $Count) Invoke-Load @('burst', '--target', "127.0.0.1:$Port", '--count', $Count) } }
    if (Test-Path (Join-Path $grpcJs 'etcd3')) {
        $stacks['grpc-js (etcd3)'] = {
            param($Port, $Count)
            $env:NODE_PATH = $grpcJs
            try { node (Join-Path $PSScriptRoot '../tests/node/grpcjs-burst.js') "https://127.0.0.1:$Port" $Count $ca.Path $client.Path $client.KeyPath 2>$null | Select-Object -Last 1 }
            finally { Remove-Item Env:NODE_PATH -ErrorAction Ignore }
        }
    }
    $lines.Add('## Proxy: a burst of clients from one host')
    $lines.Add('')
    $lines.Add("N etcd clients started at once from one address (127.0.0.1), each with its own channel and TLS connection, each making one linearizable Range; the time until the last one had its answer, and how many got none. $BurstRuns rounds per relay and client stack, relays taking turns, medians; both relays with their default caps (EtcdSecure: -MaxPendingHandshakes 1024, -MaxPendingPerAddress 128) in front of the same 3-member cluster. grpc-js runs without retries, so a refused or reset client counts as failed.")
    $lines.Add('')
    $lines.Add('| clients | client stack | relay | answered | failed | last answer, ms | / HAProxy''s |')
    $lines.Add('|---:|---|---|---:|---:|---:|---:|')
    foreach ($count in 256, 1024) {
        foreach ($stack in $stacks.Keys) {
            $burstOf = [ordered]@{ EtcdSecure = [Collections.Generic.List[object]]::new(); HAProxy = [Collections.Generic.List[object]]::new() }
            foreach ($round in 1..$BurstRuns) {
                foreach ($name in $burstOf.Keys) {
                    Write-Host "bench: burst of $count $stack clients through $name (round $round)"
                    $result = & $stacks[$stack] $etcdPorts[$name] $count
                    $burstOf[$name].Add($(if ($result -is [string]) { $result | ConvertFrom-Json } else { $result }))
                }
            }
            $haLast = Get-Median ($burstOf.HAProxy | ForEach-Object lastMs)
            foreach ($name in $burstOf.Keys) {
                $r = $burstOf[$name]
                $last = Get-Median ($r | ForEach-Object lastMs)
                $lines.Add(('| {0} | {1} | {2} | {3} | {4} | {5:N0} | {6:N2} |' -f $count, $stack, $name, ($r | Measure-Object ok -Sum).Sum, ($r | Measure-Object failed -Sum).Sum, $last, ($last / $haLast)))
            }
        }
    }
    $lines.Add('')
    }

    if ($Part -contains 'Etcd') {
    $etcdIdle = [ordered]@{}
    foreach ($name in 'EtcdSecure', 'HAProxy', 'etcd grpc-proxy') { $etcdIdle[$name] = Measure-IdleMemory @($etcdRelay[$name].Id) etcd-idle $etcdPorts[$name] "etcd $name" }
    $lines.Add("## Proxy: memory per idle etcd client ($IdleConnections gRPC clients held open)")
    $lines.Add('')
    $lines.Add("As above, with the 3-member etcd cluster behind each relay: each client is a dotnet gRPC channel with its own HTTP/2 connection that makes one Range and then sits idle. EtcdSecure and HAProxy relay each client connection to a member connection of its own; etcd's grpc-proxy ends HTTP/2 and sends every client's requests over its own few member connections.")
    $lines.Add('')
    Add-IdleTable $etcdIdle
    $lines.Add('')
    }
    }
}
catch {
    # The logs go with the temporary directory: show what the processes said before it goes.
    foreach ($log in $script:logs.Values) {
        $tail = Get-Content "$log.err", "$log.out" -ErrorAction Ignore | Where-Object { $_ } | Select-Object -Last 5
        if ($tail) { Write-Host "bench: $(Split-Path $log -Leaf): $($tail -join ' | ')" }
    }
    throw
}
finally {
    foreach ($p in $started) { if (-not $p.HasExited) { $p.Kill($true); $null = $p.WaitForExit(10000) } }
    try { Remove-EtcdCluster bench -Confirm:$false } catch { $null = $_ } # not made when an earlier step failed
    Remove-Item $root -Recurse -Force -ErrorAction Ignore
}
$lines
