# The proxy as the cluster's security boundary, tried the way an attacker on loopback would: real clients (etcdctl,
# openssl s_client, raw sockets), a real one-member TLS cluster behind it, and every refusal counted.
BeforeDiscovery {
    # The grpc-js client stack, where build.ps1 bootstrap could install it (it needs node and npm).
    $hasGrpcJs = Test-Path (Join-Path $PSScriptRoot '../../.tools/node/node_modules/etcd3')
}

BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $c = New-TestCluster -Root (Join-Path $TestDrive 'cluster') -Names s1

    # The proxy's clients have their own CA, which the member does not trust.
    $edgeDir = Join-Path $TestDrive 'edge'
    $edge = New-EtcdCA -Path $edgeDir -CommonName edge-ca
    $serving = $edge | New-EtcdCertificate -Profile Server -CommonName etcd-proxy -Hosts localhost, 127.0.0.1
    $user = $edge | New-EtcdCertificate -Profile Client -CommonName root
    $alice = $edge | New-EtcdCertificate -Profile Client -CommonName alice
    # A peer certificate of the client CA allows client auth too: a client unless -AllowedClient says otherwise.
    $peerOfEdge = $edge | New-EtcdCertificate -Profile Peer -CommonName etcd-member -Hosts 127.0.0.1

    function Start-TestProxy([string] $Name, [hashtable] $With = @{}) {
        $p = @{
            Name = $Name; Listen = "https://127.0.0.1:$(Get-FreeTcpPort)"; Endpoint = $c.Endpoints
            Certificate = $serving; ClientCA = $edge; UpstreamCertificate = $c.Node; UpstreamCA = $c.CA; SingleIdentity = $true
        }
        foreach ($k in $With.Keys) { $p[$k] = $With[$k] }
        Start-EtcdProxy @p
    }
    function Invoke-Via($Proxy, [string[]] $Arguments, $Cert = $user, [switch] $Refused) {
        Invoke-EtcdctlThrough $Proxy.Endpoint $edge.Path $Cert $Arguments -Refused:$Refused
    }
    function Get-Refused($Proxy, [string] $Reason) { $r = (Get-EtcdProxy $Proxy.Name).Refused; if ($r.Contains($Reason)) { $r[$Reason] } else { 0 } }
    function Invoke-SClient([int] $Port, [string[]] $Options) {
        # openssl's own client, with the proxy-side user certificate; stdin closed, so it ends after the handshake.
        $out = $null | & openssl s_client -connect "127.0.0.1:$Port" -brief -CAfile $edge.Path -cert $user.Path -key $user.KeyPath @Options 2>&1
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($out | ForEach-Object { "$_" }) -join "`n" }
    }
    function New-OpenSslCertificate([string] $Dir, [string] $Name, [string] $Subject, [string] $Extensions, [string] $IssuerCert, [string] $IssuerKey) {
        # A certificate made outside the module, for shapes it would never issue (an AIA pointing at a listener, say).
        $null = New-Item -ItemType Directory -Force $Dir
        $key = Join-Path $Dir "$Name-key.pem"; $cert = Join-Path $Dir "$Name.pem"; $ext = Join-Path $Dir "$Name.ext"
        Set-Content $ext $Extensions
        if ($IssuerCert) {
            $csr = Join-Path $Dir "$Name.csr"
            & openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $key -out $csr -subj $Subject 2>&1 | Out-Null
            & openssl x509 -req -in $csr -CA $IssuerCert -CAkey $IssuerKey -CAcreateserial -out $cert -days 2 -extfile $ext 2>&1 | Out-Null
        }
        else {
            $add = $Extensions -split "`n" | ForEach-Object { '-addext'; $_ }
            & openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $key -out $cert -subj $Subject -days 2 @add 2>&1 | Out-Null
        }
        $LASTEXITCODE | Should -Be 0
        [pscustomobject]@{ Path = $cert; KeyPath = $key }
    }
}

AfterAll {
    Stop-TestCluster
    Get-Job | Where-Object PSJobTypeName -EQ 'EtcdProxy' | Remove-Job -Force
}

Describe 'Start-EtcdProxy: nothing a client sends before authentication reaches the network or stalls the relay' -Tag Integration, Security {
    BeforeAll {
        $proxy = Start-TestProxy aia
        # What the rogue certificate's AIA extension points at: a listener that accepts and never answers, as a
        # tarpit would. A proxy that follows AIA connects here and waits.
        $tarpit = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
        $tarpit.Start()
        $tarpitPort = $tarpit.LocalEndpoint.Port
        $rogueDir = Join-Path $TestDrive 'rogue'
        $rogueCA = New-OpenSslCertificate $rogueDir rogue-ca '/CN=rogue-ca' "basicConstraints=critical,CA:TRUE`nkeyUsage=critical,keyCertSign,cRLSign"
        $rogue = New-OpenSslCertificate $rogueDir rogue '/CN=root' "extendedKeyUsage=clientAuth`nauthorityInfoAccess=caIssuers;URI:http://127.0.0.1:$tarpitPort/issuer.crt" $rogueCA.Path $rogueCA.KeyPath
    }
    AfterAll { $tarpit.Stop() }

    It 'never fetches the issuer named in a client certificate''s AIA, and authenticated writes go on at full speed meanwhile' {
        $before = Get-Refused $proxy UntrustedClientCertificate
        $port = ([uri]$proxy.Endpoint).Port
        $attackers = 1..4 | ForEach-Object {
            Start-Process openssl -PassThru -RedirectStandardOutput (Join-Path $TestDrive "attack-$_.txt") -RedirectStandardError (Join-Path $TestDrive "attack-$_.err") `
                -ArgumentList @('s_client', '-connect', "127.0.0.1:$port", '-cert', $rogue.Path, '-key', $rogue.KeyPath, '-CAfile', $edge.Path, '-tls1_2')
        }
        try {
            foreach ($i in 1..5) {
                $sw = [Diagnostics.Stopwatch]::StartNew()
                (Invoke-Via $proxy @('put', "during-attack-$i", 'ok')).ExitCode | Should -Be 0
                # A stalled relay showed as writes of 5 to 10 s each; a healthy one answers in well under a second.
                $sw.Elapsed.TotalSeconds | Should -BeLessThan 1
            }
            Wait-Until -Because 'the four rogue handshakes to be refused' { (Get-Refused $proxy UntrustedClientCertificate) -ge $before + 4 }
        }
        finally { $attackers | ForEach-Object { Stop-TestProcess $_ } }
        $tarpit.Pending() | Should -BeFalse -Because 'the proxy must not connect to the address in the AIA extension'
    }

    It 'accepts a client whose certificate comes from an intermediate CA of the client CA, sent along in the handshake' {
        $dir = Join-Path $TestDrive 'intermediate'
        $caKey = $edge.Path -replace '\.pem$', '-key.pem'
        $mid = New-OpenSslCertificate $dir mid '/CN=edge-intermediate' "basicConstraints=critical,CA:TRUE,pathlen:0`nkeyUsage=critical,keyCertSign,cRLSign" $edge.Path $caKey
        $leaf = New-OpenSslCertificate $dir leaf '/CN=root' "extendedKeyUsage=clientAuth" $mid.Path $mid.KeyPath
        $bundle = Join-Path $dir 'leaf-chain.pem'
        Set-Content $bundle ((Get-Content $leaf.Path -Raw) + (Get-Content $mid.Path -Raw)) -NoNewline
        $r = Invoke-Etcdctl @('--endpoints', $proxy.Endpoint, '--cacert', $edge.Path, '--cert', $bundle, '--key', $leaf.KeyPath, '--dial-timeout', '3s', 'put', 'via-intermediate', 'yes')
        $r.ExitCode | Should -Be 0 -Because $r.Output
    }
}

Describe 'Start-EtcdProxy: unauthenticated connections cannot lock authenticated clients out, and a crowd is not an attack' -Tag Integration, Security {
    BeforeAll {
        Add-Type -Path (Join-Path $PSScriptRoot 'helpers/TlsBurst.cs')
        # The grpc-js client stack, where build.ps1 bootstrap could install it (it needs node and npm).
        $grpcJs = Get-Item (Join-Path $PSScriptRoot '../../.tools/node/node_modules/etcd3') -ErrorAction Ignore
        # SslStream needs a key it can use on every platform: a PKCS#12 round trip makes the PEM key one.
        $pem = [Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($user.Path, $user.KeyPath)
        $userCert = [Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadPkcs12($pem.Export('Pkcs12'), $null)
        function Invoke-Burst($Proxy, [int] $Clients, [string] $Source = '127.0.0.1') {
            [EtcdSecureTests.TlsBurst]::Run($Source, ([uri]$Proxy.Endpoint).Port, $Clients, $userCert, $edge.Path, 60000)
        }
        function Open-Silent([int] $Port, [int] $Count, [string] $Source) {
            $list = [Collections.Generic.List[Net.Sockets.Socket]]::new()
            foreach ($i in 1..$Count) {
                $s = [Net.Sockets.Socket]::new([Net.Sockets.SocketType]::Stream, [Net.Sockets.ProtocolType]::Tcp)
                $s.Bind([Net.IPEndPoint]::new([Net.IPAddress]::Parse($Source), 0))
                $s.Connect('127.0.0.1', $Port)
                $list.Add($s)
            }
            , $list
        }
        function Test-ClosedByPeer([Net.Sockets.Socket] $S) {
            if (-not $S.Poll(0, [Net.Sockets.SelectMode]::SelectRead)) { return $false }
            try { $S.Receive([byte[]]::new(1)) -eq 0 } catch [Net.Sockets.SocketException] { $true }
        }
    }

    It 'lets a burst of <Clients> clients from one address in, every one, with the default caps' -TestCases @(@{ Clients = 256 }, @{ Clients = 1024 }) {
        $proxy = Start-TestProxy "crowd-$Clients"
        try {
            $r = Invoke-Burst $proxy $Clients
            $r.Failed | Should -Be 0 -Because ($r.Errors -join '; ')
            $r.Ok | Should -Be $Clients
            (Get-EtcdProxy $proxy.Name).RefusedConnections | Should -Be 0
            Write-Host "    $Clients TLS clients from one address, all relaying after $($r.LastMs) ms"
        }
        finally { Stop-EtcdProxy $proxy.Name }
    }

    It 'lets a burst of <Clients> grpc-js etcd clients (the etcd3 package) from one address in, every one' -TestCases @(@{ Clients = 256 }, @{ Clients = 1024 }) -Skip:(-not $hasGrpcJs) {
        $proxy = Start-TestProxy "grpcjs-$Clients"
        try {
            $env:NODE_PATH = Split-Path $grpcJs
            $line = node (Join-Path $PSScriptRoot '../node/grpcjs-burst.js') $proxy.Endpoint $Clients $edge.Path $user.Path $user.KeyPath 2>$null
            $r = $line | Select-Object -Last 1 | ConvertFrom-Json
            $r.failed | Should -Be 0 -Because "$($r.errors | ConvertTo-Json -Compress); the proxy refused $((Get-EtcdProxy $proxy.Name).Refused | ConvertTo-Json -Compress)"
            $r.ok | Should -Be $Clients
            (Get-EtcdProxy $proxy.Name).RefusedConnections | Should -Be 0
            Write-Host "    $Clients grpc-js etcd clients from one address, all answered after $($r.lastMs) ms"
        }
        finally { Remove-Item Env:NODE_PATH -ErrorAction Ignore; Stop-EtcdProxy $proxy.Name }
    }

    It 'lets a burst of 256 openssl handshakes from one address in, every one' {
        $proxy = Start-TestProxy crowd-openssl
        try {
            $port = ([uri]$proxy.Endpoint).Port
            $script = "fail=0; for i in `$(seq 256); do openssl s_client -connect 127.0.0.1:$port -CAfile '$($edge.Path)' -cert '$($user.Path)' -key '$($user.KeyPath)' -verify_return_error </dev/null >/dev/null 2>&1 & done; for j in `$(jobs -p); do wait `$j || fail=`$((fail+1)); done; echo failed=`$fail"
            bash -c $script | Should -Be 'failed=0'
            (Get-EtcdProxy crowd-openssl).RefusedConnections | Should -Be 0
            (Get-EtcdProxy crowd-openssl).TotalConnections | Should -Be 256
        }
        finally { Stop-EtcdProxy crowd-openssl }
    }

    It 'lets 256 clients from 127.0.0.1 in while 127.0.0.2 holds 3,000 connections that never say anything' {
        $proxy = Start-TestProxy flood @{ MaxConnections = 2000 }
        $idle = Open-Silent ([uri]$proxy.Endpoint).Port 3000 '127.0.0.2'
        try {
            Wait-Until -Because 'the proxy to have taken the flood in' { $i = Get-EtcdProxy flood; $i.PendingHandshakes + $i.WaitingHandshakes + $i.RefusedConnections -ge 3000 }
            # One address handshakes in at most its own share of places: the flood cannot take them all.
            (Get-EtcdProxy flood).PendingHandshakes | Should -BeLessOrEqual 128
            $r = Invoke-Burst $proxy 256
            $r.Failed | Should -Be 0 -Because ($r.Errors -join '; ')
            foreach ($i in 1..3) { (Invoke-Via $proxy @('put', "flood-$i", 'ok')).ExitCode | Should -Be 0 }
            Get-Refused $proxy MaxConnections | Should -Be 0
        }
        finally { foreach ($s in $idle) { $s.Dispose() } }
        Stop-EtcdProxy flood
    }

    It 'lets a 256-client burst in from the very address that holds 1,000 silent connections, and sheds the silent ones' {
        $proxy = Start-TestProxy sameflood
        $idle = Open-Silent ([uri]$proxy.Endpoint).Port 1000 '127.0.0.1'
        try {
            Wait-Until -Because 'the proxy to hold the silent connections' { $i = Get-EtcdProxy sameflood; $i.PendingHandshakes + $i.WaitingHandshakes -ge 1000 }
            # Newcomers that come while the silent ones are younger than a second wait, and take their places as
            # soon as they are older: no client of the burst is refused either way.
            $r = Invoke-Burst $proxy 256
            $r.Failed | Should -Be 0 -Because ($r.Errors -join '; ')
            Get-Refused $proxy PendingPerAddressLimit | Should -BeGreaterOrEqual 256
            @($idle | Where-Object { Test-ClosedByPeer $_ }).Count | Should -BeGreaterOrEqual 256
        }
        finally { foreach ($s in $idle) { $s.Dispose() } }
        Stop-EtcdProxy sameflood
    }

    It 'sheds a silent pending handshake for a newcomer when the total cap is full, and lets the newcomer in' {
        $proxy = Start-TestProxy pendingcap @{ MaxPendingHandshakes = 3; MaxPendingPerAddress = 100; HandshakeTimeout = '3s' }
        $port = ([uri]$proxy.Endpoint).Port
        $idle = foreach ($i in 1..3) { [Net.Sockets.TcpClient]::new('127.0.0.1', $port) }
        try {
            Wait-Until -Because 'three pending handshakes' { (Get-EtcdProxy pendingcap).PendingHandshakes -eq 3 }
            (Invoke-Via $proxy @('put', 'newcomer', 'in')).ExitCode | Should -Be 0
            Get-Refused $proxy PendingLimit | Should -BeGreaterOrEqual 1
            # The first idle connection was the oldest silent one: the proxy closed it (with a reset), the newest is still open.
            $idle[0].Client.Poll(5000000, [Net.Sockets.SelectMode]::SelectRead) | Should -BeTrue
            Test-ClosedByPeer $idle[0].Client | Should -BeTrue
            $idle[2].Client.Poll(0, [Net.Sockets.SelectMode]::SelectRead) | Should -BeFalse
        }
        finally { $idle | ForEach-Object { $_.Dispose() } }
        Stop-EtcdProxy pendingcap
    }

    It 'sheds the client that stalls mid-handshake, not an older one that is slowly but surely sending its hello' {
        $proxy = Start-TestProxy progress @{ MaxPendingHandshakes = 2; MaxPendingPerAddress = 100; HandshakeTimeout = '4s' }
        $port = ([uri]$proxy.Endpoint).Port
        # Older, and making progress: one byte of its ClientHello every 40 ms.
        $slow = [EtcdSecureTests.SlowClients]::Trickle($port, 40)
        Wait-Until -Because 'the slow client to be pending' { (Get-EtcdProxy progress).PendingHandshakes -eq 1 }
        # Younger, and stalled: a whole ClientHello, then no answer to the proxy's.
        $stalled = [EtcdSecureTests.SlowClients]::Stalled($port)
        try {
            Wait-Until -Because 'both to be pending' { (Get-EtcdProxy progress).PendingHandshakes -eq 2 }
            (Invoke-Via $proxy @('put', 'progress', 'wins')).ExitCode | Should -Be 0
            Get-Refused $proxy PendingLimit | Should -Be 1
            $stalled.Poll(5000000, [Net.Sockets.SelectMode]::SelectRead) | Should -BeTrue
            # What the stalled client can still read is the proxy's half of the handshake; then the connection ends.
            $buffer = [byte[]]::new(16384)
            $ended = $false
            for ($i = 0; $i -lt 10 -and -not $ended; $i++) { try { $ended = $stalled.Receive($buffer) -eq 0 } catch [Net.Sockets.SocketException] { $ended = $true } }
            $ended | Should -BeTrue
            Test-ClosedByPeer $slow | Should -BeFalse
        }
        finally { $slow.Dispose(); $stalled.Dispose() }
        Stop-EtcdProxy progress
    }

    It 'lets a newcomer that finds every place busy wait for its turn instead of refusing it' {
        $proxy = Start-TestProxy waits @{ MaxPendingHandshakes = 1; MaxPendingPerAddress = 100 }
        $port = ([uri]$proxy.Endpoint).Port
        $slow = [EtcdSecureTests.SlowClients]::Trickle($port, 40)
        try {
            Wait-Until -Because 'the slow client to take the only place' { (Get-EtcdProxy waits).PendingHandshakes -eq 1 }
            # Busy, not idle: nobody may be shed, so the newcomer waits, and gets in when the slow one ends.
            $job = Start-ThreadJob -ArgumentList $proxy.Endpoint, $edge.Path, $user.Path, $user.KeyPath {
                param($Endpoint, $Ca, $Cert, $Key)
                $env:ETCDCTL_API = '3'
                & etcdctl --endpoints $Endpoint --cacert $Ca --cert $Cert --key $Key --dial-timeout 8s --command-timeout 9s put waited yes 2>&1
                "exit=$LASTEXITCODE"
            }
            Wait-Until -Because 'the newcomer to wait' { (Get-EtcdProxy waits).WaitingHandshakes -ge 1 }
            $slow.Dispose()
            ($job | Wait-Job -Timeout 20 | Receive-Job) | Should -Contain 'exit=0'
            Get-Refused $proxy PendingLimit | Should -Be 0
        }
        finally { $slow.Dispose(); Get-Job | Where-Object PSJobTypeName -EQ ThreadJob | Remove-Job -Force }
        Stop-EtcdProxy waits
    }
}

Describe 'Start-EtcdProxy: only the clients it should let in' -Tag Integration, Security {
    It 'lets in only the names -AllowedClient matches; other certificates of the client CA are ClientNotAllowed' {
        $proxy = Start-TestProxy allowlist @{ AllowedClient = 'root', 'svc-*' }
        (Invoke-Via $proxy @('put', 'allowed', 'yes')).ExitCode | Should -Be 0
        $before = Get-Refused $proxy ClientNotAllowed
        (Invoke-Via $proxy @('get', 'allowed') -Cert $alice -Refused).ExitCode | Should -Not -Be 0
        (Invoke-Via $proxy @('get', 'allowed') -Cert $peerOfEdge -Refused).ExitCode | Should -Not -Be 0
        # etcdctl dials again after a refusal, so each refused client counts at least once.
        Get-Refused $proxy ClientNotAllowed | Should -BeGreaterOrEqual ($before + 2)
        # The proxy's own serving certificate (server profile, which carries client auth too, as etcd needs).
        (Invoke-Via $proxy @('get', 'allowed') -Cert $serving -Refused).ExitCode | Should -Not -Be 0
        Get-Refused $proxy ClientNotAllowed | Should -BeGreaterOrEqual ($before + 3)
        # A certificate for server auth alone is no client, whatever its name says.
        $serverOnly = New-OpenSslCertificate (Join-Path $TestDrive 'server-only') server-only '/CN=root' 'extendedKeyUsage=serverAuth' $edge.Path ($edge.Path -replace '\.pem$', '-key.pem')
        $untrusted = Get-Refused $proxy UntrustedClientCertificate
        (Invoke-Via $proxy @('get', 'allowed') -Cert $serverOnly -Refused).ExitCode | Should -Not -Be 0
        Get-Refused $proxy UntrustedClientCertificate | Should -BeGreaterThan $untrusted
        $log = Receive-Job -Id $proxy.JobId -Keep -Verbose 4>&1 | ForEach-Object { "$_" }
        ($log -join "`n") | Should -Match "CN=alice.*none of its names \(alice\) matches -AllowedClient root, svc-\*"
        Stop-EtcdProxy allowlist
    }

    It 'refuses a revoked client as Revoked, picking up a new CRL while it runs; PEM and DER' {
        # openssl ca keeps the revocation database; the CRL it writes is signed by the client CA.
        $crlDir = Join-Path $TestDrive 'crl'
        $null = New-Item -ItemType Directory $crlDir
        Set-Content (Join-Path $crlDir 'index.txt') '' -NoNewline
        Set-Content (Join-Path $crlDir 'crlnumber') '01'
        $cnf = Join-Path $crlDir 'ca.cnf'
        Set-Content $cnf "[ca]`ndefault_ca = edge`n[edge]`ndatabase = $crlDir/index.txt`ncrlnumber = $crlDir/crlnumber`ndefault_md = sha256`ndefault_crl_days = 7`n"
        $caArgs = @('-config', $cnf, '-cert', $edge.Path, '-keyfile', ($edge.Path -replace '\.pem$', '-key.pem'))
        $crl = Join-Path $crlDir 'crl.pem'
        & openssl ca @caArgs -gencrl -out $crl 2>&1 | Out-Null
        $LASTEXITCODE | Should -Be 0

        $proxy = Start-TestProxy crl @{ CrlPath = $crl }
        (Get-EtcdProxy crl).RevokedCertificates | Should -Be 0
        (Invoke-Via $proxy @('put', 'before-revoke', 'ok') -Cert $alice).ExitCode | Should -Be 0

        & openssl ca @caArgs -revoke $alice.Path 2>&1 | Out-Null
        & openssl ca @caArgs -gencrl -out "$crl.new" 2>&1 | Out-Null
        Move-Item "$crl.new" $crl -Force
        Wait-Until -Because 'the proxy to read the new CRL' { (Get-EtcdProxy crl).RevokedCertificates -eq 1 }
        $before = Get-Refused $proxy Revoked
        (Invoke-Via $proxy @('get', 'before-revoke') -Cert $alice -Refused).ExitCode | Should -Not -Be 0
        Get-Refused $proxy Revoked | Should -BeGreaterOrEqual ($before + 1)
        (Invoke-Via $proxy @('get', 'before-revoke', '--print-value-only')).Output | Should -Be 'ok'
        Stop-EtcdProxy crl

        $der = Join-Path $crlDir 'crl.der'
        & openssl crl -in $crl -outform DER -out $der 2>&1 | Out-Null
        $derProxy = Start-TestProxy crl-der @{ CrlPath = $der }
        (Get-EtcdProxy crl-der).RevokedCertificates | Should -Be 1
        (Invoke-Via $derProxy @('get', 'before-revoke') -Cert $alice -Refused).ExitCode | Should -Not -Be 0
        Get-Refused $derProxy Revoked | Should -BeGreaterOrEqual 1
        Stop-EtcdProxy crl-der
    }

    It 'refuses to start with a CRL that the client CA did not sign' {
        $otherDir = Join-Path $TestDrive 'other-ca'
        $other = New-EtcdCA -Path $otherDir -CommonName other-ca
        Set-Content (Join-Path $otherDir 'index.txt') '' -NoNewline
        $cnf = Join-Path $otherDir 'ca.cnf'
        Set-Content $cnf "[ca]`ndefault_ca = o`n[o]`ndatabase = $otherDir/index.txt`ndefault_md = sha256`ndefault_crl_days = 7`n"
        $foreign = Join-Path $otherDir 'crl.pem'
        & openssl ca -config $cnf -cert $other.Path -keyfile ($other.Path -replace '\.pem$', '-key.pem') -gencrl -out $foreign 2>&1 | Out-Null
        $e = Get-ThrownError { Start-TestProxy foreign-crl @{ CrlPath = $foreign } }
        $e.FullyQualifiedErrorId | Should -Match '^CrlNotTrusted,'
        $e.CategoryInfo.Category | Should -Be 'SecurityError'
        Get-EtcdProxy foreign-crl -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'will not use a member whose certificate lacks server auth' {
        # etcd itself starts with such a certificate; clients that check usages (Go's, and this proxy) refuse it.
        $clientOnly = $c.CA | New-EtcdCertificate -Profile Client -CommonName not-a-server -Hosts 127.0.0.1 -Name member-client-only
        $raw = Start-RawEtcd -Server $clientOnly -CA $c.CA -DataDir (Join-Path $TestDrive 'raw-member')
        try {
            $port = ([uri]$raw.Url).Port
            Wait-TcpListening $port -Because 'the raw member to listen'
            $e = Get-ThrownError { Start-TestProxy no-server-auth @{ Endpoint = $raw.Url } }
            $e.FullyQualifiedErrorId | Should -Match '^ProxyNoLiveMember,'
            $e.Exception.Message | Should -Match 'for server auth'
        }
        finally { Stop-TestProcess $raw.Process }
    }
}

Describe 'Start-EtcdProxy: whatever answers on a member''s port gets nothing unless it proves to be that member' -Tag Integration, Security {
    BeforeAll {
        # A member the proxies find and connect to, then stop: what listens on its port next is what they meet.
        $memberCert = $c.CA | New-EtcdCertificate -Profile Server -CommonName raw-member -Hosts 127.0.0.1 -Name impostor-good
        $raw = Start-RawEtcd -Server $memberCert -CA $c.CA -DataDir (Join-Path $TestDrive 'impostor-member')
        $memberPort = ([uri]$raw.Url).Port
        Wait-TcpListening $memberPort -Because 'the raw member to listen'
        $proxies = @{ shared = Start-TestProxy impostor-shared @{ Endpoint = $raw.Url } }
        # Proxies whose upstream certificate is renewed while they run.
        $renewed = @{}
        foreach ($context in 'shared', 'per connection') {
            $name = "renewed-upstream-$($context -replace ' ', '-')"
            $renewed[$context] = $name
            $renewed["$context cert"] = $c.CA | New-EtcdCertificate -Profile Client -CommonName "$name-before" -Name $name
        }
        $proxies['renewed shared'] = Start-TestProxy renewed-shared @{ Endpoint = $raw.Url; UpstreamCertificate = $renewed['shared cert'] }
        # The same with SslStream's own context per member connection, as where the shared one cannot be set up.
        $env:ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT = '0'
        try {
            $proxies['per connection'] = Start-TestProxy impostor-per-connection @{ Endpoint = $raw.Url }
            $proxies['renewed per connection'] = Start-TestProxy renewed-per-connection @{ Endpoint = $raw.Url; UpstreamCertificate = $renewed['per connection cert'] }
        }
        finally { Remove-Item Env:ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT }
        Stop-TestProcess $raw.Process

        $elsewhere = $c.CA | New-EtcdCertificate -Profile Server -CommonName elsewhere -Hosts 127.0.0.9 -Name impostor-elsewhere
        $clientOnly = $c.CA | New-EtcdCertificate -Profile Client -CommonName not-a-server -Hosts 127.0.0.1 -Name impostor-client-only
        function Start-Impostor($Cert, [string[]] $Options = @()) {
            # openssl's server on the member's port; with -www it answers a GET with a page about the session.
            $out = Join-Path $TestDrive "impostor-$(New-Guid).out"
            Start-Process openssl -ArgumentList (@('s_server', '-accept', $memberPort, '-cert', $Cert.Path, '-key', $Cert.KeyPath, '-www', '-quiet') + $Options) `
                -RedirectStandardOutput $out -RedirectStandardError "$out.err" -PassThru
        }
        function Invoke-ThroughImpostor($Proxy, $Cert, [string[]] $Options = @()) {
            # The session page shows only if the proxy relayed the GET.
            $server = Start-Impostor $Cert $Options
            try {
                Wait-TcpListening $memberPort -Because 'the impostor to listen'
                $port = ([uri]$Proxy.Endpoint).Port
                $answer = & bash -c 'printf "GET / HTTP/1.0\r\n\r\n" | timeout 20 openssl s_client "$@" 2>&1' -- `
                    -connect "127.0.0.1:$port" -quiet -alpn http/1.1 -CAfile $edge.Path -cert $user.Path -key $user.KeyPath
                # The member as the proxy sees it now: once the impostor is gone, a probe finds nothing listening.
                [pscustomobject]@{ Answer = ($answer | ForEach-Object { "$_" }) -join "`n"; Member = (Get-EtcdProxy $Proxy.Name).Members[0] }
            }
            finally { Stop-TestProcess $server }
        }
        $contexts = 'shared', 'per connection'
    }

    It 'connects to members on one shared TLS context, and says so; or says why each connection builds its own' {
        (Get-EtcdProxy impostor-shared).TlsUpstreamContext | Should -Be 'shared'
        (Get-EtcdProxy impostor-per-connection).TlsUpstreamContext | Should -Be 'per connection: ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT=0'
    }

    It 'relays to a server with a certificate of the cluster CA for the member''s address (the control), with a <Context> context' -ForEach @(
        foreach ($context in 'shared', 'per connection') { @{ Context = $context } }
    ) {
        (Invoke-ThroughImpostor $proxies[$Context] $memberCert).Answer | Should -Match 'HTTP/1.0 200 ok'
        # Relayed directly between the two OpenSSL handles only where the member side is the proxy's own.
        $info = Get-EtcdProxy $proxies[$Context].Name
        if ($Context -eq 'shared') { $info.DirectRelays | Should -BeGreaterThan 0 }
        else {
            $info.DirectRelays | Should -Be 0
            $info.RelayDirect | Should -Be 'on, but not for some connections: member connections are not on the shared client context'
        }
    }

    It 'presents its renewed upstream certificate on new member connections, with a <Context> context' -ForEach @(
        foreach ($context in 'shared', 'per connection') { @{ Context = $context } }
    ) {
        # With -verify openssl's server asks for a client certificate, and its page shows the one it got.
        $proxy = $proxies["renewed $Context"]
        (Invoke-ThroughImpostor $proxy $memberCert @('-verify', '1')).Answer | Should -Match "Subject: CN ?= ?$($renewed[$Context])-before"
        $reloads = (Get-EtcdProxy $proxy.Name).CertificateReloads
        $again = $c.CA | New-EtcdCertificate -Profile Client -CommonName "$($renewed[$Context])-after" -Name $renewed[$Context] -Force
        $again.Path | Should -Be $renewed["$Context cert"].Path
        Wait-Until -Because 'the proxy to reload its upstream certificate' { (Get-EtcdProxy $proxy.Name).CertificateReloads -gt $reloads }
        (Invoke-ThroughImpostor $proxy $memberCert @('-verify', '1')).Answer | Should -Match "Subject: CN ?= ?$($renewed[$Context])-after"
        # Set only while the proxy started: the reload keeps the way it connects to members.
        (Get-EtcdProxy $proxy.Name).TlsUpstreamContext | Should -Be $(if ($Context -eq 'shared') { 'shared' } else { 'per connection: ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT=0' })
    }

    It 'sends nothing to a server with <Case>, with a <Context> context, and says why' -ForEach @(
        foreach ($context in 'shared', 'per connection') {
            @{ Context = $context; Case = 'a certificate of another CA'; Cert = 'serving'; Options = @(); Why = 'does not chain to the given CA' }
            @{ Context = $context; Case = 'a certificate of the cluster CA for another address'; Cert = 'elsewhere'; Options = @(); Why = '(SAN mismatch)' }
            @{ Context = $context; Case = 'a certificate of the cluster CA without server auth'; Cert = 'clientOnly'; Options = @(); Why = 'for server auth' }
            @{ Context = $context; Case = 'TLS 1.2 without forward secrecy'; Cert = 'memberCert'; Options = @('-tls1_2', '-cipher', 'AES128-GCM-SHA256:AES256-GCM-SHA384'); Why = 'handshake failure' }
        }
    ) {
        $name = $proxies[$Context].Name
        $failures = (Get-EtcdProxy $name).Members[0].Failures
        $r = Invoke-ThroughImpostor $proxies[$Context] (Get-Variable $Cert -ValueOnly) $Options
        $r.Answer | Should -Not -Match 'HTTP/1.0 200 ok'
        $r.Answer | Should -Not -Match 's_server'
        $r.Member.Failures | Should -BeGreaterThan $failures
        $r.Member.LastError | Should -Match ([regex]::Escape($Why))
    }

    It 'takes <Case> out of rotation by its probes alone, with a <Context> context, and says why' -ForEach @(
        foreach ($context in 'shared', 'per connection') {
            @{ Context = $context; Case = 'a server with a certificate of another CA'; Cert = 'serving'; ClientsOfEdge = $false; Why = 'does not chain to the given CA' }
            # The member's own certificate, but it trusts another CA for clients: under TLS 1.3 it says so only after the
            # handshake, which is why a probe makes a request.
            @{ Context = $context; Case = 'a server that refuses the proxy''s certificate'; Cert = 'memberCert'; ClientsOfEdge = $true; Why = 'did not accept the client certificate' }
        }
    ) {
        $name = $proxies[$Context].Name
        $cert = Get-Variable $Cert -ValueOnly
        $options = if ($ClientsOfEdge) { @('-Verify', '1', '-verify_return_error', '-CAfile', $edge.Path) } else { @() }
        # No client connects here: first the probes find the port empty, so the reason below can only be theirs.
        Wait-Until -Timeout '00:00:05' -Because 'a probe to find nothing listening' { (Get-EtcdProxy $name).Members[0].LastError -match 'refused' }
        $server = Start-Impostor $cert $options
        try {
            Wait-Until -Timeout '00:00:05' -Because "a probe to meet $Case" { (Get-EtcdProxy $name).Members[0].LastError -match [regex]::Escape($Why) }
            (Get-EtcdProxy $name).Members[0].Alive | Should -BeFalse
        }
        finally { Stop-TestProcess $server }
    }

    It 'takes a member out of rotation once its certificate expires, though that very certificate passed before, with a <Context> context' -ForEach @(
        foreach ($context in 'shared', 'per connection') { @{ Context = $context } }
    ) {
        # The shared context remembers chains it found good; what it remembers must end when the certificate does.
        $short = $c.CA | New-EtcdCertificate -Profile Server -CommonName short-lived -Hosts 127.0.0.1 -Name "impostor-short-$($Context -replace ' ', '-')" -Validity '00:00:10'
        $name = $proxies[$Context].Name
        $server = Start-Impostor $short
        try {
            Wait-Until -Timeout '00:00:08' -Because 'the probes to accept the certificate while it is valid' { (Get-EtcdProxy $name).Members[0].Alive }
            (Get-Date).ToUniversalTime() | Should -BeLessThan (Get-EtcdCertificate $short.Path).NotAfter.ToUniversalTime()
            Wait-Until -Timeout '00:00:20' -Because 'the probes to find the certificate expired' { (Get-EtcdProxy $name).Members[0].LastError -match 'expired' }
            (Get-EtcdProxy $name).Members[0].Alive | Should -BeFalse
        }
        finally { Stop-TestProcess $server }
    }

    It 'refuses a member it accepted before once its CA leaves the upstream CA file, with a <Context> context' -ForEach @(
        foreach ($context in 'shared', 'per connection') { @{ Context = $context } }
    ) {
        # A proxy that trusts the client CA for members too, until that CA leaves its upstream CA file.
        $name = "narrowed-$($Context -replace ' ', '-')"
        $bundle = Join-Path $TestDrive "$name.pem"
        Set-Content $bundle ((Get-Content -Raw $c.CA.Path), (Get-Content -Raw $edge.Path)) -NoNewline
        $server = Start-Impostor $serving
        try {
            Wait-TcpListening $memberPort -Because 'the impostor to listen'
            if ($Context -eq 'per connection') { $env:ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT = '0' }
            try { $null = Start-TestProxy $name @{ Endpoint = "https://127.0.0.1:$memberPort"; UpstreamCA = $bundle } }
            finally { Remove-Item Env:ETCDSECURE_TLS_UPSTREAM_SHARED_CONTEXT -ErrorAction Ignore }
            (Get-EtcdProxy $name).Members[0].Alive | Should -BeTrue -Because 'the bundle trusts the client CA, which issued the member''s certificate'
            $reloads = (Get-EtcdProxy $name).CertificateReloads
            Copy-Item $c.CA.Path $bundle -Force
            Wait-Until -Because 'the proxy to reload its upstream CA file' { (Get-EtcdProxy $name).CertificateReloads -gt $reloads }
            Wait-Until -Timeout '00:00:05' -Because 'the probes to refuse the same certificate now' { (Get-EtcdProxy $name).Members[0].LastError -match 'does not chain to the given CA' }
            (Get-EtcdProxy $name).Members[0].Alive | Should -BeFalse
        }
        finally {
            Stop-EtcdProxy $name -ErrorAction Ignore
            Stop-TestProcess $server
        }
    }
}

Describe 'Start-EtcdProxy: TLS versions and cipher suites' -Tag Integration, Security {
    BeforeAll {
        $proxy = Start-TestProxy ciphers
        $port = ([uri]$proxy.Endpoint).Port
        # The same proxy with a TLS context built for each handshake, as where the shared one cannot be set up.
        $env:ETCDSECURE_TLS_SHARED_CONTEXT = '0'
        try { $perConnection = Start-TestProxy ciphers-per-connection } finally { Remove-Item Env:ETCDSECURE_TLS_SHARED_CONTEXT }
        $ports = @{ shared = $port; 'per connection' = ([uri]$perConnection.Endpoint).Port }
    }

    It 'sets up one shared TLS context with its suites, and says so; or says why each handshake builds its own' {
        (Get-EtcdProxy ciphers).TlsServerContext | Should -Be 'shared'
        (Get-EtcdProxy ciphers-per-connection).TlsServerContext | Should -Be 'per connection: ETCDSECURE_TLS_SHARED_CONTEXT=0'
    }

    It 'negotiates <Offer> with openssl s_client, with a <Context> context' -ForEach @(
        foreach ($context in 'shared', 'per connection') {
            @{ Context = $context; Offer = 'TLS 1.3'; Options = @('-tls1_3') }
            @{ Context = $context; Offer = 'TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256'; Options = @('-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256') }
            @{ Context = $context; Offer = 'TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305'; Options = @('-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305') }
        }
    ) {
        $r = Invoke-SClient $ports[$Context] $Options
        $r.ExitCode | Should -Be 0 -Because $r.Output
    }

    It 'refuses <Offer>, with a <Context> context' -ForEach @(
        foreach ($context in 'shared', 'per connection') {
            @{ Context = $context; Offer = 'TLS 1.2 AES-CBC (LUCKY13)'; Options = @('-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA') }
            @{ Context = $context; Offer = 'TLS 1.2 without forward secrecy'; Options = @('-tls1_2', '-cipher', 'AES128-GCM-SHA256:AES256-GCM-SHA384') }
            @{ Context = $context; Offer = 'TLS 1.1'; Options = @('-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0') }
            @{ Context = $context; Offer = 'TLS 1.0'; Options = @('-tls1', '-cipher', 'DEFAULT@SECLEVEL=0') }
        }
    ) {
        $r = Invoke-SClient $ports[$Context] $Options
        $r.ExitCode | Should -Not -Be 0 -Because $r.Output
    }

    It 'never resumes a TLS <Version> session, so every connection shows its client certificate again, with a <Context> context' -ForEach @(
        foreach ($context in 'shared', 'per connection') {
            @{ Context = $context; Version = '1.2'; Option = '-tls1_2' }
            @{ Context = $context; Version = '1.3'; Option = '-tls1_3' }
        }
    ) {
        $session = Join-Path $TestDrive "session-$($Context -replace ' ')-$Version"
        $common = @('-connect', "127.0.0.1:$($ports[$Context])", '-CAfile', $edge.Path, '-cert', $user.Path, '-key', $user.KeyPath, $Option)
        # A short wait before closing stdin lets a TLS 1.3 ticket, sent after the handshake, arrive.
        $first = & bash -c 'sleep 0.5 | openssl s_client "$@" 2>&1' -- @common -sess_out $session
        $LASTEXITCODE | Should -Be 0 -Because ($first -join "`n")
        # The shared context hands out no tickets; a context per handshake does, with a key no later one knows.
        if ($Context -eq 'shared') { ($first -join "`n") | Should -Not -Match 'TLS session ticket:' }
        # openssl keeps no session without a session id or a ticket: then there is nothing to offer again.
        if (-not (Test-Path $session)) { ($first -join "`n") | Should -Not -Match 'TLS session ticket:'; return }
        $again = & bash -c 'sleep 0.5 | openssl s_client "$@" 2>&1' -- @common -sess_in $session
        ($again -join "`n") | Should -Match '(?m)^New, ' -Because 'a session offered again is not resumed'
        ($again -join "`n") | Should -Not -Match '(?m)^Reused, '

    }

    It 'offers only the suites -CipherSuite names, and refuses an unknown name' {
        $only = Start-TestProxy chacha-only @{ CipherSuite = 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256' }
        $p = ([uri]$only.Endpoint).Port
        (Invoke-SClient $p @('-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305')).ExitCode | Should -Be 0
        (Invoke-SClient $p @('-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256')).ExitCode | Should -Not -Be 0
        (Invoke-Via $only @('put', 'chacha', 'yes')).ExitCode | Should -Be 0
        Stop-EtcdProxy chacha-only
        $e = Get-ThrownError { Start-TestProxy bad-suite @{ CipherSuite = 'RC4-MD5' } }
        $e.FullyQualifiedErrorId | Should -Match '^UnknownCipherSuite,'
        $e.TargetObject | Should -Be '-CipherSuite'
    }
}

Describe 'Start-EtcdProxy: dead and slow peers, reloads that fail, bounded logs' -Tag Integration, Security {
    BeforeAll {
        # The proxy serves a copy of its certificate and key, so the test can break the files under it.
        $live = Join-Path $TestDrive 'live'
        $null = New-Item -ItemType Directory $live
        Copy-Item $serving.Path, $serving.KeyPath $live
        $liveCert = Join-Path $live (Split-Path $serving.Path -Leaf)
        $liveKey = Join-Path $live (Split-Path $serving.KeyPath -Leaf)
        $goodKey = Get-Content $liveKey -Raw
        $proxy = Start-TestProxy robust @{ Certificate = $liveCert }
        $port = ([uri]$proxy.Endpoint).Port
    }

    It 'keeps serving with the last good key when the new one is unreadable, then half written, and takes a good one' {
        Remove-Item $liveKey
        # A directory where the key was: reading it fails with access denied, as a key readable by another user would.
        $null = New-Item -ItemType Directory $liveKey
        Wait-Until -Because 'the failed reload to be reported' { (Get-EtcdProxy robust).ReloadError -match 'serving certificate' }
        (Invoke-Via $proxy @('put', 'while-unreadable', 'ok')).ExitCode | Should -Be 0
        (Get-EtcdProxy robust).Members.Alive | Should -Be $true

        Remove-Item $liveKey
        Set-Content $liveKey $goodKey.Substring(0, 60) -NoNewline
        Wait-Until -Because 'the half-written key to be reported' { (Get-EtcdProxy robust).ReloadError -match 'serving certificate' -and (Get-EtcdProxy robust).ReloadError -notmatch 'Access' }
        (Invoke-Via $proxy @('get', 'while-unreadable', '--print-value-only')).Output | Should -Be 'ok'

        $reloads = (Get-EtcdProxy robust).CertificateReloads
        Set-Content $liveKey $goodKey -NoNewline
        Wait-Until -Because 'the good key to be loaded' { (Get-EtcdProxy robust).CertificateReloads -gt $reloads }
        (Get-EtcdProxy robust).ReloadError | Should -BeNullOrEmpty
        (Invoke-Via $proxy @('get', 'while-unreadable', '--print-value-only')).Output | Should -Be 'ok'
        # A reloaded certificate gets a TLS context of its own, set up as the first one was.
        (Get-EtcdProxy robust).TlsServerContext | Should -Be 'shared'
        (Invoke-SClient $port @('-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA')).ExitCode | Should -Not -Be 0
        $log = (Receive-Job -Id $proxy.JobId -Keep 6>&1 | ForEach-Object { "$_" }) -join "`n"
        ([regex]::Matches($log, 'cannot be loaded')).Count | Should -Be 2 -Because 'each bad change is reported once'
    }

    It 'holds at most 64 KiB for a client that stops reading, pushes back on the member, and delivers it all once the client reads' {
        # Pipelined HTTP/1.1 requests for etcd's /metrics: megabytes of answers to a client that reads none of them.
        $tcp = [Net.Sockets.TcpClient]::new()
        $tcp.ReceiveBufferSize = 4096
        $tcp.Connect('127.0.0.1', $port)
        $ssl = [Net.Security.SslStream]::new($tcp.GetStream(), $false)
        try {
            $o = [Net.Security.SslClientAuthenticationOptions]::new()
            $o.TargetHost = 'localhost'
            $o.CertificateChainPolicy = [Security.Cryptography.X509Certificates.X509ChainPolicy]::new()
            $o.CertificateChainPolicy.TrustMode = 'CustomRootTrust'
            $o.CertificateChainPolicy.RevocationMode = 'NoCheck'
            $null = $o.CertificateChainPolicy.CustomTrustStore.Add([Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPem((Get-Content $edge.Path -Raw)))
            $o.ClientCertificates = [Security.Cryptography.X509Certificates.X509CertificateCollection]::new(@([Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($user.Path, $user.KeyPath)))
            $o.ApplicationProtocols = [Collections.Generic.List[Net.Security.SslApplicationProtocol]]@([Net.Security.SslApplicationProtocol]::Http11)
            $ssl.AuthenticateAsClientAsync($o).GetAwaiter().GetResult()
            $request = [Text.Encoding]::ASCII.GetBytes(("GET /metrics HTTP/1.1`r`nHost: localhost`r`n`r`n" * 200))
            $ssl.Write($request, 0, $request.Length)
            # Stalled: what reached the client stops growing.
            $script:last = -1; $script:steady = 0
            Wait-Until -Because 'the relay to stall on the unread client' {
                $now = (Get-EtcdProxy robust).BytesToClients
                if ($now -eq $script:last -and $now -gt 0) { $script:steady++ } else { $script:steady = 0 }
                $script:last = $now
                $script:steady -ge 5
            }
            $buffered = (Get-EtcdProxy robust).BufferedBytes
            $buffered | Should -BeGreaterThan 0 -Because 'the relay is holding what the client did not take'
            $buffered | Should -BeLessOrEqual 64KB
            # The relay stopped reading the member in the middle of what it had read from its socket; nothing of that
            # may be lost (a lost byte breaks the member's TLS stream, and the connection ends short of 200 answers).
            $ssl.ReadTimeout = 20000
            Read-UntilSeen $ssl 'HTTP/1.1 200 OK' 200 | Should -Be 200 -Because 'every answer the relay held arrives, intact'
        }
        finally { $ssl.Dispose(); $tcp.Dispose() }
    }

    It 'turns on TCP keepalive on the client''s connection (and not with -TcpKeepAlive 0)' {
        $plain = Start-TestProxy no-keepalive @{ TcpKeepAlive = '0s' }
        $w1 = Start-Process etcdctl -PassThru -RedirectStandardOutput (Join-Path $TestDrive 'ka1.txt') -RedirectStandardError (Join-Path $TestDrive 'ka1.err') `
            -ArgumentList @('--endpoints', $proxy.Endpoint, '--cacert', $edge.Path, '--cert', $user.Path, '--key', $user.KeyPath, 'watch', 'ka')
        $w2 = Start-Process etcdctl -PassThru -RedirectStandardOutput (Join-Path $TestDrive 'ka2.txt') -RedirectStandardError (Join-Path $TestDrive 'ka2.err') `
            -ArgumentList @('--endpoints', $plain.Endpoint, '--cacert', $edge.Path, '--cert', $user.Path, '--key', $user.KeyPath, 'watch', 'ka')
        try {
            $plainPort = ([uri]$plain.Endpoint).Port
            Wait-Until -Because 'both watches to be relayed' { (Get-EtcdProxy robust).RelayedConnections -ge 1 -and (Get-EtcdProxy no-keepalive).RelayedConnections -ge 1 }
            $on = (& ss -tnoH state established "( sport = :$port )") -join "`n"
            $on | Should -Match 'timer:\(keepalive,'
            # The member side: this process's connections to the member (the relayed watch's among them).
            $memberPort = ([uri]$c.Endpoints[0]).Port
            $upstream = @(& ss -tnopH state established "( dport = :$memberPort )") | Where-Object { $_ -match "pid=$PID," }
            ($upstream -join "`n") | Should -Match 'timer:\(keepalive,'
            $off = (& ss -tnoH state established "( sport = :$plainPort )") -join "`n"
            $off | Should -Not -BeNullOrEmpty
            $off | Should -Not -Match 'keepalive'
        }
        finally { Stop-TestProcess $w1; Stop-TestProcess $w2 }
        Stop-EtcdProxy no-keepalive
    }

    It 'keeps the newest 1,000 log records per stream and counts what it dropped' {
        # Connections that close at once: each one is logged, as closed before its handshake or as dropped by admission.
        function Get-Closed { (Get-Refused $proxy ClosedBeforeHandshake) + (Get-Refused $proxy PendingPerAddressLimit) }
        $before = Get-Closed
        foreach ($i in 1..1100) { [Net.Sockets.TcpClient]::new('127.0.0.1', $port).Dispose() }
        Wait-Until -Because 'every connection to be counted' { (Get-Closed) -ge $before + 1100 }
        (Get-Job -Id $proxy.JobId).Verbose.Count | Should -BeLessOrEqual 1000
        (Get-EtcdProxy robust).LogRecordsDropped | Should -BeGreaterOrEqual 100
    }

    It 'says whether idle connections give OpenSSL''s buffers back' {
        (Get-EtcdProxy robust).TlsBufferRelease | Should -Be 'on' -Because 'this machine''s OpenSSL is 3.0.14 or later, the only libssl mapped, and the runtime''s own'
    }

    It 'stops cleanly after all of this' {
        { Stop-EtcdProxy robust } | Should -Not -Throw
        (Get-EtcdProxy robust).State | Should -Be 'Stopped'
    }
}
