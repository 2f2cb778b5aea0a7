# Certificates after issuance: the CA's ledger, expiry checks, revocation with CRLs that real etcd and the proxy
# enforce, renewal while the cluster serves, and peer identities kept apart from client ones.
BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    function Invoke-Ctl($Endpoint, $CA, $Cert, [string[]] $Arguments) {
        Invoke-Etcdctl (@('--endpoints', $Endpoint, '--cacert', $CA, '--cert', $Cert.Path, '--key', $Cert.KeyPath,
                '--dial-timeout', '3s', '--command-timeout', '5s') + $Arguments)
    }
    function Invoke-PeerPort([string] $PeerUrl, [string] $Cert, [string] $Key) {
        # The peer port serves /members to peers only; this client trusts any server, so only the member decides.
        $identity = [Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($Cert, $Key)
        try { (Invoke-WebRequest "$PeerUrl/members" -Certificate $identity -SkipCertificateCheck -TimeoutSec 5).StatusCode }
        catch { 'refused' }
    }
}

AfterAll { Stop-TestCluster }

Describe 'The CA ledger and expiry checks' -Tag Unit {
    BeforeAll {
        $dir = Join-Path $TestDrive 'pki'
        $ca = New-EtcdCA -Path $dir
        $long = $ca | New-EtcdCertificate -Profile Peer -CommonName node -Hosts localhost, 127.0.0.1
        $soon = $ca | New-EtcdCertificate -Profile Client -CommonName soon -Validity 240h
    }

    It 'records every certificate the CA issues: serial, subject, SANs, profile, expiry and file' {
        $issued = Get-EtcdIssuedCertificate $ca.Path
        $issued.CommonName | Should -Be @('node', 'soon')
        $node = $issued | Where-Object CommonName -EQ node
        $node.SerialNumber | Should -Be $long.SerialNumber
        $node.Profile | Should -Be 'Peer'
        $node.Hosts | Should -Be @('localhost', '127.0.0.1')
        $node.Path | Should -Be $long.Path
        $node.Status | Should -Be 'Valid'
        Join-Path $dir 'ca-index.json' | Should -Exist
    }

    It 'shows how long a certificate has left' {
        $c = Get-EtcdCertificate $soon.Path
        $c.ExpiresIn | Should -BeOfType [TimeSpan]
        $c.ExpiresIn.TotalDays | Should -BeGreaterThan 9.9
        $c.ExpiresIn.TotalDays | Should -BeLessThan 10.1
    }

    It 'finds the certificate that expires in 10 days when a folder is checked with -ExpiringWithin ''30d''' {
        $results = Test-EtcdCertificate $dir -ExpiringWithin '30d'
        # The CA and both certificates are checked; keys, the ledger and CSRs are passed over.
        $results.Path | Should -Be @($ca.Path, $long.Path, $soon.Path)
        ($results | Where-Object { -not $_.Valid }).Path | Should -Be $soon.Path
        ($results | Where-Object Path -EQ $soon.Path).Reasons | Should -Match 'within the 30-day window'
        Test-EtcdCertificate $dir -ExpiringWithin '30d' -Quiet | Should -BeFalse
        Test-EtcdCertificate $dir -ExpiringWithin '5d' -Quiet | Should -BeTrue
        Test-EtcdCertificate $dir -ExpiringWithin '120h' -Quiet | Should -BeTrue
    }

    It 'looks into subfolders with -Recurse, and fails a check that found nothing' {
        $top = Join-Path $TestDrive 'nested'
        $null = New-Item -ItemType Directory (Join-Path $top 'deep')
        Copy-Item $soon.Path (Join-Path $top 'deep/soon.pem')
        Test-EtcdCertificate $top -Recurse -ExpiringWithin '30d' -Quiet | Should -BeFalse
        $errs = $null
        Test-EtcdCertificate $top -ExpiringWithin '30d' -Quiet -ErrorVariable errs -ErrorAction SilentlyContinue | Should -BeFalse
        $errs[0].FullyQualifiedErrorId | Should -Match '^NoCertificateFound,'
    }
}

Describe 'Revoke-EtcdCertificate and the CRL' -Tag Unit {
    BeforeAll {
        $dir = Join-Path $TestDrive 'revoke'
        $ca = New-EtcdCA -Path $dir
        $alice = $ca | New-EtcdCertificate -Profile Client -CommonName alice
        $bob = $ca | New-EtcdCertificate -Profile Client -CommonName bob
        $other = New-EtcdCA -Path (Join-Path $TestDrive 'other') | New-EtcdCertificate -Profile Client -CommonName mallory
    }

    It 'writes nothing with -WhatIf' {
        Revoke-EtcdCertificate $alice.Path -WhatIf
        Join-Path $dir 'ca-crl.pem' | Should -Not -Exist
        (Get-EtcdIssuedCertificate $ca.Path | Where-Object CommonName -EQ alice).Status | Should -Be 'Valid'
    }

    It 'revokes by file with the CA found beside it, in a CRL that openssl verifies and enforces' {
        $r = Revoke-EtcdCertificate $alice.Path -Reason KeyCompromise -Confirm:$false
        $r.Status | Should -Be 'Revoked'
        $r.RevocationReason | Should -Be 'KeyCompromise'
        $r.CrlPath | Should -Be (Join-Path $dir 'ca-crl.pem')
        $verify = & openssl crl -in $r.CrlPath -CAfile $ca.Path -noout 2>&1
        "$verify" | Should -Match 'verify OK'
        $text = (& openssl crl -in $r.CrlPath -noout -text) -join "`n"
        $text | Should -Match "Serial Number: $($alice.SerialNumber)"
        $text | Should -Match 'Key Compromise'
        $text | Should -Match 'Next Update'
        (& openssl verify -crl_check -CAfile $ca.Path -CRLfile $r.CrlPath $alice.Path 2>&1) -join ' ' | Should -Match 'certificate revoked'
        (& openssl verify -crl_check -CAfile $ca.Path -CRLfile $r.CrlPath $bob.Path 2>&1) -join ' ' | Should -Match 'OK'
    }

    It 'revokes by serial number from the ledger, and refuses a serial it never issued' {
        $r = Revoke-EtcdCertificate -SerialNumber $bob.SerialNumber -CACertPath $ca.Path -Reason Superseded -Confirm:$false
        $r.CommonName | Should -Be 'bob'
        (& openssl crl -in $r.CrlPath -noout -text) -join "`n" | Should -Match "Serial Number: $($bob.SerialNumber)"
        $e = Get-ThrownError { Revoke-EtcdCertificate -SerialNumber 'ABCDEF' -CA $ca -Confirm:$false }
        $e.FullyQualifiedErrorId | Should -Match '^SerialNotIssued,'
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'refuses to revoke a certificate of another CA' {
        $e = Get-ThrownError { Revoke-EtcdCertificate $other.Path -CA $ca -Confirm:$false }
        $e.FullyQualifiedErrorId | Should -Match '^NotIssuedByCA,'
        $e.TargetObject | Should -Be $other.Path
    }

    It 'takes certificates from the pipeline, and renews nothing with -WhatIf' {
        $carol = $ca | New-EtcdCertificate -Profile Client -CommonName carol
        $before = Get-FileHash $carol.Path
        $carol | Update-EtcdCertificate -WhatIf
        (Get-FileHash $carol.Path).Hash | Should -Be $before.Hash
        Join-Path $dir 'previous' | Should -Not -Exist
        $r = Get-EtcdCertificate $carol.Path | Revoke-EtcdCertificate -Confirm:$false
        $r.CommonName | Should -Be 'carol'
        $r.Status | Should -Be 'Revoked'
    }

    It 'renews with the same key when asked, and refuses a CA that did not issue the certificate unless -ChangeCA' {
        $dave = $ca | New-EtcdCertificate -Profile Client -CommonName dave
        $keyBefore = Get-FileHash $dave.KeyPath
        $same = Update-EtcdCertificate $dave.Path -ReuseKey -Validity 48h
        (Get-FileHash $dave.KeyPath).Hash | Should -Be $keyBefore.Hash
        $same.SerialNumber | Should -Not -Be $dave.SerialNumber
        ($same.NotAfter - $same.NotBefore).TotalHours | Should -BeGreaterThan 48
        ($same.NotAfter - $same.NotBefore).TotalHours | Should -BeLessThan 48.2
        $otherCA = New-EtcdCA -Path (Join-Path $TestDrive 'other2')
        $e = Get-ThrownError { Update-EtcdCertificate $dave.Path -CA $otherCA }
        $e.FullyQualifiedErrorId | Should -Match '^NotIssuedByCA,'
        (Update-EtcdCertificate $dave.Path -CA $otherCA -ChangeCA).Issuer | Should -Be $otherCA.Subject
    }

    It 'writes a fresh CRL with Update-EtcdCrl, numbered after the last one' {
        $before = (& openssl crl -in (Join-Path $dir 'ca-crl.pem') -noout -crlnumber) -replace 'crlNumber=', ''
        $crl = $ca | Update-EtcdCrl -Validity 720h
        $crl.RevokedCount | Should -Be 3
        $crl.Number | Should -Be ([Convert]::ToInt64($before, 16) + 1)
        ($crl.NextUpdate - $crl.ThisUpdate).TotalHours | Should -Be 720
    }
}

Describe 'A running cluster: revocation, renewal and peer identities' -Tag Integration {
    BeforeAll {
        $cluster = New-EtcdCluster -Path (Join-Path $TestDrive 'life') -Name life -Size 1
        $assets = Join-Path $cluster.Path 'tls/assets'
        $ca = Get-EtcdCertificate $cluster.CAPath
        $alice = $ca | New-EtcdCertificate -Profile Client -CommonName alice
        $bob = $ca | New-EtcdCertificate -Profile Client -CommonName bob
        $root = Get-EtcdCertificate (Join-Path $assets 'root.pem')
        $proxyCert = $ca | New-EtcdCertificate -Profile Server -CommonName etcd-proxy -Hosts localhost, 127.0.0.1
        $proxy = Start-EtcdProxy -Name life-proxy -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $cluster.Endpoints `
            -Certificate $proxyCert -ClientCA $ca -CrlPath (Join-Path $assets 'ca-crl.pem') -UpstreamCertificate $root -SingleIdentity -UpstreamCA $ca
        $member = $cluster.Endpoints[0]
    }

    It 'starts members with the CRL of each CA, and a peer CA of their own' {
        $cluster.Members[0].CommandLine | Should -Match "--client-crl-file \S*ca-crl.pem"
        $cluster.Members[0].CommandLine | Should -Match "--peer-crl-file \S*peer-ca-crl.pem"
        $cluster.Members[0].CommandLine | Should -Match "--peer-trusted-ca-file \S*peer-ca.pem"
        $cluster.PeerCAPath | Should -Be (Join-Path $assets 'peer-ca.pem')
    }

    It 'lets no client certificate open the peer port, only a peer certificate' {
        $peer = $cluster.Members[0].PeerUrls[0]
        Invoke-PeerPort $peer (Join-Path $assets 'life-1-peer.pem') (Join-Path $assets 'life-1-peer-key.pem') | Should -Be 200
        Invoke-PeerPort $peer $root.Path $root.KeyPath | Should -Be 'refused'
        # The member's server certificate carries client auth too, and comes from the client CA: refused as well.
        Invoke-PeerPort $peer (Join-Path $assets 'life-1-server.pem') (Join-Path $assets 'life-1-server-key.pem') | Should -Be 'refused'
    }

    It 'refuses a revoked client at the member and at the proxy, without a restart, and serves the others' {
        (Invoke-Ctl $member $ca.Path $alice @('put', 'k', 'alice')).ExitCode | Should -Be 0
        (Invoke-Ctl $proxy.Endpoint $ca.Path $alice @('put', 'k', 'alice')).ExitCode | Should -Be 0
        $pid0 = $cluster.Members[0].ProcessId

        $null = Revoke-EtcdCertificate $alice.Path -Reason KeyCompromise -Confirm:$false
        $direct = Invoke-Ctl $member $ca.Path $alice @('put', 'k', 'alice-again')
        $direct.ExitCode | Should -Not -Be 0
        # The proxy reloads its CRL within a second or two of the change.
        Wait-Until -Timeout '00:00:10' -Because 'the proxy to refuse the revoked client' { (Invoke-Ctl $proxy.Endpoint $ca.Path $alice @('get', 'k')).ExitCode -ne 0 }
        (Get-EtcdProxy life-proxy).Refused['Revoked'] | Should -BeGreaterThan 0

        (Invoke-Ctl $member $ca.Path $bob @('put', 'k', 'bob')).ExitCode | Should -Be 0
        (Invoke-Ctl $proxy.Endpoint $ca.Path $bob @('get', 'k', '--print-value-only')).Output | Should -Be 'bob'
        (Get-EtcdMember life-1).ProcessId | Should -Be $pid0
    }

    It 'renews the member, proxy and client certificates while a watch runs through the proxy, and every request succeeds' {
        $watchOut = Join-Path $TestDrive 'watch.out'
        $env:ETCDCTL_API = '3'
        $watch = Start-Process etcdctl -PassThru -RedirectStandardOutput $watchOut -RedirectStandardError "$watchOut.err" -ArgumentList @(
            '--endpoints', $proxy.Endpoint, '--cacert', $ca.Path, '--cert', $bob.Path, '--key', $bob.KeyPath, 'watch', 'renew/', '--prefix')
        try {
            Wait-Until -Because 'the watch to be relayed' { (Get-EtcdProxy life-proxy).RelayedConnections -ge 1 }
            $served = Get-ServedCertificate ([uri] $member).Port
            $oldServer = Get-EtcdCertificate (Join-Path $assets 'life-1-server.pem')
            $served.SerialNumber | Should -Be $oldServer.SerialNumber

            $renewed = Update-EtcdCertificate (Join-Path $assets 'life-1-server.pem'), $proxyCert.Path, $bob.Path
            $renewed.Count | Should -Be 3
            $renewed[0].SerialNumber | Should -Not -Be $oldServer.SerialNumber
            $renewed[0].Profile | Should -Be 'Server'
            $renewed[0].DnsNames | Should -Be $oldServer.DnsNames
            $renewed[0].ExtendedKeyUsages | Should -Be $oldServer.ExtendedKeyUsages
            $renewed[0].NotAfter | Should -BeGreaterThan $oldServer.NotAfter
            (Get-Item $renewed[0].KeyPath).UnixFileMode | Should -Be ([IO.UnixFileMode] 'UserRead, UserWrite')
            @(Get-ChildItem (Join-Path $assets 'previous') -Recurse -Filter 'life-1-server*.pem').Count | Should -Be 2

            # etcd picks the new certificate up on its next handshake; nothing restarted.
            Wait-Until -Because 'the member to serve the renewed certificate' { (Get-ServedCertificate ([uri] $member).Port).SerialNumber -eq $renewed[0].SerialNumber }
            Wait-Until -Because 'the proxy to serve its renewed certificate' { (Get-ServedCertificate ([uri] $proxy.Endpoint).Port).SerialNumber -eq $renewed[1].SerialNumber }
            foreach ($i in 1..10) {
                $r = Invoke-Ctl $proxy.Endpoint $ca.Path $bob @('put', "renew/$i", "v$i")
                $r.ExitCode | Should -Be 0 -Because $r.Output
            }
            Wait-Until -Because 'the watch to see all ten writes' { (Get-Content $watchOut -ErrorAction Ignore | Where-Object { $_ -like 'renew/*' }).Count -ge 10 }
            $watch.HasExited | Should -BeFalse
            (Get-EtcdIssuedCertificate $ca.Path | Where-Object Status -EQ Renewed).Count | Should -Be 3
        }
        finally { Stop-TestProcess $watch }
    }
}

Describe 'Enable-EtcdAuth: certificates map to users with least privilege' -Tag Integration {
    BeforeAll {
        $cluster = New-EtcdCluster -Path (Join-Path $TestDrive 'auth') -Name auth -Size 1
        $ca = Get-EtcdCertificate $cluster.CAPath
        $root = Get-EtcdCertificate $cluster.ClientCertificatePath
        $reader = $ca | New-EtcdCertificate -Profile Client -CommonName reporting
        $writer = $ca | New-EtcdCertificate -Profile Client -CommonName app
        $stranger = $ca | New-EtcdCertificate -Profile Client -CommonName stranger
        $member = $cluster.Endpoints[0]
    }

    It 'refuses to run with a certificate that is not root, and changes nothing' {
        $e = Get-ThrownError { Enable-EtcdAuth -Endpoint $member -CA $ca -Certificate $reader -Confirm:$false }
        $e.FullyQualifiedErrorId | Should -Match '^RootCertificateRequired,'
        (Invoke-Ctl $member $ca.Path $stranger @('put', 'anything', 'x')).ExitCode | Should -Be 0
    }

    It 'lets a read-only certificate read its prefix and nothing else, a read-write one write it, and no other certificate in' {
        $status = $cluster | Enable-EtcdAuth -ReadOnly @{ reporting = '/app/' } -ReadWrite @{ app = '/app/' } -Confirm:$false
        $status.Enabled | Should -BeTrue
        # etcd before 3.5 has no AuthStatus; the module asks as the audit does, so every version says.
        $status.WasEnabled | Should -BeFalse
        $status.WasEnabled | Should -Not -BeNullOrEmpty
        ($status | Format-Table | Out-String) | Should -Match '\bFalse\b' 
        $status.Users | Sort-Object | Should -Be @('app', 'reporting', 'root')

        (Invoke-Ctl $member $ca.Path $writer @('put', '/app/config', 'v1')).ExitCode | Should -Be 0
        (Invoke-Ctl $member $ca.Path $reader @('get', '/app/config', '--print-value-only')).Output | Should -Be 'v1'
        $denied = Invoke-Ctl $member $ca.Path $reader @('put', '/app/config', 'v2')
        $denied.ExitCode | Should -Not -Be 0
        $denied.Output | Should -Match 'permission denied'
        (Invoke-Ctl $member $ca.Path $writer @('put', '/other', 'x')).Output | Should -Match 'permission denied'
        (Invoke-Ctl $member $ca.Path $stranger @('get', '/app/config')).ExitCode | Should -Not -Be 0
        (Invoke-Ctl $member $ca.Path $root @('put', '/other', 'root-may')).ExitCode | Should -Be 0
        ($cluster | Test-EtcdClusterHealth).Healthy | Should -BeTrue
    }

    It 'runs again without harm, adding what is new' {
        $again = $cluster | Enable-EtcdAuth -ReadOnly @{ stranger = '/public/' } -Confirm:$false
        $again.WasEnabled | Should -BeTrue
        (Invoke-Ctl $member $ca.Path $root @('put', '/public/motd', 'hello')).ExitCode | Should -Be 0
        (Invoke-Ctl $member $ca.Path $stranger @('get', '/public/motd', '--print-value-only')).Output | Should -Be 'hello'
        (Invoke-Ctl $member $ca.Path $reader @('get', '/app/config', '--print-value-only')).Output | Should -Be 'v1'
    }
}
