# Test-EtcdSecurity against real etcd members started deliberately wrong, one mistake each, and against a cluster
# built the way the module builds it.
BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $pki = Join-Path $TestDrive 'pki'
    $ca = New-EtcdCA -Path $pki
    $server = $ca | New-EtcdCertificate -Profile Server -CommonName etcd-server -Hosts localhost, 127.0.0.1
    $soon = $ca | New-EtcdCertificate -Profile Server -CommonName soon -Hosts localhost, 127.0.0.1 -Validity '120h'
    $root = $ca | New-EtcdCertificate -Profile Client -CommonName root
    $script:started = [System.Collections.Generic.List[object]]::new()

    function Start-WrongEtcd([string] $Name, [string] $ClientScheme, [string] $PeerScheme, [string[]] $Extra) {
        $client = Get-FreeTcpPort; $peer = Get-FreeTcpPort
        $dir = Join-Path $TestDrive $Name
        $args = @('--name', $Name, '--data-dir', $dir,
            '--listen-client-urls', "${ClientScheme}://127.0.0.1:$client", '--advertise-client-urls', "${ClientScheme}://127.0.0.1:$client",
            '--listen-peer-urls', "${PeerScheme}://127.0.0.1:$peer", '--initial-advertise-peer-urls', "${PeerScheme}://127.0.0.1:$peer",
            '--initial-cluster', "$Name=${PeerScheme}://127.0.0.1:$peer") + $Extra
        $p = Start-Process etcd -ArgumentList $args -RedirectStandardError "$dir.log" -RedirectStandardOutput "$dir.out" -PassThru
        $script:started.Add($p)
        Wait-TcpListening $client -Because "$Name to listen"
        [pscustomobject]@{ Client = "https://127.0.0.1:$client"; Peer = "https://127.0.0.1:$peer"; DataDir = $dir }
    }
    function Get-Ids($Findings, [string] $Target) { @($Findings | Where-Object Target -EQ $Target | ForEach-Object Id) }
}

AfterAll {
    foreach ($p in $script:started) { Stop-TestProcess $p }
    Stop-TestCluster
}

Describe 'Test-EtcdSecurity on members started wrong, one mistake each' -Tag Integration {
    It 'finds client and peer ports that answer plain HTTP, as Critical' {
        $m = Start-WrongEtcd 'plain' 'http' 'http' @()
        $f = Test-EtcdSecurity -Endpoint ($m.Client) -Timeout '00:00:03'
        # Nothing else is looked at on a port that speaks plain HTTP.
        $f.Id | Should -Be 'ClientPlaintext'
        $hit = $f | Where-Object Id -EQ 'ClientPlaintext'
        $hit.Severity | Should -Be 'Critical'
        $hit.Evidence | Should -Match 'HTTP/1.0 200|HTTP/1.1 200'
        $hit.Remedy | Should -Match '--client-cert-auth'
        Test-EtcdSecurity -Endpoint $m.Client -Quiet | Should -BeFalse
        ((Test-EtcdSecurity -Endpoint $m.Client -PeerUrl $m.Peer) | Where-Object Target -EQ $m.Peer).Id | Should -Be 'PeerPlaintext'
    }

    It 'audits the http:// URLs a user has, as Critical findings rather than an error' {
        $m = Start-WrongEtcd 'plain-urls' 'http' 'http' @()
        $client = $m.Client -replace '^https:', 'http:'
        $peer = $m.Peer -replace '^https:', 'http:'
        $f = Test-EtcdSecurity -Endpoint $client -PeerUrl $peer -CA $ca -Certificate $root -Timeout '3s'
        ($f | Where-Object Target -EQ $client).Id | Should -Be 'ClientPlaintext'
        ($f | Where-Object Target -EQ $peer).Id | Should -Be 'PeerPlaintext'
        @($f | Where-Object { $_.Id -in 'ClientPlaintext', 'PeerPlaintext' }).Severity | Should -Be @('Critical', 'Critical')
        # Health checks still speak TLS only, and say so.
        (Get-ThrownError { Test-EtcdClusterHealth $client -CA $ca }).FullyQualifiedErrorId | Should -BeLike 'InsecureEndpoint,*'
    }

    It 'finds TLS without client certificate authentication and etcd''s default suites, and nothing about a certificate that is fine' {
        $m = Start-WrongEtcd 'nocert' 'https' 'http' @('--cert-file', $server.Path, '--key-file', $server.KeyPath)
        $f = Test-EtcdSecurity -Endpoint $m.Client -CA $ca
        Get-Ids $f ($m.Client) | Sort-Object | Should -Be @('ClientCertificateNotRequired', 'WeakCipherSuites')
        ($f | Where-Object Id -EQ 'ClientCertificateNotRequired').Severity | Should -Be 'Critical'
        # Without --cipher-suites, Go offers CBC suites on TLS 1.2; openssl, offering only those, gets a ServerHello.
        ($f | Where-Object Id -EQ 'WeakCipherSuites').Severity | Should -Be 'Medium'
    }

    It 'finds the self-signed certificates of --auto-tls and --peer-auto-tls, and ports that take anyone' {
        $m = Start-WrongEtcd 'auto' 'https' 'https' @('--auto-tls', '--peer-auto-tls')
        $f = Test-EtcdSecurity -Endpoint $m.Client -PeerUrl $m.Peer
        $client = Get-Ids $f $m.Client
        $client | Should -Contain 'SelfSignedCertificate'
        $client | Should -Contain 'ClientCertificateNotRequired'
        $peer = Get-Ids $f $m.Peer
        $peer | Should -Contain 'SelfSignedCertificate'
        ($f | Where-Object { $_.Target -eq $m.Peer -and $_.Id -eq 'SelfSignedCertificate' }).Severity | Should -Be 'High'
        # etcd's --peer-auto-tls without --peer-client-cert-auth serves /members to anyone.
        $peer | Should -Contain 'PeerCertificateNotRequired'
    }

    It 'finds that --auto-tls with --client-cert-auth still lets in clients without any certificate' {
        $m = Start-WrongEtcd 'autoauth' 'https' 'https' @('--auto-tls', '--client-cert-auth', '--peer-auto-tls', '--peer-client-cert-auth')
        $f = Test-EtcdSecurity -Endpoint $m.Client -PeerUrl $m.Peer
        Get-Ids $f $m.Client | Should -Contain 'ClientCertificateNotRequired'
        Get-Ids $f $m.Peer | Should -Contain 'PeerCertificateNotRequired'
    }

    It 'finds a server that asks for a client certificate but takes one from any CA' {
        # Not etcd: openssl's test server with -Verify asks for a certificate and goes on whatever its chain.
        $port = Get-FreeTcpPort
        $p = Start-Process openssl -ArgumentList 's_server', '-accept', $port, '-cert', $server.Path, '-key', $server.KeyPath, '-Verify', '1', '-www', '-quiet' `
            -RedirectStandardOutput (Join-Path $TestDrive 's_server.out') -RedirectStandardError (Join-Path $TestDrive 's_server.err') -PassThru
        $script:started.Add($p)
        Wait-TcpListening $port -Because 's_server to listen'
        $f = Test-EtcdSecurity -Endpoint "https://127.0.0.1:$port" -CA $ca
        $ids = Get-Ids $f "https://127.0.0.1:$port"
        $ids | Should -Contain 'ClientAcceptsForeignCertificate'
        $ids | Should -Not -Contain 'ClientCertificateNotRequired'
        ($f | Where-Object Id -EQ 'ClientAcceptsForeignCertificate').Severity | Should -Be 'Critical'
        # Audited as a peer port, the same server is a peer port that takes any certificate.
        $asPeer = Test-EtcdSecurity -Endpoint 'https://127.0.0.1:1' -PeerUrl "https://127.0.0.1:$port" -Timeout '00:00:03'
        ($asPeer | Where-Object Id -EQ 'PeerAcceptsForeignCertificate').Severity | Should -Be 'Critical'
    }

    It 'says auth was not checked when a TLS 1.2 server refuses the certificate, though SslStream then says "Authentication failed"' {
        # Over TLS 1.3 a refused client certificate shows after the handshake; over TLS 1.2 it fails the handshake with
        # an alert, whose message must not be read as etcd refusing a user name (which means auth is on).
        $stranger = New-EtcdCA -Path (Join-Path $TestDrive 'tls12-stranger') | New-EtcdCertificate -Profile Client -CommonName root
        $port = Get-FreeTcpPort
        $p = Start-Process openssl -ArgumentList 's_server', '-accept', $port, '-tls1_2', '-cert', $server.Path, '-key', $server.KeyPath, '-CAfile', $ca.Path, '-Verify', '1', '-verify_return_error', '-www', '-quiet' `
            -RedirectStandardOutput (Join-Path $TestDrive 's_server12.out') -RedirectStandardError (Join-Path $TestDrive 's_server12.err') -PassThru
        $script:started.Add($p)
        Wait-TcpListening $port -Because 's_server to listen'
        $f = Test-EtcdSecurity -Endpoint "https://127.0.0.1:$port" -CA $ca -Certificate $stranger -Timeout '00:00:05'
        $hit = @($f | Where-Object { $_.Id -eq 'AuthNotChecked' -and $_.Target -eq "https://127.0.0.1:$port" })
        $hit.Count | Should -Be 1
        $hit[0].Severity | Should -Be 'Info'
        $hit[0].Evidence | Should -Match 'Authentication failed.*alert unknown ca'
    }

    It 'finds a served RSA key under 2048 bits' {
        # Go and OpenSSL's defaults refuse to serve one; openssl's test server does at security level 0.
        $dir = Join-Path $TestDrive 'rsa1024'; $null = New-Item -ItemType Directory $dir
        & openssl req -x509 -newkey rsa:1024 -nodes -keyout "$dir/k.pem" -out "$dir/c.pem" -subj '/CN=weak' -addext 'subjectAltName=IP:127.0.0.1' -days 2 2>&1 | Out-Null
        $port = Get-FreeTcpPort
        $p = Start-Process openssl -ArgumentList 's_server', '-accept', $port, '-cert', "$dir/c.pem", '-key', "$dir/k.pem", '-cipher', 'DEFAULT@SECLEVEL=0', '-www', '-quiet' `
            -RedirectStandardOutput "$dir/out" -RedirectStandardError "$dir/err" -PassThru
        $script:started.Add($p)
        Wait-TcpListening $port -Because 's_server to listen'
        $f = Test-EtcdSecurity -Endpoint "https://127.0.0.1:$port"
        $hit = $f | Where-Object Id -EQ 'WeakKey'
        $hit.Severity | Should -Be 'High'
        $hit.Evidence | Should -Match '1024-bit'
        # At security level 0 this server also still speaks TLS 1.0 and 1.1, which openssl's client is made to offer.
        $legacy = $f | Where-Object Id -EQ 'LegacyTlsAccepted'
        $legacy.Severity | Should -Be 'Medium'
        $legacy.Evidence | Should -Match 'TLS 1.0 and a TLS 1.1'
    }

    It 'finds a certificate that expires in 5 days as Medium, on an otherwise locked member' {
        $m = Start-WrongEtcd 'soon' 'https' 'http' @('--cert-file', $soon.Path, '--key-file', $soon.KeyPath, '--trusted-ca-file', $ca.Path, '--client-cert-auth')
        $f = Test-EtcdSecurity -Endpoint $m.Client -CA $ca -Certificate $root -MinimumSeverity Medium
        $hit = $f | Where-Object Id -EQ 'CertificateExpiring'
        $hit.Severity | Should -Be 'Medium'
        $hit.Evidence | Should -Match 'in 5 days|in 4\.9 days'
        $f.Id | Should -Not -Contain 'ClientCertificateNotRequired'
        $f.Id | Should -Not -Contain 'ClientAcceptsForeignCertificate'
        (Test-EtcdSecurity -Endpoint $m.Client -CA $ca -Certificate $root -ExpiringWithin '3d').Id | Should -Not -Contain 'CertificateExpiring'
    }

    It 'finds a peer certificate without client auth, and a served certificate that does not name the host dialled' {
        $dir = Join-Path $TestDrive 'serveronly'; $null = New-Item -ItemType Directory $dir
        $ext = Join-Path $dir 'ext'; Set-Content $ext "extendedKeyUsage=serverAuth`nsubjectAltName=DNS:elsewhere.example"
        & openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/p-key.pem" -out "$dir/p.csr" -subj '/CN=peer-only' 2>&1 | Out-Null
        & openssl x509 -req -in "$dir/p.csr" -CA $ca.Path -CAkey $ca.KeyPath -CAcreateserial -out "$dir/p.pem" -days 2 -extfile $ext 2>&1 | Out-Null
        $m = Start-WrongEtcd 'peeronly' 'http' 'https' @('--peer-cert-file', "$dir/p.pem", '--peer-key-file', "$dir/p-key.pem", '--peer-trusted-ca-file', $ca.Path, '--peer-client-cert-auth')
        $f = Test-EtcdSecurity -Endpoint 'https://127.0.0.1:1' -PeerUrl $m.Peer -Timeout '00:00:03'
        $ids = Get-Ids $f $m.Peer
        $ids | Should -Contain 'PeerCertificateMissingClientAuth'
        $ids | Should -Contain 'CertificateHostMismatch'
        ($f | Where-Object Id -EQ 'CertificateHostMismatch').Severity | Should -Be 'High'
    }

    It 'finds a certificate that has expired, one without server auth, and one from another CA than the one given' {
        $expired = $ca | New-EtcdCertificate -Profile Server -CommonName expired -Hosts 127.0.0.1 -Validity '1s'
        Wait-Until -Because 'the certificate to expire' { (Get-EtcdCertificate $expired.Path).ExpiresIn -lt [TimeSpan]::Zero }
        $m = Start-WrongEtcd 'expired' 'https' 'http' @('--cert-file', $expired.Path, '--key-file', $expired.KeyPath, '--trusted-ca-file', $ca.Path, '--client-cert-auth')
        $f = Test-EtcdSecurity -Endpoint $m.Client -CA $ca
        ($f | Where-Object Id -EQ 'CertificateExpired').Severity | Should -Be 'Critical'

        $dir = Join-Path $TestDrive 'clientonly'; $null = New-Item -ItemType Directory $dir
        Set-Content "$dir/ext" "extendedKeyUsage=clientAuth`nsubjectAltName=IP:127.0.0.1"
        & openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/c-key.pem" -out "$dir/c.csr" -subj '/CN=client-only' 2>&1 | Out-Null
        & openssl x509 -req -in "$dir/c.csr" -CA $ca.Path -CAkey $ca.KeyPath -CAcreateserial -out "$dir/c.pem" -days 2 -extfile "$dir/ext" 2>&1 | Out-Null
        $c = Start-WrongEtcd 'clientonly' 'https' 'http' @('--cert-file', "$dir/c.pem", '--key-file', "$dir/c-key.pem", '--trusted-ca-file', $ca.Path, '--client-cert-auth')
        $other = New-EtcdCA -Path (Join-Path $TestDrive 'other-ca') -CommonName other-ca
        $f = Test-EtcdSecurity -Endpoint $c.Client -CA $other
        $ids = Get-Ids $f $c.Client
        $ids | Should -Contain 'CertificateMissingServerAuth'
        $ids | Should -Contain 'CertificateNotFromCA'
        ($f | Where-Object Id -EQ 'CertificateNotFromCA').Severity | Should -Be 'Medium'
    }

    It 'finds a private key other users can read' {
        $loose = $ca | New-EtcdCertificate -Profile Server -CommonName loose -Hosts 127.0.0.1
        [IO.File]::SetUnixFileMode($loose.KeyPath, [IO.UnixFileMode] [Convert]::ToInt32('644', 8))
        $f = Test-EtcdSecurity -Endpoint 'https://127.0.0.1:1' -CertificateFile $loose.Path -Timeout '00:00:02'
        $hit = $f | Where-Object Id -EQ 'PrivateKeyReadable'
        $hit.Severity | Should -Be 'High'
        $hit.Target | Should -Be $loose.KeyPath
        $hit.Evidence | Should -Match '0644'
    }

    It 'finds a peer port that takes any certificate of one shared CA, a client one included' {
        $m = Start-WrongEtcd 'shared' 'https' 'https' @('--cert-file', $server.Path, '--key-file', $server.KeyPath, '--trusted-ca-file', $ca.Path, '--client-cert-auth',
            '--peer-cert-file', $server.Path, '--peer-key-file', $server.KeyPath, '--peer-trusted-ca-file', $ca.Path, '--peer-client-cert-auth')
        $f = Test-EtcdSecurity -Endpoint $m.Client -PeerUrl $m.Peer -CA $ca -Certificate $root
        $hit = $f | Where-Object Id -EQ 'PeerAcceptsClientCertificate'
        $hit.Severity | Should -Be 'High'
        $hit.Target | Should -Be $m.Peer
        $hit.Evidence | Should -Match 'root'
    }

    It 'says a CA key lies beside a client certificate without calling it a member''s' {
        $f = Test-EtcdSecurity -Endpoint 'https://127.0.0.1:1' -CertificateFile $root.Path -Timeout '2s'
        $hit = $f | Where-Object Id -EQ 'CAKeyBesideMember'
        $hit.Target | Should -Be (Join-Path $pki 'ca-key.pem')
        $hit.Evidence | Should -Match "beside the certificate '$([regex]::Escape($root.Path))'"
        $hit.Evidence | Should -Not -Match 'member certificate'
    }

    It 'finds a data dir other users can enter' {
        $dir = New-Item -ItemType Directory (Join-Path $TestDrive 'open-data')
        [IO.File]::SetUnixFileMode($dir.FullName, [IO.UnixFileMode] [Convert]::ToInt32('755', 8))
        $f = Test-EtcdSecurity -Endpoint 'https://127.0.0.1:1' -DataDir $dir.FullName -Timeout '00:00:02'
        ($f | Where-Object Id -EQ 'DataDirPermissive').Evidence | Should -Match '0755'
    }

    It 'reports a target that does not answer as a finding, not an error, and does not pass it' {
        $port = Get-FreeTcpPort
        $f = Test-EtcdSecurity -Endpoint "https://127.0.0.1:$port" -Timeout '00:00:02'
        $f.Id | Should -Be 'TargetUnreachable'
        $f.Severity | Should -Be 'Info'
        $f.Evidence | Should -Match 'refused'
        Test-EtcdSecurity -Endpoint "https://127.0.0.1:$port" -Quiet | Should -BeFalse
        $s = Test-EtcdSecurity -Endpoint "https://127.0.0.1:$port" -Summary
        $s.Passed | Should -BeFalse
        $s.NotChecked | Should -Be 1
    }

    Context 'a port that takes TCP but never speaks TLS (a hung member)' {
        BeforeAll {
            # The kernel completes the TCP handshake for a listener nobody accepts from: a port that is open and silent.
            $hung = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
            $hung.Start()
            $hungUrl = "https://127.0.0.1:$($hung.LocalEndpoint.Port)"
        }
        AfterAll { $hung.Stop() }

        It 'reports HandshakeNotCompleted without credentials, and -Quiet and -Summary do not pass it' {
            $f = Test-EtcdSecurity -Endpoint $hungUrl -Timeout '2s'
            $f.Id | Should -Be 'HandshakeNotCompleted'
            $f.Evidence | Should -Match 'no TLS handshake'
            Test-EtcdSecurity -Endpoint $hungUrl -Timeout '2s' -Quiet | Should -BeFalse
            $s = Test-EtcdSecurity -Endpoint $hungUrl -Timeout '2s' -Summary
            $s.Passed | Should -BeFalse
            $s.NotChecked | Should -Be 1
        }

        It 'reports it with credentials too, within one -Timeout, instead of dying with "A task was canceled."' {
            $watch = [Diagnostics.Stopwatch]::StartNew()
            $f = Test-EtcdSecurity -Endpoint $hungUrl -Timeout '2s' -CA $ca -Certificate $root
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 4
            $f.Id | Should -Contain 'HandshakeNotCompleted'
            ($f | Where-Object Id -EQ 'AuthNotChecked').Evidence | Should -Match 'no answer within 2 s'
            Test-EtcdSecurity -Endpoint $hungUrl -Timeout '2s' -CA $ca -Certificate $root -Quiet | Should -BeFalse
        }
    }
}

Describe 'Test-EtcdSecurity on a cluster the module built' -Tag Integration {
    BeforeAll {
        $cluster = New-EtcdCluster -Path (Join-Path $TestDrive 'audited') -Name audited -Size 1
    }

    It 'finds only that auth is off (every certificate is root) before Enable-EtcdAuth' {
        $f = Get-EtcdMember audited-1 | Test-EtcdSecurity
        $high = @($f | Where-Object { $_.Severity -in 'High', 'Critical' })
        $high.Id | Should -Be @('AuthDisabled')
        $high[0].Remedy | Should -Match 'Enable-EtcdAuth'
        # The client certificate at hand (the member's own, from the client CA) does not open the peer port.
        $f.Id | Should -Not -Contain 'PeerAcceptsClientCertificate'
        # Members get ECDHE AEAD suites only, on both ports, so no weak suite and no TLS 1.0 or 1.1 is negotiated.
        $f.Id | Should -Not -Contain 'WeakCipherSuites'
        $f.Id | Should -Not -Contain 'LegacyTlsAccepted'
        $f.Id | Should -Not -Contain 'ProtocolsNotChecked'
        # etcd before 3.4.25 / 3.5.8 lacks --tls-min-version, which the audit notes as Low; newer ones do not get it.
        $lacks = -not (Get-EtcdBinary -Name etcd).SupportsTlsMinVersion
        ($f.Id -contains 'EtcdLacksTlsMinVersion') | Should -Be $lacks
        if ($lacks) { ($f | Where-Object Id -EQ 'EtcdLacksTlsMinVersion').Severity | Should -Be 'Low' }
        # The CA's key lies beside the member's certificates in tls/assets, which the audit says.
        ($f | Where-Object Id -EQ 'CAKeyBesideMember').Severity | Should -Contain 'Medium'
    }

    It 'says when it could not check auth with the credentials given, rather than guessing' {
        $stranger = New-EtcdCA -Path (Join-Path $TestDrive 'stranger-ca') | New-EtcdCertificate -Profile Client -CommonName root
        $member = Get-EtcdMember audited-1
        $f = Test-EtcdSecurity -Endpoint $member.ClientUrls -CA $member.CAPath -Certificate $stranger
        $hit = $f | Where-Object Id -EQ 'AuthNotChecked'
        $hit.Severity | Should -Be 'Info'
        $f.Id | Should -Not -Contain 'AuthDisabled'
    }

    It 'finds the peer URLs from MemberList when none are given' {
        $member = Get-EtcdMember audited-1
        $f = Test-EtcdSecurity -Endpoint $member.ClientUrls -CA $member.CAPath -Certificate $member.CertificatePath -Summary
        $f.Targets | Should -Contain $member.PeerUrls[0].TrimEnd('/')
    }

    It 'finds nothing High or Critical once auth is on, and -Quiet and -Summary say so' {
        $null = $cluster | Enable-EtcdAuth -Confirm:$false
        $member = Get-EtcdMember audited-1
        $f = $member | Test-EtcdSecurity
        @($f | Where-Object { $_.Severity -in 'High', 'Critical' }) | Should -BeNullOrEmpty
        $member | Test-EtcdSecurity -Quiet | Should -BeTrue
        $s = $member | Test-EtcdSecurity -Summary
        $s.Passed | Should -BeTrue
        $s.Critical + $s.High | Should -Be 0
        $s.Targets.Count | Should -Be 2
    }
}
