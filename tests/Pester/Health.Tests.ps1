BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $c = New-TestCluster -Root (Join-Path $TestDrive 'health')
    $auth = @{ CA = $c.CA; Certificate = $c.Client }
}

AfterAll { Stop-TestCluster }

Describe 'Test-EtcdClusterHealth against a real 3-member TLS cluster' -Tag Integration {
    It 'reports every member healthy, with one leader, one raft term and the running etcd version' {
        $rows = Test-EtcdClusterHealth $c.Endpoints @auth
        $rows.Count | Should -Be 3
        $rows.Healthy | Should -Be @($true, $true, $true)
        @($rows | Where-Object IsLeader).Count | Should -Be 1
        @($rows.RaftTerm | Sort-Object -Unique).Count | Should -Be 1
        @($rows.Leader | Sort-Object -Unique).Count | Should -Be 1
        $rows.Name | Sort-Object | Should -Be @('n1', 'n2', 'n3')
        $rows.Version | Sort-Object -Unique | Should -Be ((Get-EtcdBinary | Where-Object Name -EQ etcd).Version.ToString(3))
        foreach ($r in $rows) {
            # etcd's own form (types.ID): hex without leading zeros, as etcdctl prints it.
            $r.MemberId | Should -Match '^[1-9a-f][0-9a-f]{0,15}$'
            $r.DbSize | Should -BeGreaterThan 0
            $r.Latency | Should -BeOfType [TimeSpan]
            $r.Error | Should -BeNullOrEmpty
        }
    }

    It 'prints its table at 80 columns with every header on one line, Error included' {
        $rows = Test-EtcdClusterHealth $c.Endpoints @auth
        $stopped = [EtcdSecure.EtcdEndpointHealth] @{ Name = 'n4'; Endpoint = 'https://127.0.0.1:23790'; Healthy = $false; Error = 'connection refused by 127.0.0.1:23790 (nothing listens there)' }
        $lines = ($rows + $stopped | Out-String -Width 80) -split "`n"
        $header = $lines | Where-Object { $_ -match '^Name\s' }
        $header | Should -Match '\bError\b'
        $header | Should -Match '\bIsLeader\b'
        $lines | Where-Object { $_ -match 'connection' } | Should -Not -BeNullOrEmpty
    }

    It 'agrees with etcdctl on the leader and the member ids' {
        $status = Invoke-Etcdctl @('--endpoints', ($c.Endpoints -join ','), '--cacert', $c.CA.Path, '--cert', $c.Client.Path, '--key', $c.Client.KeyPath, 'endpoint', 'status', '-w', 'json')
        $status.ExitCode | Should -Be 0
        # etcd writes member ids in hex without leading zeros.
        $leaderFromEtcdctl = '{0:x}' -f [uint64](($status.Output | ConvertFrom-Json)[0].Status.leader)
        (Test-EtcdClusterHealth $c.Endpoints @auth | Where-Object IsLeader).MemberId | Should -Be $leaderFromEtcdctl
    }

    It 'summarises the cluster with -Summary and answers $true with -Quiet' {
        $s = Test-EtcdClusterHealth $c.Endpoints[0] @auth -Cluster -Summary
        $s.Healthy | Should -BeTrue
        $s.Members | Should -Be 3
        $s.HealthyMembers | Should -Be 3
        $s.Quorum | Should -Be 2
        $s.Leader | Should -BeIn @('n1', 'n2', 'n3')
        Test-EtcdClusterHealth $c.Endpoints[0] @auth -Quiet | Should -BeTrue
    }

    It 'finds every member from one endpoint with -Cluster' {
        (Test-EtcdClusterHealth $c.Endpoints[1] @auth -Cluster).Endpoint | Sort-Object | Should -Be @($c.Endpoints | Sort-Object)
    }

    It 'takes endpoints and credentials from ETCDCTL_* as etcdctl does' {
        $rows = Invoke-WithEnvironment @{ ETCDCTL_ENDPOINTS = $c.Endpoints -join ','; ETCDCTL_CACERT = $c.CA.Path; ETCDCTL_CERT = $c.Client.Path; ETCDCTL_KEY = $c.Client.KeyPath } {
            Test-EtcdClusterHealth
        }
        $rows.Healthy | Should -Be @($true, $true, $true)
        $env:ETCDCTL_ENDPOINTS | Should -BeNullOrEmpty
    }

    It 'checks from a fresh pwsh whatever the system certificate store holds, with the TLS warm-up at import and without it' {
        # The import starts building a certificate chain on another thread, which reads the system store; neither a
        # broken store nor the warm-up turned off may change what a check sees (only the cluster's CA is trusted).
        $junk = New-Item -ItemType Directory (Join-Path $TestDrive 'junk-certs') -Force
        Set-Content (Join-Path $junk 'bundle.crt') "-----BEGIN CERTIFICATE-----`nbm90IGEgY2VydGlmaWNhdGU=`n-----END CERTIFICATE-----"
        Set-Content (Join-Path $junk '00000000.0') 'not PEM at all'
        $check = "Import-Module '$ModuleManifest'; (Test-EtcdClusterHealth '$($c.Endpoints[0])' -Cluster -CA '$($c.CA.Path)' -Certificate '$($c.Client.Path)' -Timeout 00:00:20).Healthy -join ','"
        foreach ($environment in @(
                @{},
                @{ SSL_CERT_FILE = (Join-Path $junk 'bundle.crt'); SSL_CERT_DIR = "$junk" },
                @{ SSL_CERT_DIR = (Join-Path $TestDrive 'no-such-dir'); SSL_CERT_FILE = (Join-Path $TestDrive 'no-such-file') },
                @{ ETCDSECURE_TLS_WARM_UP = '0' })) {
            $run = Invoke-WithEnvironment $environment { Invoke-CleanPwsh $check }
            $run.ExitCode | Should -Be 0 -Because ($environment.Keys -join ',')
            $run.Output[-1] | Should -Be 'True,True,True' -Because ($run.Output -join ' | ')
        }
    }

    It 'takes a member from Get-EtcdMember on the pipeline (its URLs, CA and peer certificate)' {
        $rows = Get-EtcdMember n1, n2, n3 | Test-EtcdClusterHealth
        $rows.Count | Should -Be 3
        $rows.Healthy | Should -Be @($true, $true, $true)
    }
}

Describe 'Test-EtcdClusterHealth says why an endpoint is unhealthy' -Tag Integration {
    It 'names a missing client certificate' {
        $r = Test-EtcdClusterHealth $c.Endpoints[0] -CA $c.CA
        $r.Healthy | Should -BeFalse
        $r.Error | Should -Match 'requires a client certificate'
    }

    It 'names a server certificate from another CA' {
        $other = New-EtcdCA -Path (Join-Path $TestDrive 'other-ca') -CommonName other
        $r = Test-EtcdClusterHealth $c.Endpoints[0] -CA $other -Certificate $c.Client
        $r.Healthy | Should -BeFalse
        $r.Error | Should -Match 'does not chain to the given CA'
    }

    It 'names a server certificate that does not cover the host dialled' {
        $ipOnly = $c.CA | New-EtcdCertificate -Profile Peer -CommonName ip-only -Hosts 127.0.0.1
        $raw = Start-RawEtcd -Server $ipOnly -CA $c.CA -DataDir (Join-Path $TestDrive 'ip-only.etcd')
        try {
            $byIp = $raw.Url
            Wait-Until -Because 'the raw member to serve' { Test-EtcdClusterHealth $byIp @auth -Quiet -Timeout '00:00:01' }
            $r = Test-EtcdClusterHealth ($byIp -replace '127\.0\.0\.1', 'localhost') @auth
            $r.Healthy | Should -BeFalse
            $r.Error | Should -Match 'SAN mismatch'
        }
        finally { Stop-TestProcess $raw.Process }
    }

    It 'names a client certificate the server does not accept' {
        $other = New-EtcdCA -Path (Join-Path $TestDrive 'stranger-ca') -CommonName stranger
        $stranger = $other | New-EtcdCertificate -Profile Client -CommonName stranger
        $r = Test-EtcdClusterHealth $c.Endpoints[0] -CA $c.CA -Certificate $stranger
        $r.Healthy | Should -BeFalse
        $r.Error | Should -Match 'did not accept the client certificate'
    }

    It 'reports a port where nothing listens as refused' {
        $r = Test-EtcdClusterHealth "https://127.0.0.1:$(Get-FreeTcpPort)" @auth
        $r.Healthy | Should -BeFalse
        $r.Error | Should -Match 'connection refused'
    }

    It 'reports a silent endpoint as unhealthy within -Timeout instead of hanging' {
        $silent = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
        $silent.Start()
        try {
            $r = Test-EtcdClusterHealth "https://127.0.0.1:$($silent.LocalEndpoint.Port)", $c.Endpoints[0] @auth -Timeout '00:00:01'
            $r.Count | Should -Be 2
            $r[0].Healthy | Should -BeFalse
            $r[0].Error | Should -Match 'within 1 s'
            $r[1].Healthy | Should -BeTrue
        }
        finally { $silent.Stop() }
    }

    It 'bounds the whole call by one -Timeout on a silent port, not one per step (MemberList, status, explanation)' {
        $silent = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
        $silent.Start()
        try {
            $watch = [Diagnostics.Stopwatch]::StartNew()
            $r = Test-EtcdClusterHealth "https://127.0.0.1:$($silent.LocalEndpoint.Port)" @auth -Timeout '3s'
            # Four steps of 3 s each took 12 s before; one bound, plus the session's own overhead, stays well under 6.
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 5
            $r.Healthy | Should -BeFalse
            $r.Error | Should -Match 'within 3 s'
        }
        finally { $silent.Stop() }
    }

    It 'reports a stopped member unhealthy while the cluster stays healthy with quorum' {
        Stop-EtcdMember n3
        try {
            $rows = Test-EtcdClusterHealth $c.Endpoints[0] @auth -Cluster
            ($rows | Where-Object Name -EQ 'n3').Healthy | Should -BeFalse
            ($rows | Where-Object Name -EQ 'n3').Error | Should -Match 'connection refused'
            @($rows | Where-Object Healthy).Count | Should -Be 2
            $s = Test-EtcdClusterHealth $c.Endpoints[0] @auth -Cluster -Summary
            $s.Healthy | Should -BeTrue
            $s.Problems | Should -Match '^n3: '
        }
        finally {
            Restart-TestMember $c n3 | Out-Null
        }
        Wait-Until -Because 'n3 to rejoin' { Test-EtcdClusterHealth $c.ClientUrls['n3'] @auth -Quiet }
    }

    It 'fails with ClusterUnreachable when no endpoint answers -Cluster or Get-EtcdClusterMember' {
        $dead = "https://127.0.0.1:$(Get-FreeTcpPort)"
        $e = Get-ThrownError { Test-EtcdClusterHealth $dead @auth -Cluster }
        $e.FullyQualifiedErrorId | Should -Match '^ClusterUnreachable,'
        $e.CategoryInfo.Category | Should -Be 'ConnectionError'
        $e.Exception.Message | Should -Match 'connection refused'
        (Get-ThrownError { Get-EtcdClusterMember $dead @auth }).FullyQualifiedErrorId | Should -Match '^ClusterUnreachable,'
    }

    It 'refuses plain http endpoints and a missing CA with their own error ids' {
        $e = Get-ThrownError { Test-EtcdClusterHealth http://127.0.0.1:2379 @auth }
        $e.FullyQualifiedErrorId | Should -Match '^InsecureEndpoint,'
        $e.TargetObject | Should -Be 'http://127.0.0.1:2379'
        $e = Invoke-WithEnvironment @{ ETCDCTL_CACERT = $null } { Get-ThrownError { Test-EtcdClusterHealth $c.Endpoints[0] -Certificate $c.Client } }
        $e.FullyQualifiedErrorId | Should -Match '^CARequired,'
        $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
    }
}

Describe 'Get-EtcdClusterMember' -Tag Integration {
    It 'lists the members as objects, as etcdctl member list does' {
        $list = Get-EtcdClusterMember $c.Endpoints[0] @auth
        $list.Count | Should -Be 3
        $list.Name | Sort-Object | Should -Be @('n1', 'n2', 'n3')
        foreach ($m in $list) {
            $m.ClientUrls | Should -Be @($c.ClientUrls[$m.Name])
            $m.PeerUrls | Should -Be @($c.PeerUrls[$m.Name])
            $m.IsLearner | Should -BeFalse
            $m.IsStarted | Should -BeTrue
        }
        $fromEtcdctl = (Invoke-Etcdctl @('--endpoints', $c.Endpoints[0], '--cacert', $c.CA.Path, '--cert', $c.Client.Path, '--key', $c.Client.KeyPath, 'member', 'list', '-w', 'simple')).Output -split "`n" |
            ForEach-Object { ($_ -split ',')[0].Trim() }
        $list.Id | Sort-Object | Should -Be @($fromEtcdctl | Sort-Object)
    }
}
