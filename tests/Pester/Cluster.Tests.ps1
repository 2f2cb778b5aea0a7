BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $root = Join-Path $TestDrive 'wfb'
    $cluster = New-EtcdCluster -Path $root -Name wfb -Size 3
}

AfterAll { Stop-TestCluster }

Describe 'New-EtcdCluster: workflow B in one command' -Tag Integration {
    It 'starts three members with a leader and returns how to reach them' {
        $cluster.Name | Should -Be 'wfb'
        $cluster.Members.Name | Should -Be @('wfb-1', 'wfb-2', 'wfb-3')
        $cluster.Members.State | Should -Be @('Running', 'Running', 'Running')
        $cluster.Endpoints.Count | Should -Be 3
        $cluster.Leader | Should -BeIn $cluster.Members.Name
        foreach ($m in $cluster.Members) { $m.CommandLine | Should -Match '--client-cert-auth.*--peer-client-cert-auth' }
    }

    It 'lays out the PKI as workflow B does: ECDSA, a root client certificate, a server and a peer certificate per member; peers from a CA of their own' {
        $assets = Join-Path $root 'tls/assets'
        foreach ($f in 'ca.pem', 'ca-key.pem', 'ca-crl.pem', 'peer-ca.pem', 'peer-ca-key.pem', 'peer-ca-crl.pem', 'root.pem', 'root-key.pem', 'wfb-1-server.pem', 'wfb-1-peer.pem', 'wfb-3-peer-key.pem') {
            Join-Path $assets $f | Should -Exist
        }
        (Get-EtcdCertificate (Join-Path $assets 'root.pem')).CommonName | Should -Be 'root'
        (Get-EtcdCertificate (Join-Path $assets 'ca.pem')).KeyAlgorithm | Should -Be 'ECDSA'
        $server = Get-EtcdCertificate (Join-Path $assets 'wfb-2-server.pem')
        $server.CommonName | Should -Be 'etcd-server'
        $server.DnsNames | Should -Contain 'wfb-2.local'
        $peer = Get-EtcdCertificate (Join-Path $assets 'wfb-2-peer.pem')
        $peer.CommonName | Should -Be 'etcd-member'
        $peer.Issuer | Should -Be 'CN=wfb-peer-ca'
        $server.Issuer | Should -Be 'CN=wfb-ca'
        (Get-EtcdIssuedCertificate (Join-Path $assets 'ca.pem')).CommonName | Sort-Object -Unique | Should -Be @('etcd-server', 'root')
        (Get-EtcdIssuedCertificate (Join-Path $assets 'peer-ca.pem')).Count | Should -Be 3
        (Get-Item (Join-Path $assets 'wfb-2-peer-key.pem')).UnixFileMode | Should -Be ([IO.UnixFileMode] 'UserRead, UserWrite')
        foreach ($m in $cluster.Members) { $m.LogPath | Should -Be (Join-Path $root "logs/$($m.Name).log") }
    }

    It 'gives ETCDCTL_* lines with which real etcdctl lists the three members' {
        $envLines = $cluster.EnvironmentLines -join "`n"
        $list = & sh -c "$envLines`netcdctl member list" 2>&1
        $LASTEXITCODE | Should -Be 0
        @($list | Where-Object { $_ -match 'started' }).Count | Should -Be 3
        $cluster.PowerShellEnvironmentLines | Should -Contain "`$env:ETCDCTL_ENDPOINTS = '$($cluster.Endpoints -join ',')'"
    }

    It 'pipes into Test-EtcdClusterHealth' {
        ($cluster | Test-EtcdClusterHealth).Healthy | Should -Be @($true, $true, $true)
    }

    It 'takes the ports workflow B names when they are given' {
        $e = Get-ThrownError { New-EtcdCluster -Path (Join-Path $TestDrive 'bad') -Name bad -ClientPort 12379 }
        $e.FullyQualifiedErrorId | Should -Match '^InvalidPort,'
    }

    It 'refuses a second running cluster with the same name' {
        $e = Get-ThrownError { New-EtcdCluster -Path (Join-Path $TestDrive 'again') -Name wfb }
        $e.FullyQualifiedErrorId | Should -Match '^ClusterAlreadyRunning,'
        Join-Path $TestDrive 'again' | Should -Not -Exist
    }

    It 'leaves nothing running when a member cannot start (port taken)' {
        $taken = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
        $taken.Start()
        try {
            $before = @(Get-EtcdMember | Where-Object State -EQ 'Running').Count
            $ports = @((Get-FreeTcpPort), (Get-FreeTcpPort), $taken.LocalEndpoint.Port)
            $e = Get-ThrownError { New-EtcdCluster -Path (Join-Path $TestDrive 'clash') -Name clash -ClientPort $ports }
            $e.FullyQualifiedErrorId | Should -Match '^PortInUse,'
            @(Get-EtcdMember | Where-Object State -EQ 'Running').Count | Should -Be $before
            # Refused before anything was written: no PKI (CA keys included) is left for a retry to trip over.
            Join-Path $TestDrive 'clash' | Should -Not -Exist
        }
        finally { $taken.Stop() }
        $retry = New-EtcdCluster -Path (Join-Path $TestDrive 'clash') -Name clash -Size 1
        $retry.Leader | Should -Be 'clash-1'
        Remove-EtcdCluster clash -Confirm:$false
    }

    It 'takes back what it wrote when the cluster does not come up, and leaves what was in the folder before' {
        $path = New-Item -ItemType Directory (Join-Path $TestDrive 'late')
        Set-Content (Join-Path $path 'keep.txt') 'the user''s own'
        $before = @(Get-EtcdMember | Where-Object State -EQ 'Running').Count
        # No time at all to come up: the start fails after the PKI and the member's files were written.
        $e = Get-ThrownError { New-EtcdCluster -Path $path -Name late -Size 1 -StartTimeout '0s' -AllowNonEmptyPath }
        $e.FullyQualifiedErrorId | Should -Match '^(MemberStartTimeout|ClusterStartTimeout|MemberExited),'
        $e.Exception.Message | Should -Match 'Nothing this command wrote .* was kept'
        @(Get-ChildItem $path -Force).Name | Should -Be @('keep.txt')
        @(Get-EtcdMember | Where-Object State -EQ 'Running').Count | Should -Be $before
        Get-EtcdCluster late -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        # The retry starts from where the failed attempt did: no FileExists, no ClusterDataExists.
        (New-EtcdCluster -Path $path -Name late -Size 1 -AllowNonEmptyPath).Leader | Should -Be 'late-1'
        Remove-EtcdCluster late -Confirm:$false
        # Removal takes what the module made, never the folder's other files.
        @(Get-ChildItem $path -Force).Name | Should -Be @('keep.txt')
    }

    It 'refuses a folder that holds files it did not make, writing nothing, unless told -AllowNonEmptyPath' {
        $repo = New-Item -ItemType Directory (Join-Path $TestDrive 'a-repository')
        Set-Content (Join-Path $repo 'README.md') 'a user''s work'
        $null = New-Item -ItemType Directory (Join-Path $repo '.git')
        $e = Get-ThrownError { New-EtcdCluster -Path $repo -Name inrepo -Size 1 }
        $e.FullyQualifiedErrorId | Should -BeLike 'PathNotEmpty,*'
        $e.CategoryInfo.Category | Should -Be 'ResourceExists'
        $e.Exception.Message | Should -Match 'README.md'
        @(Get-ChildItem $repo -Force).Name | Sort-Object | Should -Be @('.git', 'README.md')
        Get-EtcdCluster inrepo -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'will not start a new cluster on an earlier one''s data, and replaces that data only with -Force' {
        $path = Join-Path $TestDrive 'redo'
        $first = New-EtcdCluster -Path $path -Name redo -Size 1
        $env1 = $first.EnvironmentLines -join "`n"
        & sh -c "$env1`netcdctl put earlier yes" | Should -Be 'OK'
        Stop-EtcdCluster redo
        $ca = Get-FileHash (Join-Path $path 'tls/assets/ca.pem')
        $e = Get-ThrownError { New-EtcdCluster -Path $path -Name redo -Size 1 }
        $e.FullyQualifiedErrorId | Should -Match '^ClusterDataExists,'
        $e.CategoryInfo.Category | Should -Be 'ResourceExists'
        $e.TargetObject | Should -Be (Join-Path $path 'data/redo-1')
        $e.Exception.Message | Should -Match '-Force replaces the data'
        # Nothing was touched: the same CA, the old data, no member running.
        (Get-FileHash (Join-Path $path 'tls/assets/ca.pem')).Hash | Should -Be $ca.Hash
        Join-Path $path 'data/redo-1/member' | Should -Exist
        (Get-EtcdCluster redo).State | Should -Be 'Stopped'

        $second = New-EtcdCluster -Path $path -Name redo -Size 1 -Force -WarningVariable warned -WarningAction SilentlyContinue
        ($warned -join "`n") | Should -Match 'Deleted the data of an earlier member'
        $second.Leader | Should -Be 'redo-1'
        $env2 = $second.EnvironmentLines -join "`n"
        & sh -c "$env2`netcdctl get earlier --print-value-only" | Should -BeNullOrEmpty
        $LASTEXITCODE | Should -Be 0
        Remove-EtcdCluster redo -Confirm:$false
    }

    It 'stops with Stop-EtcdCluster and keeps the data; Remove-EtcdCluster deletes the folder' {
        $small = New-EtcdCluster -Path (Join-Path $TestDrive 'small') -Name small -Size 1
        $pid1 = $small.Members[0].ProcessId
        # Any later session asks the running members who leads; a stopped cluster has no leader to name.
        (Get-EtcdCluster small).Leader | Should -Be 'small-1'
        Stop-EtcdCluster small
        (Get-EtcdCluster small).Leader | Should -BeNullOrEmpty
        Get-Process -Id $pid1 -ErrorAction Ignore | Should -BeNullOrEmpty
        Join-Path $TestDrive 'small/data/small-1' | Should -Exist
        Remove-EtcdCluster small -Confirm:$false
        Join-Path $TestDrive 'small' | Should -Not -Exist
        (Get-ThrownError { Stop-EtcdCluster small }).FullyQualifiedErrorId | Should -Match '^ClusterNotFound,'
    }
}
