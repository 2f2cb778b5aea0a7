BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $c = New-TestCluster -Root (Join-Path $TestDrive 'cluster')

    # Workflow A's shape, made stricter: the proxy's clients have their own CA, which the members do not trust,
    # so anything that works below can only have gone through the proxy.
    $edge = New-EtcdCA -Path (Join-Path $TestDrive 'edge') -CommonName edge-ca
    $serving = $edge | New-EtcdCertificate -Profile Server -CommonName etcd-proxy -Hosts localhost, 127.0.0.1
    $user = $edge | New-EtcdCertificate -Profile Client -CommonName root
    $port = Get-FreeTcpPort
    $url = "https://127.0.0.1:$port"
    $proxy = Start-EtcdProxy -Listen $url -InitialCluster $c.PeerUrls -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA

    function Invoke-ViaProxy([string[]] $Arguments, $Cert = $user, [string] $CA = $edge.Path, [switch] $Refused) {
        Invoke-EtcdctlThrough $url $CA $Cert $Arguments -Refused:$Refused
    }
    function Get-Refused([string] $Reason) { $r = (Get-EtcdProxy $proxy.Name).Refused; if ($r.Contains($Reason)) { $r[$Reason] } else { 0 } }
    function Start-Watch([string] $Key) {
        # etcdctl watch holds one long-lived HTTP/2 connection through the proxy and prints each event.
        $out = Join-Path $TestDrive "watch-$Key-$([guid]::NewGuid()).txt"
        $p = Start-Process etcdctl -PassThru -RedirectStandardOutput $out -RedirectStandardError "$out.err" `
            -ArgumentList @('--endpoints', $url, '--cacert', $edge.Path, '--cert', $user.Path, '--key', $user.KeyPath, 'watch', $Key)
        [pscustomobject]@{ Process = $p; Output = $out }
    }
    function Get-WatchLines($Watch) { @(Get-Content $Watch.Output -ErrorAction Ignore) }
    function Invoke-SwitchedProxy([string] $Variable, [string] $Value, [string[]] $Commands) {
        # A switch read once per process: a fresh pwsh with it set, a proxy, etcdctl through it, its counters and log.
        $free = Get-FreeTcpPort
        $etcdctl = $Commands | ForEach-Object { "& etcdctl --endpoints https://127.0.0.1:$free --cacert '$($edge.Path)' --cert '$($user.Path)' --key '$($user.KeyPath)' $_" }
        Invoke-CleanPwsh @"
`$env:$Variable = '$Value'
Import-Module '$script:ModuleManifest'
`$p = Start-EtcdProxy -Listen https://127.0.0.1:$free -Endpoint $($c.Endpoints -join ',') -Certificate '$($serving.Path)' -ClientCA '$($edge.Path)' -UpstreamCertificate '$($c.Node.Path)' -SingleIdentity -UpstreamCA '$($c.CA.Path)'
$($etcdctl -join "`n")
`$i = Get-EtcdProxy `$p.Name
"relayed=`$(`$i.TotalConnections) loops=`$(`$i.EventLoops) released=`$(`$i.TlsBuffersReleased) idle=`$(`$i.TlsIdleFrees)"
"direct=`$(`$i.DirectRelays) mode=`$(`$i.RelayDirect)"
Receive-Job -Id `$p.JobId -Verbose 4>&1 | ForEach-Object { "log: `$_" }
Stop-EtcdProxy `$p.Name
"@
    }
    function Start-StreamsProxy([string] $Name) {
        # The proxy as it relays without the direct path; the switch is read once, when a proxy starts.
        $env:ETCDSECURE_RELAY_DIRECT = '0'
        try { Start-EtcdProxy -Name $Name -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA }
        finally { Remove-Item Env:ETCDSECURE_RELAY_DIRECT }
    }
    $userCert = [Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($user.Path, $user.KeyPath)
    # A raw TLS client with the proxy-side certificate, speaking HTTP/1.1 (etcd's /version) through the proxy.
    function Connect-Tls([int] $Port) { Connect-TlsClient $Port $userCert $edge.Path }
    function Send-Text($Conn, [string] $Text) { $b = [Text.Encoding]::ASCII.GetBytes($Text); $Conn.Ssl.Write($b, 0, $b.Length); $Conn.Ssl.Flush() }
    function Read-ToEnd($Stream) {
        $buf = [byte[]]::new(65536); $ms = [IO.MemoryStream]::new()
        try { while (($n = $Stream.Read($buf, 0, $buf.Length)) -gt 0) { $ms.Write($buf, 0, $n) } }
        catch [IO.IOException] { $null = $_ } # a reset after the data is an end too
        [Text.Encoding]::ASCII.GetString($ms.ToArray())
    }
}

AfterAll {
    Stop-TestCluster
    Get-Job | Where-Object PSJobTypeName -EQ 'EtcdProxy' | Remove-Job -Force
}

Describe 'Start-EtcdProxy: workflow A, the cluster behind a TLS proxy' -Tag Integration {
    It 'runs in the background as a PowerShell job, with every member found from the peer URLs' {
        $proxy.State | Should -Be 'Running'
        $proxy.Endpoint | Should -Be $url
        $job = Get-Job -Id $proxy.JobId
        $job.PSJobTypeName | Should -Be 'EtcdProxy'
        $job.State | Should -Be 'Running'
        $job.Location | Should -Be $url
        $members = (Get-EtcdProxy $proxy.Name).Members
        $members.Name | Sort-Object | Should -Be @('n1', 'n2', 'n3')
        $members.Alive | Should -Be @($true, $true, $true)
        $members.Url | Sort-Object | Should -Be @($c.Endpoints | Sort-Object)
    }

    It 'serves etcdctl v3 put and get with only the proxy-side credentials' {
        (Invoke-ViaProxy @('put', 'via-proxy', 'yes')).ExitCode | Should -Be 0
        (Invoke-ViaProxy @('get', 'via-proxy', '--print-value-only')).Output | Should -Be 'yes'
        # The same credentials are useless against a member directly: only the proxy can reach the cluster.
        (Invoke-Etcdctl @('--endpoints', $c.Endpoints[0], '--cacert', $c.CA.Path, '--cert', $user.Path, '--key', $user.KeyPath, '--dial-timeout', '2s', '--command-timeout', '3s', 'get', 'via-proxy')).ExitCode | Should -Not -Be 0
    }

    It 'relays a watch, and keeps it alive while the certificate files are replaced' {
        $w = Start-Watch 'watched'
        try {
            Wait-Until -Because 'the watch to be connected through the proxy' { (Get-EtcdProxy $proxy.Name).ActiveConnections -ge 1 }
            (Invoke-ViaProxy @('put', 'watched', 'one')).ExitCode | Should -Be 0
            Wait-Until -Because 'the watch to print the first event' { (Get-WatchLines $w) -contains 'one' }

            $before = (Get-EtcdProxy $proxy.Name).CertificateReloads
            $reissued = $edge | New-EtcdCertificate -Force -Profile Server -CommonName etcd-proxy -Hosts localhost, 127.0.0.1
            $reissued.Path | Should -Be $serving.Path
            Wait-Until -Because 'the proxy to reload its serving certificate' {
                $null = Invoke-ViaProxy @('get', 'watched')
                (Get-EtcdProxy $proxy.Name).CertificateReloads -gt $before
            }
            (Invoke-ViaProxy @('put', 'watched', 'two')).ExitCode | Should -Be 0
            Wait-Until -Because 'the watch opened before the reload to print the second event' { (Get-WatchLines $w) -contains 'two' }
            $w.Process.HasExited | Should -BeFalse
        }
        finally { Stop-TestProcess $w.Process }
    }

    It 'presents the replaced certificate to new clients after a reload' {
        $served = Get-ServedCertificate -Port $port
        $onDisk = Get-EtcdCertificate $serving.Path
        $served.Thumbprint | Should -Be $onDisk.Thumbprint
    }

    It 'relays plain HTTPS over HTTP/1.1 (etcd /health and /version)' {
        $health = & curl -s --http1.1 --cacert $edge.Path --cert $user.Path --key $user.KeyPath "$url/health"
        $LASTEXITCODE | Should -Be 0
        ($health | ConvertFrom-Json).health | Should -Be 'true'
        $version = & curl -s --cacert $edge.Path --cert $user.Path --key $user.KeyPath "$url/version" | ConvertFrom-Json
        $version.etcdserver | Should -Be ((Get-EtcdBinary | Where-Object Name -EQ etcd).Version.ToString(3))
    }

    It 'lets Test-EtcdClusterHealth (dotnet-etcd) see every member through the proxy alone' {
        $direct = Test-EtcdClusterHealth $url -CA $edge -Certificate $user
        $direct.Healthy | Should -BeTrue
        $all = Test-EtcdClusterHealth $url -CA $edge -Certificate $user -Cluster
        $all.Count | Should -Be 3
        $all.Name | Sort-Object | Should -Be @('n1', 'n2', 'n3')
        $all.Healthy | Should -Be @($true, $true, $true)
        $all.Via | Sort-Object -Unique | Should -Be $url
        @($all | Where-Object IsLeader).Count | Should -Be 1
        # Each row is a different member, not three answers from whichever member the proxy picked.
        ($all.MemberId | Sort-Object -Unique).Count | Should -Be 3
    }

    It 'takes the proxy from the pipeline (Get-EtcdProxy | Test-EtcdClusterHealth)' {
        (Get-EtcdProxy $proxy.Name | Test-EtcdClusterHealth -CA $edge -Certificate $user -Cluster -Summary).Healthy | Should -BeTrue
    }

    It 'balances connections over the members' {
        $before = (Get-EtcdProxy $proxy.Name).Members | ForEach-Object { @{ $_.Name = $_.TotalConnections } }
        1..6 | ForEach-Object { (Invoke-ViaProxy @('get', 'via-proxy')).ExitCode | Should -Be 0 }
        $after = (Get-EtcdProxy $proxy.Name).Members
        @($after | Where-Object { $_.TotalConnections -gt ($before | Where-Object Keys -EQ $_.Name)[$_.Name] }).Count | Should -BeGreaterThan 1
    }

    It 'lets both TLS sides of every relayed connection free their record buffers while idle' {
        $before = Get-EtcdProxy $proxy.Name
        1..3 | ForEach-Object { (Invoke-ViaProxy @('get', 'via-proxy')).ExitCode | Should -Be 0 }
        $after = Get-EtcdProxy $proxy.Name
        $relayed = $after.TotalConnections - $before.TotalConnections
        $relayed | Should -BeGreaterOrEqual 3
        $after.TlsBuffersReleased - $before.TlsBuffersReleased | Should -Be (2 * $relayed)
    }

    It 'hands OpenSSL''s buffers back each time a relayed connection falls idle, on both sides' {
        # A client that says nothing after its handshake: the member's TLS 1.3 session ticket is then the last
        # record the upstream side read, and OpenSSL would keep its 16 KiB read buffer for as long as it idles.
        $before = (Get-EtcdProxy $proxy.Name).TlsIdleFrees
        $conn = Connect-Tls $port
        try {
            # Both sides idle once the upstream handshake is done and the ticket read: two frees at least.
            Wait-Until { (Get-EtcdProxy $proxy.Name).TlsIdleFrees -ge $before + 2 } -Timeout '00:00:10' -Because 'both TLS sides of the idle connection give their buffers back'
            # And the connection still works afterwards: OpenSSL allocates again for the next record.
            Send-Text $conn "GET /version HTTP/1.1`r`nHost: localhost`r`nConnection: close`r`n`r`n"
            Read-ToEnd $conn.Ssl | Should -Match '"etcdserver"'
        }
        finally { $conn.Tcp.Dispose() }
    }

    It 'keeps a busy connection''s buffers from one request to the next, and gives them back once it idles' {
        # Requests one after another on one connection: no side waits long enough (half a second to a second) for the
        # loop to free its buffers, so OpenSSL does not allocate them again for every record.
        function Read-Version($Conn) {
            $buf = [byte[]]::new(4096); $text = ''
            while ($text -notmatch '"etcdcluster":"[^"]*"\}') {
                $n = $Conn.Ssl.Read($buf, 0, $buf.Length)
                if ($n -le 0) { throw "the connection ended after: $text" }
                $text += [Text.Encoding]::ASCII.GetString($buf, 0, $n)
            }
            $text
        }
        $request = "GET /version HTTP/1.1`r`nHost: localhost`r`n`r`n"
        $before = (Get-EtcdProxy $proxy.Name).TlsIdleFrees
        $conn = Connect-Tls $port
        try {
            Send-Text $conn $request
            Read-Version $conn | Should -Match '"etcdserver"'
            Wait-Until { (Get-EtcdProxy $proxy.Name).TlsIdleFrees -ge $before + 2 } -Timeout '00:00:10' -Because 'both TLS sides to give their buffers back once idle'
            $idle = (Get-EtcdProxy $proxy.Name).TlsIdleFrees
            1..20 | ForEach-Object {
                Send-Text $conn $request
                Read-Version $conn | Should -Match '"etcdserver"'
            }
            (Get-EtcdProxy $proxy.Name).TlsIdleFrees | Should -Be $idle -Because 'a connection in use keeps its buffers'
            Wait-Until { (Get-EtcdProxy $proxy.Name).TlsIdleFrees -ge $idle + 2 } -Timeout '00:00:10' -Because 'both sides to give them back once idle again'
        }
        finally { $conn.Tcp.Dispose() }
    }

    It 'keeps the buffers, and still relays, when ETCDSECURE_TLS_KEEP_BUFFERS=1 turns that off' {
        $r = Invoke-SwitchedProxy ETCDSECURE_TLS_KEEP_BUFFERS 1 @('get via-proxy --print-value-only')
        $r.ExitCode | Should -Be 0
        $r.Output | Should -Contain 'yes'
        $r.Output | Should -Contain "relayed=1 loops=$([Environment]::ProcessorCount) released=0 idle=0"
        ($r.Output -join "`n") | Should -Match 'keep their TLS buffers: ETCDSECURE_TLS_KEEP_BUFFERS=1'
        # SslStream's handshake buffer stays too, as on a runtime whose SslStream this code cannot reach: still relayed directly.
        $r.Output | Should -Contain "direct=1 mode=on, each connection keeping SslStream's 8 KiB handshake buffer: ETCDSECURE_TLS_KEEP_BUFFERS=1"
    }

    It 'relays authenticated connections record by record between the two OpenSSL handles, on their event loop' {
        $before = Get-EtcdProxy $proxy.Name
        (Invoke-ViaProxy @('put', 'direct', 'yes')).ExitCode | Should -Be 0
        (Invoke-ViaProxy @('get', 'direct', '--print-value-only')).Output | Should -Contain 'yes'
        $after = Get-EtcdProxy $proxy.Name
        $after.RelayDirect | Should -Be 'on'
        $after.TotalConnections - $before.TotalConnections | Should -BeGreaterOrEqual 2
        $after.DirectRelays - $before.DirectRelays | Should -Be ($after.TotalConnections - $before.TotalConnections)
    }

    It 'relays thousands of one-byte records intact, more than one turn of its loop takes at once' {
        # 100 pipelined requests for etcd's /version, each byte a TLS record of its own (SslStream makes one per write),
        # corked so that they leave in 64 KiB segments: one receive brings the relay far more records than it relays in
        # one turn, and the rest waits in OpenSSL for the next.
        $before = (Get-EtcdProxy $proxy.Name).DirectRelays
        $conn = Connect-Tls $port
        try {
            $conn.Tcp.Client.SetRawSocketOption(6, 3, [BitConverter]::GetBytes(1)) # IPPROTO_TCP, TCP_CORK
            foreach ($b in [Text.Encoding]::ASCII.GetBytes("GET /version HTTP/1.1`r`nHost: localhost`r`n`r`n" * 100)) { $conn.Ssl.WriteByte($b) }
            $conn.Tcp.Client.SetRawSocketOption(6, 3, [BitConverter]::GetBytes(0))
            Read-UntilSeen $conn.Ssl '"etcdserver":"3.' 100 | Should -Be 100 -Because 'a lost byte breaks the client''s TLS stream, and the answers stop short'
        }
        finally { $conn.Ssl.Dispose(); $conn.Tcp.Dispose() }
        (Get-EtcdProxy $proxy.Name).DirectRelays | Should -Be ($before + 1)
    }

    It 'carries on through a TLS 1.3 key update that the client asks both sides for, on the direct path' {
        # 'K' makes openssl s_client send a KeyUpdate that also asks the proxy to update its keys: the record has no
        # application data, and the proxy's answer is a record of its own on the client's side.
        $before = (Get-EtcdProxy $proxy.Name).DirectRelays
        # s_client takes command letters only without -ign_eof; the loop at the end keeps its input open until etcd
        # has answered and closed (Connection: close) and s_client said so, 10 s at most.
        $outFile = Join-Path $TestDrive 'key-update.txt'
        & bash -c '{ printf "K\n"; sleep 0.5; printf "GET /version HTTP/1.1\nHost: localhost\nConnection: close\n\n"; for i in $(seq 100); do grep -qx closed "$1" && break; sleep 0.1; done; } | timeout 20 openssl s_client "${@:2}" > "$1" 2>&1' -- `
            $outFile -connect "127.0.0.1:$port" -tls1_3 -crlf -CAfile $edge.Path -cert $user.Path -key $user.KeyPath
        $text = Get-Content $outFile -Raw
        $text | Should -Match 'KEYUPDATE'
        $text | Should -Match '"etcdserver":"3\.'
        # etcd's close_notify is passed on: the client's TLS stream ends cleanly, not on a bare TCP end.
        $text | Should -Not -Match 'unexpected eof'
        $text | Should -Match '(?m)^closed$'
        (Get-EtcdProxy $proxy.Name).DirectRelays | Should -Be ($before + 1)
    }

    It 'never renegotiates: a TLS 1.2 client''s second ClientHello gets no second handshake, <Path>' -ForEach @(
        @{ Path = 'relayed directly' }, @{ Path = 'relayed through the streams' }
    ) {
        $target = $port
        $streams = $null
        if ($Path -like '*streams') {
            $streams = Start-StreamsProxy renegotiation-streams
            $target = ([uri]$streams.Endpoint).Port
        }
        try {
            # 'R' makes openssl s_client ask for a renegotiation; -msg shows every handshake message either way.
            $out = & bash -c '{ printf "R\n"; sleep 0.5; printf "GET /version HTTP/1.1\nHost: localhost\nConnection: close\n\n"; sleep 2; } 2>/dev/null | timeout 20 openssl s_client "$@" 2>&1' -- `
                -connect "127.0.0.1:$target" -tls1_2 -crlf -msg -CAfile $edge.Path -cert $user.Path -key $user.KeyPath
            $text = $out -join "`n"
            $text | Should -Match 'RENEGOTIATING'
            ([regex]::Matches($text, '>>> TLS 1.2, Handshake \[length [0-9a-f]+\], ClientHello')).Count | Should -Be 2
            ([regex]::Matches($text, '(?m)<<< TLS 1.2, Handshake \[length [0-9a-f]+\], ServerHello$')).Count | Should -Be 1
            # Relayed directly, OpenSSL answers with a no_renegotiation alert; SslStream just never answers.
            if ($Path -eq 'relayed directly') { $text | Should -Match 'no_renegotiation' }
        }
        finally { if ($streams) { Stop-EtcdProxy $streams.Name } }
    }

    It 'ends a relayed connection at once when its client sends a record that does not decrypt, and serves on, <Path>' -ForEach @(
        @{ Path = 'relayed directly' }, @{ Path = 'relayed through the streams' }
    ) {
        $name = $proxy.Name
        $target = $port
        $streams = $null
        if ($Path -like '*streams') {
            $streams = Start-StreamsProxy garbage-streams
            $name = $streams.Name
            $target = ([uri]$streams.Endpoint).Port
        }
        try {
            $idle = (Get-EtcdProxy $name).RelayedConnections
            $direct = (Get-EtcdProxy $name).DirectRelays
            $conn = Connect-Tls $target
            try {
                # A request first, so that the member connection is up and the relay has taken the connection over.
                Send-Text $conn "GET /version HTTP/1.1`r`nHost: localhost`r`n`r`n"
                $buf = [byte[]]::new(4096)
                [Text.Encoding]::ASCII.GetString($buf, 0, $conn.Ssl.Read($buf, 0, $buf.Length)) | Should -Match '^HTTP/1.1 200'
                (Get-EtcdProxy $name).RelayedConnections | Should -Be ($idle + 1)
                # An application-data record of the right shape whose contents are not this session's: it cannot decrypt.
                $raw = $conn.Tcp.GetStream()
                $record = [byte[]](@(0x17, 0x03, 0x03, 0x00, 0x40) + @(0x41) * 64)
                $raw.Write($record, 0, $record.Length)
                $sw = [Diagnostics.Stopwatch]::StartNew()
                $ended = try { while ($raw.Read($buf, 0, $buf.Length) -gt 0) { }; $true } catch [IO.IOException] { $sw.Elapsed.TotalSeconds -lt 9 }
                $ended | Should -BeTrue -Because 'the proxy ends the connection (the read timeout is 10 s)'
                $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
            }
            finally { $conn.Ssl.Dispose(); $conn.Tcp.Dispose() }
            Wait-Until -Timeout '00:00:05' -Because 'the connection and its member side to be gone' { (Get-EtcdProxy $name).RelayedConnections -eq $idle }
            $expected = if ($Path -eq 'relayed directly') { $direct + 1 } else { 0 }
            (Get-EtcdProxy $name).DirectRelays | Should -Be $expected
            # The relay thread that met the record goes on serving everyone else.
            $after = Connect-Tls $target
            try {
                Send-Text $after "GET /version HTTP/1.1`r`nHost: localhost`r`n`r`n"
                [Text.Encoding]::ASCII.GetString($buf, 0, $after.Ssl.Read($buf, 0, $buf.Length)) | Should -Match '^HTTP/1.1 200'
            }
            finally { $after.Ssl.Dispose(); $after.Tcp.Dispose() }
        }
        finally { if ($streams) { Stop-EtcdProxy $streams.Name } }
    }

    It 'relays through the streams, as before, when ETCDSECURE_RELAY_DIRECT=0 turns that off' {
        $r = Invoke-SwitchedProxy ETCDSECURE_RELAY_DIRECT 0 @('get via-proxy --print-value-only', 'put via-streams yes')
        $r.ExitCode | Should -Be 0
        $r.Output | Should -Contain 'yes'
        $r.Output | Should -Contain 'OK'
        $r.Output | Should -Contain "relayed=2 loops=$([Environment]::ProcessorCount) released=4 idle=0"
        $r.Output | Should -Contain 'direct=0 mode=off: ETCDSECURE_RELAY_DIRECT=0'
    }

    It 'relays on its own event loops, one per core' {
        $info = Get-EtcdProxy $proxy.Name
        $info.EventLoops | Should -Be ([Environment]::ProcessorCount)
        (Receive-Job -Id $info.JobId -Keep -Verbose 4>&1 | Out-String) | Should -Match "relaying on $([Environment]::ProcessorCount) event loop thread"
    }

    It 'still relays, through .NET''s socket engine, when ETCDSECURE_PROXY_EVENT_LOOP=0 turns the loops off' {
        $r = Invoke-SwitchedProxy ETCDSECURE_PROXY_EVENT_LOOP 0 @('get via-proxy --print-value-only', 'put via-engine yes')
        $r.ExitCode | Should -Be 0
        $r.Output | Should -Contain 'yes'
        $r.Output | Should -Contain 'OK'
        # OpenSSL's buffer calls stay off there: the socket engine may drive one SslStream from two threads at once.
        $r.Output | Should -Contain 'relayed=2 loops=0 released=0 idle=0'
        $r.Output | Should -Contain "direct=0 mode=off: only on the relay's own event loops"
        ($r.Output -join "`n") | Should -Match "relaying on .NET's socket engine: ETCDSECURE_PROXY_EVENT_LOOP=0"
        ($r.Output -join "`n") | Should -Match "keep their TLS buffers: only on the relay's own event loops"
    }
}

Describe 'Start-EtcdProxy refuses clients it should, and counts them' -Tag Integration {
    It 'refuses a client without a certificate' {
        $before = Get-Refused NoClientCertificate
        (Invoke-ViaProxy @('get', 'via-proxy') -Cert $null -Refused).ExitCode | Should -Not -Be 0
        Wait-Until -Because 'the refusal to be counted' { (Get-Refused NoClientCertificate) -gt $before }
    }

    It 'refuses a client certificate from another CA (the cluster CA is not the proxy client CA)' {
        $before = Get-Refused UntrustedClientCertificate
        (Invoke-ViaProxy @('get', 'via-proxy') -Cert $c.Client -Refused).ExitCode | Should -Not -Be 0
        Wait-Until -Because 'the refusal to be counted' { (Get-Refused UntrustedClientCertificate) -gt $before }
    }

    It 'answers plain HTTP with a 400 instead of a silent close' {
        $before = Get-Refused PlainHttp
        $tcp = [Net.Sockets.TcpClient]::new('127.0.0.1', $port)
        try {
            $s = $tcp.GetStream()
            $req = [Text.Encoding]::ASCII.GetBytes("GET /health HTTP/1.1`r`nHost: x`r`n`r`n")
            $s.Write($req, 0, $req.Length)
            $answer = [IO.StreamReader]::new($s).ReadToEnd()
        }
        finally { $tcp.Dispose() }
        $answer | Should -Match '^HTTP/1.1 400'
        $answer | Should -Match 'HTTP request to an HTTPS server'
        # Counted once the answer is out and the connection closed, which the client may see first.
        Wait-Until -Because 'the plain HTTP client to be counted as refused' { (Get-Refused PlainHttp) -gt $before }
    }
}

Describe 'Start-EtcdProxy bounds connections in time and number, and passes half-closes on' -Tag Integration {
    BeforeAll {
        $tight = Start-EtcdProxy -Name tight -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA -HandshakeTimeout '00:00:01' -IdleTimeout '00:00:01'
        $tightPort = ([uri]$tight.Endpoint).Port
        function Get-TightRefused([string] $Reason, [string] $Name = 'tight') { $r = (Get-EtcdProxy $Name).Refused; if ($r.Contains($Reason)) { $r[$Reason] } else { 0 } }
    }

    AfterAll {
        Get-EtcdProxy tight, bounded -ErrorAction Ignore | Stop-EtcdProxy
    }

    It 'drops a client that <Case> within the handshake timeout, and counts it' -ForEach @(
        @{ Case = 'connects and says nothing'; Opening = [byte[]]@() }
        # The first five bytes of a TLS record announcing an 80-byte ClientHello, and then nothing.
        @{ Case = 'stalls in the middle of its handshake'; Opening = [byte[]](22, 3, 1, 0, 80) }
    ) {
        $before = Get-TightRefused HandshakeTimeout
        $tcp = [Net.Sockets.TcpClient]::new('127.0.0.1', $tightPort)
        try {
            $s = $tcp.GetStream(); $s.ReadTimeout = 10000
            if ($Opening.Length) { $s.Write($Opening, 0, $Opening.Length) }
            $sw = [Diagnostics.Stopwatch]::StartNew()
            Read-ToEnd $s | Should -BeNullOrEmpty
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 8
        }
        finally { $tcp.Dispose() }
        Wait-Until -Because 'the timeout to be counted' { (Get-TightRefused HandshakeTimeout) -gt $before }
    }

    It 'closes a relayed connection that stays idle longer than -IdleTimeout' {
        $before = Get-TightRefused IdleTimeout
        $conn = Connect-Tls $tightPort
        try {
            Send-Text $conn "GET /version HTTP/1.1`r`nHost: localhost`r`n`r`n"
            $buf = [byte[]]::new(4096)
            [Text.Encoding]::ASCII.GetString($buf, 0, $conn.Ssl.Read($buf, 0, $buf.Length)) | Should -Match '^HTTP/1.1 200'
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $null = Read-ToEnd $conn.Ssl
            # The client's read timeout is 10 s: ending sooner means the proxy closed the connection.
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 8
        }
        finally { $conn.Ssl.Dispose(); $conn.Tcp.Dispose() }
        (Get-TightRefused IdleTimeout) | Should -BeGreaterThan $before
    }

    It 'passes a client''s half-close on to the member and still delivers the whole answer' {
        # Keep-alive, through the proxy without an idle timeout: the answer can only end this soon (rather than at
        # the 10 s read timeout) if etcd saw the client's end of input, passed on by the proxy, and closed in turn.
        $conn = Connect-Tls $port
        try {
            Send-Text $conn "GET /version HTTP/1.1`r`nHost: localhost`r`n`r`n"
            # close_notify and FIN: the client is done sending, but not done reading.
            $null = $conn.Ssl.ShutdownAsync().GetAwaiter().GetResult()
            $conn.Tcp.Client.Shutdown([Net.Sockets.SocketShutdown]::Send)
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $answer = Read-ToEnd $conn.Ssl
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
        }
        finally { $conn.Ssl.Dispose(); $conn.Tcp.Dispose() }
        $answer | Should -Match '^HTTP/1.1 200'
        $answer | Should -Match '"etcdserver":"3\.'
    }

    It 'refuses authenticated clients beyond -MaxConnections, and serves again once one closes' {
        $bounded = Start-EtcdProxy -Name bounded -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA -MaxConnections 1
        $port = ([uri]$bounded.Endpoint).Port
        $first = Connect-Tls $port
        try {
            Wait-Until -Because 'the first connection to be counted' { (Get-EtcdProxy bounded).RelayedConnections -eq 1 }
            $before = Get-TightRefused MaxConnections bounded
            # Counted once authenticated: the handshake may finish on the client's side, but nothing is relayed.
            $second = $null
            try {
                $second = Connect-Tls $port
                Send-Text $second "GET /version HTTP/1.1`r`nHost: localhost`r`n`r`n"
                Read-ToEnd $second.Ssl | Should -BeNullOrEmpty
            }
            catch [Management.Automation.MethodInvocationException] { $null = $_ }
            finally { if ($second) { $second.Ssl.Dispose(); $second.Tcp.Dispose() } }
            Wait-Until -Because 'the refusal to be counted' { (Get-TightRefused MaxConnections bounded) -eq $before + 1 }
        }
        finally { $first.Ssl.Dispose(); $first.Tcp.Dispose() }
        Wait-Until -Because 'the first connection to end' { (Get-EtcdProxy bounded).ActiveConnections -eq 0 }
        (Invoke-Etcdctl @('--endpoints', $bounded.Endpoint, '--cacert', $edge.Path, '--cert', $user.Path, '--key', $user.KeyPath, 'get', 'via-proxy', '--print-value-only')).Output | Should -Be 'yes'
    }

    It 'relays a 1 MiB value both ways intact' {
        $value = [Convert]::ToBase64String([Security.Cryptography.RandomNumberGenerator]::GetBytes(768KB))
        $file = Join-Path $TestDrive 'big.txt'
        [IO.File]::WriteAllText($file, $value)
        $a = @('--endpoints', $tight.Endpoint, '--cacert', $edge.Path, '--cert', $user.Path, '--key', $user.KeyPath)
        $env:ETCDCTL_API = '3'
        Get-Content $file -Raw | & etcdctl @a put big
        $LASTEXITCODE | Should -Be 0
        $back = (& etcdctl @a get big --print-value-only) -join ''
        $back.Length | Should -Be $value.Length
        $back | Should -BeExactly $value
    }
}

Describe 'Start-EtcdProxy fails over between members' -Tag Integration {
    It 'takes a killed member out of rotation within 2 s, and new requests succeed via the others' {
        $w = Start-Watch 'failover'
        try {
            Wait-Until -Because 'the watch to be connected' { @((Get-EtcdProxy $proxy.Name).Members | Where-Object ActiveConnections -GE 1).Count -ge 1 }
            $victim = ((Get-EtcdProxy $proxy.Name).Members | Where-Object ActiveConnections -GE 1 | Select-Object -First 1).Name
            Stop-EtcdMember $victim -Timeout '00:00:01'
            Wait-Until -Timeout '00:00:02' -Because "$victim to leave the rotation" { -not ((Get-EtcdProxy $proxy.Name).Members | Where-Object Name -EQ $victim).Alive }
            foreach ($i in 1..4) {
                (Invoke-ViaProxy @('put', "after-$i", 'ok')).ExitCode | Should -Be 0
                (Invoke-ViaProxy @('get', "after-$i", '--print-value-only')).Output | Should -Be 'ok'
            }
            # A probe that met the member while it shut down may have found it closing after the handshake; the ones after find the port closed.
            Wait-Until -Timeout '00:00:03' -Because "the probes to find $victim's port closed" { ((Get-EtcdProxy $proxy.Name).Members | Where-Object Name -EQ $victim).LastError -match 'refused' }
        }
        finally { Stop-TestProcess $w.Process }

        Restart-TestMember $c $victim | Out-Null
        Wait-Until -Because "$victim to return to the rotation" { ((Get-EtcdProxy $proxy.Name).Members | Where-Object Name -EQ $victim).Alive }
    }

    It 'reports a member asked for by name through the proxy as unhealthy when it is down' {
        Stop-EtcdMember n2 -Timeout '00:00:01'
        try {
            Wait-Until -Because 'n2 to leave the rotation' { -not ((Get-EtcdProxy $proxy.Name).Members | Where-Object Name -EQ n2).Alive }
            $rows = Test-EtcdClusterHealth $url -CA $edge -Certificate $user -Cluster
            ($rows | Where-Object Name -EQ n2).Healthy | Should -BeFalse
            @($rows | Where-Object Healthy).Count | Should -Be 2
        }
        finally { Restart-TestMember $c n2 | Out-Null }
    }

    It 'takes a hung member out only after two slow probes, and still tries it when no member looks alive' {
        $solo = Start-EtcdProxy -Name solo -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.ClientUrls['n1'] -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA
        # The proxy learns the other members from MemberList, so the whole cluster is paused (SIGSTOP), not one member.
        Wait-Until -Because 'solo to learn every member' { @((Get-EtcdProxy solo).Members).Count -eq 3 }
        $pids = (Get-EtcdMember n1, n2, n3).ProcessId
        kill -STOP @pids
        try {
            Wait-Until -Timeout '00:00:10' -Because 'the hung members to leave the rotation' { -not ((Get-EtcdProxy solo).Members.Alive -contains $true) }
            (Get-EtcdProxy solo).Members.LastError | Should -Match 'no TLS answer'
            $job = Start-ThreadJob -ArgumentList $solo.Endpoint, $edge.Path, $user.Path, $user.KeyPath {
                param($e, $ca, $cert, $key)
                $env:ETCDCTL_API = '3'
                & etcdctl --endpoints $e --cacert $ca --cert $cert --key $key --dial-timeout 8s --command-timeout 12s get via-proxy --print-value-only 2>&1
            }
            Wait-Until -Because 'the client to be relayed to a member thought down' { ((Get-EtcdProxy solo).Members | Measure-Object TotalConnections -Sum).Sum -ge 1 }
        }
        finally { kill -CONT @pids }
        ($job | Wait-Job -Timeout 30 | Receive-Job) | Should -Be 'yes'
        (Get-EtcdProxy solo).Refused.Contains('NoLiveMember') | Should -BeFalse
        Stop-EtcdProxy solo
    }
}

Describe 'Proxies in one session: names, jobs, errors, stop' -Tag Integration {
    It 'runs several proxies side by side under their own names' {
        $second = Start-EtcdProxy -Name second -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA
        (Get-EtcdProxy).Name | Should -Contain 'second'
        (Get-EtcdProxy).Name | Should -Contain $proxy.Name
        (Test-EtcdClusterHealth $second.Endpoint -CA $edge -Certificate $user).Healthy | Should -BeTrue
        Stop-EtcdProxy second
        (Get-EtcdProxy second).State | Should -Be 'Stopped'
    }

    It 'completes proxy and member names on Tab' {
        (TabExpansion2 -inputScript 'Get-EtcdProxy etcd-p' -cursorColumn 20).CompletionMatches.CompletionText | Should -Contain $proxy.Name
        (TabExpansion2 -inputScript 'Stop-EtcdMember n' -cursorColumn 17).CompletionMatches.CompletionText | Should -Contain 'n1'
        (TabExpansion2 -inputScript 'New-EtcdCertificate -Profile Pe' -cursorColumn 31).CompletionMatches.CompletionText | Should -Contain 'Peer'
    }

    It 'stops proxies piped from Get-EtcdProxy' {
        $null = Start-EtcdProxy -Name piped -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA
        $stopped = Get-EtcdProxy piped | Stop-EtcdProxy -PassThru
        $stopped.Name | Should -Be 'piped'
        $stopped.State | Should -Be 'Stopped'
    }

    It 'fails with PortInUse on a taken port, and leaves no job behind' {
        $jobs = @(Get-Job).Count
        $e = Get-ThrownError { Start-EtcdProxy -Name clash -Listen $url -Endpoint $c.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA }
        $e.FullyQualifiedErrorId | Should -Match '^PortInUse,'
        $e.CategoryInfo.Category | Should -Be 'ResourceUnavailable'
        @(Get-Job).Count | Should -Be $jobs
        Get-EtcdProxy clash -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'refuses a second proxy with a running name' {
        $e = Get-ThrownError { Start-EtcdProxy -Name $proxy.Name -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -CA $c.CA -UpstreamCertificate $c.Node -SingleIdentity }
        $e.FullyQualifiedErrorId | Should -Match '^ProxyAlreadyRunning,'
    }

    It 'checks its certificates before starting' {
        $e = Get-ThrownError { Start-EtcdProxy -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $user -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA }
        $e.FullyQualifiedErrorId | Should -Match '^ProxyCertificateInvalid,'
        $e.Exception.Message | Should -Match 'server auth'
        $e.Exception.Message | Should -Match 'does not cover the IP address 127.0.0.1'
        $e = Get-ThrownError { Start-EtcdProxy -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -CA $edge -UpstreamCertificate $edge -SingleIdentity }
        $e.FullyQualifiedErrorId | Should -Match '^ProxyCertificateInvalid,'
        $e.Exception.Message | Should -Match "is a CA certificate.*upstream certificate"
    }

    It 'fails with ProxyNoLiveMember, saying why, when no member can be used (here: members from another CA)' {
        $e = Get-ThrownError { Start-EtcdProxy -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -CA $edge -UpstreamCertificate $user -SingleIdentity }
        $e.FullyQualifiedErrorId | Should -Match '^ProxyNoLiveMember,'
        $e.Exception.Message | Should -Match 'server certificate does not chain to the given CA'
        $e.CategoryInfo.Category | Should -Be 'ConnectionError'
        Get-EtcdProxy | Where-Object State -EQ 'Running' | ForEach-Object Name | Should -Not -Contain 'etcd-proxy-2'
    }

    It 'fails with ProxyNoMembers when no peer URL answers' {
        $e = Get-ThrownError { Start-EtcdProxy -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -PeerUrl "https://127.0.0.1:$(Get-FreeTcpPort)" -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA }
        $e.FullyQualifiedErrorId | Should -Match '^ProxyNoMembers,'
        $e.CategoryInfo.Category | Should -Be 'ConnectionError'
    }

    It 'shows what it would do with -WhatIf and starts nothing' {
        $free = Get-FreeTcpPort
        Start-EtcdProxy -Name whatif -Listen "https://127.0.0.1:$free" -Endpoint $c.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA -WhatIf | Should -BeNullOrEmpty
        Get-EtcdProxy whatif -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'stops with Stop-Job too, releases its port, and keeps its log for Receive-Job' {
        $p = Start-EtcdProxy -Name bystopjob -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $c.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCertificate $c.Node -SingleIdentity -UpstreamCA $c.CA
        $p.Endpoint -match ':(\d+)$' | Should -BeTrue
        $portOfP = [int]$Matches[1]
        Stop-Job -Id $p.JobId
        (Get-Job -Id $p.JobId).State | Should -Be 'Stopped'
        (Get-EtcdProxy bystopjob).State | Should -Be 'Stopped'
        $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, $portOfP)
        { $l.Start() } | Should -Not -Throw
        $l.Stop()
        $log = Receive-Job -Id $p.JobId 6>&1 3>&1 | ForEach-Object { "$_" }
        ($log -join "`n") | Should -Match 'listening on'
        ($log -join "`n") | Should -Match 'stopped after'
    }

    It 'runs in the foreground with -Wait until SIG<Signal>, then releases its port' -ForEach @(
        @{ Signal = 'INT' }   # Ctrl+C
        @{ Signal = 'TERM' }  # how a service manager stops a service
    ) {
        $free = Get-FreeTcpPort
        $script = "Import-Module '$script:ModuleManifest'; Start-EtcdProxy -Wait -Listen https://127.0.0.1:$free -Endpoint $($c.Endpoints -join ',') -Certificate '$($serving.Path)' -ClientCA '$($edge.Path)' -UpstreamCertificate '$($c.Node.Path)' -SingleIdentity -UpstreamCA '$($c.CA.Path)' -InformationAction Continue"
        $pwsh = Get-PwshCommand; $exe = $pwsh.Path; $prefix = $pwsh.Arguments
        # With SIGINT at its default action whatever this run inherited: a shell starts background jobs with SIGINT
        # ignored, their children inherit that, and a process that starts with SIGINT ignored never sees Ctrl+C.
        $psi = [Diagnostics.ProcessStartInfo]::new('env')
        foreach ($a in @('--default-signal=INT', $exe) + $prefix + @('-NoProfile', '-Command', $script)) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true
        $fg = [Diagnostics.Process]::Start($psi)
        try {
            Wait-Until -Timeout '00:00:30' -Because 'the foreground proxy to serve' { (Test-EtcdClusterHealth "https://127.0.0.1:$free" -CA $edge -Certificate $user -Timeout '00:00:01').Healthy }
            kill "-$Signal" $fg.Id
            $fg.WaitForExit(15000) | Should -BeTrue
            # A clean stop for a service manager; after Ctrl+C pwsh may report the stopped pipeline instead.
            if ($Signal -eq 'TERM') { $fg.ExitCode | Should -Be 0 }
            $fg.StandardOutput.ReadToEnd() | Should -Match 'listening on'
            $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, $free)
            { $l.Start() } | Should -Not -Throw
            $l.Stop()
        }
        finally { Stop-TestProcess $fg }
    }
}
