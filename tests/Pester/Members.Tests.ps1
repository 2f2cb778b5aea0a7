BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $root = Join-Path $TestDrive 'cluster'
    $ca = New-EtcdCA -Path (Join-Path $root 'pki')
    $node = $ca | New-EtcdCertificate -Profile Peer -CommonName etcd-node -Hosts localhost, 127.0.0.1
    $client = $ca | New-EtcdCertificate -Profile Client -CommonName root
    $names = 'n1', 'n2', 'n3'
    $client_ports = @{}; $peers = @{}
    foreach ($n in $names) { $client_ports[$n] = Get-FreeTcpPort; $peers[$n] = "https://127.0.0.1:$(Get-FreeTcpPort)" }

    function Start-Node([string] $Name, [string] $State = 'New') {
        Start-EtcdMember $Name -ClientUrl "https://127.0.0.1:$($client_ports[$Name])" -PeerUrl $peers[$Name] -InitialCluster $peers `
            -ClusterState $State -ClusterToken 'pester' -Certificate $node -CA $ca -DataDir (Join-Path $root "nodes/$Name")
    }
    function Invoke-Ctl([string[]] $Arguments, [string] $Endpoint = ($client_ports.Values | ForEach-Object { "https://127.0.0.1:$_" }) -join ',') {
        Invoke-Etcdctl (@('--endpoints', $Endpoint, '--cacert', $ca.Path, '--cert', $client.Path, '--key', $client.KeyPath, '--dial-timeout', '2s', '--command-timeout', '5s') + $Arguments)
    }

    $started = foreach ($n in $names) { Start-Node $n }
}

# Nothing this suite started may outlive it.
AfterAll { Stop-TestCluster }

Describe 'Start-EtcdMember: a 3-member TLS cluster' -Tag Integration {
    It 'returns running members whose process ids are the etcd processes themselves' {
        $started.State | Should -Be @('Running', 'Running', 'Running')
        foreach ($m in $started) { (Get-Content "/proc/$($m.ProcessId)/comm") | Should -Be 'etcd' }
    }

    It 'starts etcd with TLS enforced on client and peer traffic' {
        foreach ($flag in '--client-cert-auth', '--peer-client-cert-auth', '--trusted-ca-file', '--peer-trusted-ca-file', '--cert-file', '--peer-cert-file', '--initial-cluster-state new') {
            $started[0].CommandLine | Should -Match ([regex]::Escape($flag))
        }
        $started[0].CommandLine | Should -Not -Match 'http://'
        $started[0].ClientUrls | Should -Be @("https://127.0.0.1:$($client_ports['n1'])")
    }

    It 'forms one cluster that real etcdctl lists with a client certificate' {
        Wait-Until -Timeout '00:00:20' -Because 'the cluster to elect a leader' { (Invoke-Ctl @('endpoint', 'health')).ExitCode -eq 0 }
        $list = Invoke-Ctl @('member', 'list')
        $list.ExitCode | Should -Be 0
        ($list.Output -split "`n" | Where-Object { $_ -match 'started' }).Count | Should -Be 3
        (Invoke-Ctl @('put', 'greeting', 'hello')).ExitCode | Should -Be 0
        (Invoke-Ctl @('get', 'greeting', '--print-value-only')).Output | Should -Be 'hello'
    }

    It 'refuses a client without a certificate' {
        $r = Invoke-Etcdctl @('--endpoints', "https://127.0.0.1:$($client_ports['n1'])", '--cacert', $ca.Path, '--dial-timeout', '2s', '--command-timeout', '3s', 'get', 'greeting')
        $r.ExitCode | Should -Not -Be 0
    }

    It 'appends to its log, so a log emptied under the running member (logrotate''s copytruncate) goes on from its start' {
        $log = (Get-EtcdMember n2).LogPath
        (Get-Item $log).Length | Should -BeGreaterThan 0
        $file = [IO.File]::Open($log, 'Open', 'Write', 'ReadWrite')
        try { $file.SetLength(0) } finally { $file.Dispose() }
        # A client without a certificate: etcd logs every connection it refuses.
        $null = Get-ServedCertificate $client_ports['n2']
        Wait-Until -Because 'the member to log the refused connection' { (Get-Item $log).Length -gt 0 }
        # Written where the file ends now, not where the member had got to before: no run of zero bytes in front.
        [char][IO.File]::ReadAllBytes($log)[0] | Should -Be '{'
    }

    It 'keeps serving with one member down, and the member rejoins with state Existing' {
        (Stop-EtcdMember n1 -PassThru).State | Should -Be 'Stopped'
        # Its record is gone: Get-EtcdMember says so as Get-Process does, without stopping the pipeline.
        Get-EtcdMember n1, n2 -ErrorVariable notFound -ErrorAction SilentlyContinue | ForEach-Object Name | Should -Be 'n2'
        $notFound.FullyQualifiedErrorId | Should -BeLike 'MemberNotFound,*'
        $notFound.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $others = "https://127.0.0.1:$($client_ports['n2']),https://127.0.0.1:$($client_ports['n3'])"
        (Invoke-Ctl @('put', 'while-down', 'yes') -Endpoint $others).ExitCode | Should -Be 0

        $back = Start-Node n1 -State Existing
        $back.State | Should -Be 'Running'
        $back.CommandLine | Should -Match 'initial-cluster-state existing'
        Wait-Until -Timeout '00:00:20' -Because 'n1 to catch up' {
            (Invoke-Ctl @('get', 'while-down', '--print-value-only', '--consistency', 's') -Endpoint "https://127.0.0.1:$($client_ports['n1'])").Output -eq 'yes'
        }
    }

    It 'lists the members it started with Get-EtcdMember, by wildcard' {
        (Get-EtcdMember 'n?').Name | Sort-Object | Should -Be @('n1', 'n2', 'n3')
        Get-EtcdMember 'zz*' | Should -BeNullOrEmpty
    }
}

Describe 'Start-EtcdMember: what it checks before starting' -Tag Integration {
    BeforeAll {
        function Start-Lone([hashtable] $Extra = @{}) {
            $p = @{ Name = 'lone'; ClientUrl = "https://127.0.0.1:$(Get-FreeTcpPort)"; PeerUrl = "https://127.0.0.1:$(Get-FreeTcpPort)"; Certificate = $node; CA = $ca; DataDir = (Join-Path $TestDrive "lone-$([guid]::NewGuid())") }
            foreach ($k in $Extra.Keys) { $p[$k] = $Extra[$k] }
            Start-EtcdMember @p
        }
        $before = @(Get-EtcdMember | Where-Object State -EQ 'Running').Count
    }

    It 'prints the command line with -WhatIf and starts nothing' {
        $port = Get-FreeTcpPort
        $out = Start-Lone @{ ClientUrl = "https://127.0.0.1:$port"; WhatIf = $true; Verbose = $true } 4>&1 | Out-String
        $out | Should -Match 'client-cert-auth'
        @(Get-EtcdMember | Where-Object State -EQ 'Running').Count | Should -Be $before
        { $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, $port); $l.Start(); $l.Stop() } | Should -Not -Throw
    }

    It 'fails with <ErrorId> on <Case>, leaving no process' -ForEach @(
        @{ Case = 'a port in use'; ErrorId = 'PortInUse'; Extra = 'PORT' }
        @{ Case = 'an advertised IP missing from the SANs'; ErrorId = 'MemberCertificateInvalid'; Extra = @{ AdvertiseClientUrl = 'https://127.0.0.2:23790' } }
        @{ Case = 'a plain http URL'; ErrorId = 'InvalidUrl'; Extra = @{ ClientUrl = 'http://127.0.0.1:23791' } }
        @{ Case = 'a name not in the initial cluster'; ErrorId = 'NameNotInInitialCluster'; Extra = @{ InitialCluster = 'other=https://127.0.0.1:23792' } }
        @{ Case = 'a wildcard listen address without advertise URL'; ErrorId = 'AdvertiseUrlRequired'; Extra = @{ ClientUrl = 'https://0.0.0.0:23793' } }
        @{ Case = 'a client certificate as server certificate'; ErrorId = 'MemberCertificateInvalid'; Extra = 'CLIENT' }
    ) {
        $listener = $null
        try {
            $x = if ($Extra -eq 'PORT') {
                $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0); $listener.Start()
                @{ ClientUrl = "https://127.0.0.1:$($listener.LocalEndpoint.Port)" }
            } elseif ($Extra -eq 'CLIENT') { @{ Certificate = $client } } else { $Extra }
            $err = Get-ThrownError { Start-Lone $x }
            $err.FullyQualifiedErrorId | Should -BeLike "$ErrorId,*"
            $err.TargetObject | Should -Not -BeNullOrEmpty
            @(Get-EtcdMember | Where-Object State -EQ 'Running').Count | Should -Be $before
        }
        finally { if ($listener) { $listener.Stop() } }
    }

    It 'starts a member without the ETCD_* variables of the session, which etcd would read as flags, and says which' {
        $metrics = Get-FreeTcpPort
        $all = Invoke-WithEnvironment @{ ETCD_LISTEN_METRICS_URLS = "http://127.0.0.1:$metrics"; ETCD_UNSAFE_NO_FSYNC = 'true' } { Start-Lone @{ Name = 'clean-env' } 3>&1 }
        $m = $all | Where-Object { $_ -isnot [Management.Automation.WarningRecord] }
        try {
            ($all | Where-Object { $_ -is [Management.Automation.WarningRecord] }) -join ' ' | Should -Match 'ETCD_LISTEN_METRICS_URLS, ETCD_UNSAFE_NO_FSYNC'
            $environ = [IO.File]::ReadAllText("/proc/$($m.ProcessId)/environ") -split "`0"
            $environ | Where-Object { $_ -like 'ETCD_*' } | Should -BeNullOrEmpty
            # The variable would have opened a plain-HTTP metrics port: nothing listens there.
            { [Net.Sockets.TcpClient]::new('127.0.0.1', $metrics).Dispose() } | Should -Throw
        }
        finally { Stop-EtcdMember clean-env }
    }

    It 'reports why etcd exited, with its last log lines, and leaves no process' {
        $file = Join-Path $TestDrive 'not-a-dir'
        Set-Content $file 'x'
        $err = Get-ThrownError { Start-Lone @{ Name = 'broken'; DataDir = $file } }
        $err.FullyQualifiedErrorId | Should -BeLike 'MemberExited,*'
        $err.Exception.Message | Should -Match 'Last lines'
        (Get-EtcdMember broken).State | Should -Be 'Exited'
        (Get-EtcdMember broken).LastLogLines | Should -Not -BeNullOrEmpty
    }
}

Describe 'Stop-EtcdMember' -Tag Integration {
    It 'leaves a process it did not start alone' {
        $sleep = Start-Process sleep -ArgumentList 60 -PassThru
        try {
            $err = Get-ThrownError { Stop-EtcdMember -ProcessId $sleep.Id }
            $err.FullyQualifiedErrorId | Should -BeLike 'MemberNotFound,*'
            $sleep.HasExited | Should -BeFalse
        }
        finally { Stop-TestProcess $sleep }
    }

    It 'fails for a name it never started' {
        (Get-ThrownError { Stop-EtcdMember nobody }).FullyQualifiedErrorId | Should -BeLike 'MemberNotFound,*'
    }
}

Describe 'New-EtcdMemberConfig' -Tag Integration {
    It 'writes a YAML config that a real etcd starts from, with TLS enforced on both sides' {
        $cp = Get-FreeTcpPort; $pp = Get-FreeTcpPort
        $file = Join-Path $TestDrive 'cfg/m1.yaml'
        $written = New-EtcdMemberConfig m1 -ClientUrl "https://127.0.0.1:$cp" -PeerUrl "https://127.0.0.1:$pp" -Certificate $node -CA $ca -DataDir (Join-Path $TestDrive 'cfg/m1.etcd') -Path $file
        $written.FullName | Should -Be $file
        # As Get-Item returns it: the file table shows mode, owner and size, not blanks.
        $written.UnixMode | Should -Be '-rw-r--r--'
        $written.Length | Should -BeGreaterThan 0
        $written.PSProvider.Name | Should -Be 'FileSystem'
        ($written | Format-Table | Out-String) | Should -Match "-rw-r--r--\s+\S+\s+\S+.*\s$($written.Length)\s+m1\.yaml"
        $text = Get-Content $file -Raw
        $text | Should -Match "(?m)^client-transport-security:\s*\n(\s+.*\n)*?\s+client-cert-auth: true"
        $text | Should -Match "(?m)^peer-transport-security:"
        $text | Should -Not -Match 'http://'
        $p = Start-Process etcd -ArgumentList '--config-file', $file -PassThru -RedirectStandardError (Join-Path $TestDrive 'cfg/m1.log') -RedirectStandardOutput (Join-Path $TestDrive 'cfg/m1.out')
        try {
            Wait-Until -Because 'etcd started from the config file to be healthy' { Test-EtcdClusterHealth "https://127.0.0.1:$cp" -CA $ca -Certificate $client -Quiet -Timeout '00:00:01' }
            (Test-EtcdClusterHealth "https://127.0.0.1:$cp" -CA $ca).Error | Should -Match 'requires a client certificate'
        }
        finally { Stop-TestProcess $p }
    }

    It 'writes only the keys the target etcd version knows' {
        $common = @{ ClientUrl = 'https://127.0.0.1:2379'; PeerUrl = 'https://127.0.0.1:2380'; Certificate = $node; CA = $ca }
        $v34 = Get-Content (New-EtcdMemberConfig a @common -EtcdVersion 3.4.20 -Path (Join-Path $TestDrive 'a.yaml')) -Raw
        $v36 = Get-Content (New-EtcdMemberConfig b @common -EtcdVersion 3.6.0 -Path (Join-Path $TestDrive 'b.yaml')) -Raw
        $v34 | Should -Match "logger: 'zap'"
        $v34 | Should -Not -Match 'tls-min-version'
        $v36 | Should -Not -Match 'logger'
        $v36 | Should -Match "tls-min-version: 'TLS1.2'"
    }

    It 'does not overwrite a config file without -Force' {
        $file = Join-Path $TestDrive 'keep.yaml'
        Set-Content $file 'mine'
        $e = Get-ThrownError { New-EtcdMemberConfig k -Certificate $node -CA $ca -Path $file }
        $e.FullyQualifiedErrorId | Should -Match '^FileExists,'
        Get-Content $file | Should -Be 'mine'
        New-EtcdMemberConfig k -Certificate $node -CA $ca -Path $file -Force | Out-Null
        Get-Content $file -Raw | Should -Match "name: 'k'"
    }
}
