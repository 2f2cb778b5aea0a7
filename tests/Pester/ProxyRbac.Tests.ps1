# etcd's RBAC through the proxy: with -IdentityPath every client reaches etcd as the user of its certificate's common
# name, tried with real etcdctl clients against a real member with auth on.
BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $cluster = New-EtcdCluster -Path (Join-Path $TestDrive 'rbac') -Name rbac -Size 1
    # The proxy's clients have a CA of their own; the members trust only the cluster's.
    $edge = New-EtcdCA -Path (Join-Path $TestDrive 'edge') -CommonName rbac-edge-ca
    $serving = $edge | New-EtcdCertificate -Profile Server -CommonName rbac-proxy -Hosts localhost, 127.0.0.1
    $clients = @{}
    foreach ($cn in 'root', 'app', 'reporting', 'auditor', 'stranger') { $clients[$cn] = $edge | New-EtcdCertificate -Profile Client -CommonName $cn }
    $crl = $edge | Update-EtcdCrl
    $ids = Join-Path $TestDrive 'proxy-identities'
    $status = $cluster | Enable-EtcdAuth -ReadWrite @{ app = '/app/' } -ReadOnly @{ reporting = '/app/'; auditor = '/audit/' } -ProxyIdentityPath $ids -Confirm:$false
    $proxy = Start-EtcdProxy -Name rbac -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $cluster.Endpoints -Certificate $serving -ClientCA $edge -CrlPath $crl.Path `
        -UpstreamCA $cluster.CAPath -UpstreamCertificate $cluster.ClientCertificatePath -IdentityPath $ids
    function Invoke-As([string] $User, [string[]] $Arguments, [switch] $Refused) {
        Invoke-EtcdctlThrough $proxy.Endpoint $edge.Path $clients[$User] $Arguments -Refused:$Refused
    }
    function Get-Refused([string] $Reason) { $r = (Get-EtcdProxy rbac).Refused; if ($r.Contains($Reason)) { $r[$Reason] } else { 0 } }
    function Test-Closed($Connection) {
        # Closed by the proxy: a read ends (0 bytes) or fails; an open one times out instead.
        $Connection.Ssl.ReadTimeout = 500
        try { $Connection.Ssl.Read([byte[]]::new(1), 0, 1) -eq 0 } catch [IO.IOException] { $_.Exception.InnerException -isnot [Net.Sockets.SocketException] -or $_.Exception.InnerException.SocketErrorCode -ne 'TimedOut' }
    }
    function Open-Kept([string] $User) {
        # A relayed connection that stays open, as a watch does: HTTP/1.1 keep-alive, one request answered.
        $pem = [Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($clients[$User].Path, $clients[$User].KeyPath)
        $cert = [Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadPkcs12($pem.Export('Pkcs12'), $null)
        $conn = Connect-TlsClient ([uri]$proxy.Endpoint).Port $cert $edge.Path
        $conn.Ssl.Write([Text.Encoding]::ASCII.GetBytes("GET /version HTTP/1.1`r`nHost: localhost`r`n`r`n"))
        $null = Read-UntilSeen $conn.Ssl 'etcdserver' 1
        $conn
    }
}

AfterAll {
    if (Get-EtcdProxy rbac -ErrorAction Ignore) { Stop-EtcdProxy rbac }
    Stop-TestCluster
}

Describe 'Start-EtcdProxy -IdentityPath: each client reaches etcd as itself' -Tag Integration, Security {
    It 'gives every user Enable-EtcdAuth set up an identity in the proxy''s folder, private to this user' {
        $status.Users | Sort-Object | Should -Be @('app', 'auditor', 'reporting', 'root')
        (Get-ChildItem $ids -Filter '*.pem' | Where-Object Name -NotLike '*-key.pem').BaseName | Sort-Object | Should -Be @('app', 'auditor', 'reporting', 'root')
        (Get-Item $ids).UnixFileMode | Should -Be ([IO.UnixFileMode] 'UserRead, UserWrite, UserExecute')
        (Get-Item (Join-Path $ids 'app-key.pem')).UnixFileMode | Should -Be ([IO.UnixFileMode] 'UserRead, UserWrite')
        (Get-EtcdCertificate (Join-Path $ids 'app.pem')).Issuer | Should -Be (Get-EtcdCertificate $cluster.CAPath).Subject
        (Get-EtcdProxy rbac).UpstreamIdentity | Should -Match '^per client: 4 user\(s\)'
    }

    It 'lets app read and write /app/ and nothing else: etcd refuses /other with permission denied' {
        (Invoke-As app @('put', '/app/config', 'v1')).ExitCode | Should -Be 0
        (Invoke-As app @('get', '/app/config', '--print-value-only')).Output | Should -Be 'v1'
        $denied = Invoke-As app @('put', '/other', 'x')
        $denied.ExitCode | Should -Not -Be 0
        $denied.Output | Should -Match 'permission denied'
    }

    It 'keeps a read-only user read-only, lets root do anything, and refuses a certificate with no etcd user' {
        (Invoke-As reporting @('get', '/app/config', '--print-value-only')).Output | Should -Be 'v1'
        $write = Invoke-As reporting @('put', '/app/config', 'v2')
        $write.ExitCode | Should -Not -Be 0
        $write.Output | Should -Match 'permission denied'
        (Invoke-As root @('put', '/other', 'root-may')).ExitCode | Should -Be 0
        $before = Get-Refused NoUpstreamIdentity
        (Invoke-As stranger @('get', '/app/config') -Refused).ExitCode | Should -Not -Be 0
        Get-Refused NoUpstreamIdentity | Should -BeGreaterThan $before
    }

    It 'never lets one identity''s rights show through another''s, with both on many connections at once' {
        # 24 etcdctl processes at once, app and reporting taking turns: each gets exactly its own rights.
        $port = ([uri]$proxy.Endpoint).Port
        $lines = foreach ($i in 1..24) {
            $who = if ($i % 2) { 'app' } else { 'reporting' }
            "( ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:$port --cacert '$($edge.Path)' --cert '$($clients[$who].Path)' --key '$($clients[$who].KeyPath)' --dial-timeout 5s --command-timeout 10s put /app/mixed-$i $who >/dev/null 2>&1; echo `"$who `$?`" ) &"
        }
        $out = bash -c (($lines -join "`n") + "`nwait")
        $app = @($out | Where-Object { $_ -like 'app *' })
        $reporting = @($out | Where-Object { $_ -like 'reporting *' })
        $app.Count | Should -Be 12
        $reporting.Count | Should -Be 12
        $app | Should -Be (@('app 0') * 12)
        $reporting | Where-Object { $_ -eq 'reporting 0' } | Should -BeNullOrEmpty
        # And what app wrote is app's: every odd key, no even one.
        $keys = (Invoke-As root @('get', '/app/mixed-', '--prefix', '--keys-only')).Output -split "`n" | Where-Object { $_ }
        @($keys).Count | Should -Be 12
    }

    It 'cuts a revoked client off at once, on its open connection too, with no restart' {
        $kept = Open-Kept app
        try {
            $null = Revoke-EtcdCertificate $clients.app.Path -CA $edge -Reason KeyCompromise -Confirm:$false
            Wait-Until -Timeout '00:00:10' -Because 'the proxy to cut the revoked client''s open connection' { Test-Closed $kept }
            (Invoke-As app @('get', '/app/config') -Refused).ExitCode | Should -Not -Be 0
            Get-Refused Revoked | Should -BeGreaterOrEqual 2
        }
        finally { $kept.Tcp.Dispose() }
    }

    It 'cuts a user off at once, on its open connection too, when its identity is removed' {
        $kept = Open-Kept reporting
        try {
            Remove-EtcdProxyIdentity -Path $ids -User reporting -Confirm:$false
            Test-Path (Join-Path $ids 'reporting.pem') | Should -BeFalse
            Wait-Until -Timeout '00:00:10' -Because 'the proxy to cut the removed user''s open connection' { Test-Closed $kept }
            $r = Invoke-As reporting @('get', '/app/config') -Refused
            $r.ExitCode | Should -Not -Be 0
            Get-Refused NoUpstreamIdentity | Should -BeGreaterOrEqual 2
        }
        finally { $kept.Tcp.Dispose() }
        # Given back, it works again without a restart.
        $null = New-EtcdProxyIdentity -Path $ids -User reporting -CACertPath $cluster.CAPath
        Wait-Until -Timeout '00:00:10' -Because 'the identity to be picked up again' { (Invoke-As reporting @('get', '/app/config', '--print-value-only')).Output -eq 'v1' }
    }

    It 'sends a client without an identity of its own as the -FallbackIdentity, and only with it' {
        $fallback = Start-EtcdProxy -Name rbac-fallback -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $cluster.Endpoints -Certificate $serving -ClientCA $edge `
            -UpstreamCA $cluster.CAPath -UpstreamCertificate $cluster.ClientCertificatePath -IdentityPath $ids -FallbackIdentity auditor
        try {
            $as = { param($Arguments) Invoke-EtcdctlThrough $fallback.Endpoint $edge.Path $clients.stranger $Arguments }
            (Invoke-As root @('put', '/audit/log', 'entry')).ExitCode | Should -Be 0
            (& $as @('get', '/audit/log', '--print-value-only')).Output | Should -Be 'entry'
            (& $as @('put', '/audit/log', 'forged')).Output | Should -Match 'permission denied'
            (& $as @('get', '/app/config')).Output | Should -Match 'permission denied'
            (Get-EtcdProxy rbac-fallback).UpstreamIdentity | Should -Match "others as 'auditor'"
        }
        finally { Stop-EtcdProxy rbac-fallback }
    }

    It 'says with -SingleIdentity what it gives away, and refuses to guess when neither mode is given' {
        $e = Get-ThrownError { Start-EtcdProxy -Name guess -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $cluster.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCA $cluster.CAPath -UpstreamCertificate $cluster.ClientCertificatePath }
        $e.FullyQualifiedErrorId | Should -BeLike 'UpstreamIdentityRequired,*'
        $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $e.Exception.Message | Should -Match 'RBAC'
        $single = Start-EtcdProxy -Name rbac-single -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $cluster.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCA $cluster.CAPath -UpstreamCertificate $cluster.ClientCertificatePath -SingleIdentity
        try {
            (Get-EtcdProxy rbac-single).UpstreamIdentity | Should -Match "^single: every client reaches etcd as 'root'"
            # What it gives away, shown: the read-only user writes through it.
            (Invoke-EtcdctlThrough $single.Endpoint $edge.Path $clients.auditor @('put', '/other', 'flattened')).ExitCode | Should -Be 0
        }
        finally { Stop-EtcdProxy rbac-single }
    }

    It 'refuses a -FallbackIdentity the folder does not hold, and an identity folder that does not exist' {
        $common = @{ Listen = "https://127.0.0.1:$(Get-FreeTcpPort)"; Endpoint = $cluster.Endpoints; Certificate = $serving; ClientCA = $edge; UpstreamCA = $cluster.CAPath; UpstreamCertificate = $cluster.ClientCertificatePath }
        (Get-ThrownError { Start-EtcdProxy @common -IdentityPath $ids -FallbackIdentity nobody }).FullyQualifiedErrorId | Should -BeLike 'FallbackIdentityNotFound,*'
        (Get-ThrownError { Start-EtcdProxy @common -IdentityPath (Join-Path $TestDrive 'no-such') }).FullyQualifiedErrorId | Should -BeLike 'IdentityPathNotFound,*'
    }
}

Describe 'Test-EtcdSecurity through a proxy in front of a cluster with auth on' -Tag Integration, Security {
    It 'reports a proxy that flattens identities as High, with the client''s name and what etcd let it do' {
        $single = Start-EtcdProxy -Name audit-single -Listen "https://127.0.0.1:$(Get-FreeTcpPort)" -Endpoint $cluster.Endpoints -Certificate $serving -ClientCA $edge -UpstreamCA $cluster.CAPath -UpstreamCertificate $cluster.ClientCertificatePath -SingleIdentity
        try {
            $f = Test-EtcdSecurity -Endpoint $single.Endpoint -CA $edge -Certificate $clients.auditor
            $hit = $f | Where-Object Id -EQ 'IdentityFlattened'
            $hit.Severity | Should -Be 'High'
            $hit.Evidence | Should -Match "'auditor' could list etcd's users"
            $hit.Evidence | Should -Match 'in front of the members'
            Test-EtcdSecurity -Endpoint $single.Endpoint -CA $edge -Certificate $clients.auditor -Quiet | Should -BeFalse
        }
        finally { Stop-EtcdProxy audit-single }
    }

    It 'finds nothing of the kind through a proxy with per-client identities' {
        $f = Test-EtcdSecurity -Endpoint $proxy.Endpoint -CA $edge -Certificate $clients.auditor
        $f.Id | Should -Not -Contain 'IdentityFlattened'
        $f.Id | Should -Not -Contain 'AuthDisabled'
    }

    It 'says it could not tell with the root certificate, and does not pass a proxy it could not check' {
        $f = Test-EtcdSecurity -Endpoint $proxy.Endpoint -CA $edge -Certificate $clients.root
        ($f | Where-Object Id -EQ 'IdentityNotChecked').Remedy | Should -Match 'without the root role'
        (Test-EtcdSecurity -Endpoint $proxy.Endpoint -CA $edge -Certificate $clients.root -Summary).Passed | Should -BeFalse
    }
}

Describe 'New-EtcdProxyIdentity and Remove-EtcdProxyIdentity never touch a file that is not an identity' -Tag Integration {
    It 'refuses to replace a file of that name that is something else, even with -Force, and keeps an identity without it' {
        $dir = New-Item -ItemType Directory (Join-Path $TestDrive 'foreign-ids')
        Set-Content (Join-Path $dir 'ops.pem') 'the user''s own notes'
        $e = Get-ThrownError { New-EtcdProxyIdentity -Path $dir -User ops -CA $cluster.CAPath -Force }
        $e.FullyQualifiedErrorId | Should -BeLike 'FileExists,*'
        Get-Content (Join-Path $dir 'ops.pem') | Should -Be 'the user''s own notes'
        (Get-ThrownError { Remove-EtcdProxyIdentity -Path $dir -User ops }).FullyQualifiedErrorId | Should -BeLike 'NotAnIdentity,*'
        Test-Path (Join-Path $dir 'ops.pem') | Should -BeTrue

        $first = New-EtcdProxyIdentity -Path $dir -User dev -CA $cluster.CAPath
        (New-EtcdProxyIdentity -Path $dir -User dev -CA $cluster.CAPath).SerialNumber | Should -Be $first.SerialNumber
        (New-EtcdProxyIdentity -Path $dir -User dev -CA $cluster.CAPath -Force).SerialNumber | Should -Not -Be $first.SerialNumber
    }
}
