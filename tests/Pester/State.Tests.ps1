# What the module starts outlives the session that started it: members and clusters are found and stopped from
# any later pwsh process, through the state store, and never by a PID that now belongs to someone else.
BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    function Invoke-OtherSession([string] $Script) {
        # A separate pwsh process with this file's state store (inherited), as a later runbook step would be.
        $r = Invoke-CleanPwsh "Import-Module '$script:ModuleManifest'; `$ErrorActionPreference = 'Stop'; $Script"
        $r.ExitCode | Should -Be 0 -Because ($r.Output -join "`n")
        $r.Output
    }
    function Get-StoredMember([string] $Name) { Get-Content (Join-Path $env:ETCDSECURE_STATE_DIR "members/$Name.json") -Raw | ConvertFrom-Json }
}

AfterAll { Stop-TestCluster }

Describe 'A cluster made in one pwsh process, used and removed from another' -Tag Integration {
    It 'is listed, reached, stopped and removed after the process that made it has exited' {
        $path = Join-Path $TestDrive 'made-elsewhere'
        $out = Invoke-OtherSession "`$c = New-EtcdCluster -Path '$path' -Name elsewhere -Size 1; 'pid=' + `$c.Members[0].ProcessId"
        $memberPid = [int](($out | Where-Object { $_ -like 'pid=*' }) -replace 'pid=')

        $cluster = Get-EtcdCluster elsewhere
        $cluster.State | Should -Be 'Running'
        $cluster.Path | Should -Be $path
        $cluster.Members.ProcessId | Should -Be $memberPid
        (Get-EtcdMember elsewhere-1).State | Should -Be 'Running'
        (Get-Content "/proc/$memberPid/comm") | Should -Be 'etcd'
        # The cluster's own environment lines work from here.
        $r = Invoke-Etcdctl @('--endpoints', $cluster.Endpoints[0], '--cacert', $cluster.CAPath, '--cert', $cluster.ClientCertificatePath, '--key', $cluster.ClientKeyPath, 'put', 'k', 'v')
        $r.ExitCode | Should -Be 0 -Because $r.Output
        (TabExpansion2 -inputScript 'Stop-EtcdCluster else' -cursorColumn 21).CompletionMatches.CompletionText | Should -Contain 'elsewhere'
        (TabExpansion2 -inputScript 'Get-EtcdMember elsew' -cursorColumn 20).CompletionMatches.CompletionText | Should -Contain 'elsewhere-1'

        Stop-EtcdCluster elsewhere
        Test-ProcessRunning $memberPid | Should -BeFalse
        (Get-EtcdCluster elsewhere).State | Should -Be 'Stopped'
        (Get-EtcdCluster elsewhere).Members.State | Should -Be 'Stopped'
        Join-Path $path 'data/elsewhere-1' | Should -Exist

        Remove-EtcdCluster elsewhere -Confirm:$false
        $path | Should -Not -Exist
        Get-EtcdCluster elsewhere -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e.FullyQualifiedErrorId | Should -BeLike 'ClusterNotFound,*'
    }

    It 'is removed once when two processes remove it at the same time, and leaves nothing running' {
        $path = Join-Path $TestDrive 'contended'
        $c = New-EtcdCluster -Path $path -Name contended -Size 1
        $memberPid = $c.Members[0].ProcessId
        $pwsh = Get-PwshCommand
        $script = "Import-Module '$script:ModuleManifest'; `$ErrorActionPreference = 'Stop'; Remove-EtcdCluster contended -Confirm:`$false; 'removed'"
        $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($script))
        $removers = 1..2 | ForEach-Object {
            $psi = [Diagnostics.ProcessStartInfo]::new($pwsh.Path)
            foreach ($a in $pwsh.Arguments + @('-NoProfile', '-NonInteractive', '-EncodedCommand', $encoded)) { $psi.ArgumentList.Add($a) }
            $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
            [Diagnostics.Process]::Start($psi)
        }
        $removed = 0
        foreach ($p in $removers) {
            $p.WaitForExit(60000) | Should -BeTrue
            $err = $p.StandardError.ReadToEnd()
            if ($p.StandardOutput.ReadToEnd() -match 'removed') { $removed++; $p.ExitCode | Should -Be 0 }
            # The other one either raced in the same moment (and found the work done) or came after: ClusterNotFound.
            else { $err | Should -Match "No cluster named 'contended'" }
        }
        $removed | Should -BeGreaterOrEqual 1
        Test-ProcessRunning $memberPid | Should -BeFalse
        $path | Should -Not -Exist
        Get-EtcdCluster | ForEach-Object Name | Should -Not -Contain 'contended'
        Get-EtcdMember | ForEach-Object Name | Should -Not -Contain 'contended-1'
    }
}

Describe 'Members whose process is gone' -Tag Integration {
    BeforeAll {
        $ca = New-EtcdCA -Path (Join-Path $TestDrive 'pki') -CommonName state-ca
        $node = $ca | New-EtcdCertificate -Profile Peer -CommonName etcd-node -Hosts localhost, 127.0.0.1
        function Start-Solo([string] $Name) {
            $peer = "https://127.0.0.1:$(Get-FreeTcpPort)"
            Invoke-OtherSession "`$m = Start-EtcdMember $Name -ClientUrl https://127.0.0.1:$(Get-FreeTcpPort) -PeerUrl $peer -InitialCluster @{ '$Name' = '$peer' } -Certificate '$($node.Path)' -CA '$($ca.Path)' -DataDir '$(Join-Path $TestDrive "nodes/$Name")'; 'pid=' + `$m.ProcessId" |
                Where-Object { $_ -like 'pid=*' } | ForEach-Object { [int]($_ -replace 'pid=') }
        }
    }

    It 'shows a member killed with SIGKILL as Exited, with a reason, until Stop-EtcdMember removes its record' {
        $memberPid = Start-Solo killed
        (Get-EtcdMember killed).State | Should -Be 'Running'
        kill -KILL $memberPid
        Wait-Until -Because 'the killed member to show as Exited' { (Get-EtcdMember killed).State -eq 'Exited' }
        (Get-EtcdMember killed).ExitReason | Should -Match "process $memberPid is gone"
        (Stop-EtcdMember killed -PassThru).State | Should -Be 'Stopped'
        Get-EtcdMember killed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'never signals a program that took over a recorded PID' {
        $memberPid = Start-Solo reused
        kill -KILL $memberPid
        Wait-Until -Because 'the member to be gone' { (Get-EtcdMember reused).State -eq 'Exited' }
        # Another program under the recorded PID: the record is rewritten to point at it, start time unchanged.
        $other = Start-Process sleep -ArgumentList 300 -PassThru
        try {
            $file = Join-Path $env:ETCDSECURE_STATE_DIR 'members/reused.json'
            $record = Get-Content $file -Raw | ConvertFrom-Json
            $record.ProcessId = $other.Id
            $record | ConvertTo-Json -Depth 10 | Set-Content $file
            (Get-EtcdMember reused).State | Should -Be 'Exited'
            (Get-ThrownError { Stop-EtcdMember -ProcessId $other.Id }).FullyQualifiedErrorId | Should -BeLike 'MemberNotFound,*'
            Stop-EtcdMember reused
            $other.HasExited | Should -BeFalse
        }
        finally { Stop-TestProcess $other }
    }

    It 'stops a member started by another session, by name, and keeps its data' {
        $memberPid = Start-Solo other-session
        (Get-StoredMember other-session).ProcessId | Should -Be $memberPid
        Stop-EtcdMember other-session -Timeout '00:00:10'
        Test-ProcessRunning $memberPid | Should -BeFalse
        Join-Path $TestDrive 'nodes/other-session' | Should -Exist
    }

    It 'starts etcd in a session of its own without setsid, through perl (as on macOS), and says PlatformNotSupported without either' -ForEach @(
        @{ Tools = @('perl'); Expect = 'session' }
        @{ Tools = @(); Expect = 'PlatformNotSupported' }
    ) {
        # A PATH with only these tools: etcd is given by its path, /bin/sh is absolute.
        $bin = Join-Path $TestDrive "bin-$($Tools.Count)"
        $null = New-Item -ItemType Directory -Force $bin
        foreach ($t in $Tools) { $null = New-Item -ItemType SymbolicLink -Path (Join-Path $bin $t) -Target (Get-Command $t -CommandType Application | Select-Object -First 1).Source }
        $name = "nosetsid-$($Tools.Count)"
        $peer = "https://127.0.0.1:$(Get-FreeTcpPort)"
        $etcd = (Get-Command etcd -CommandType Application | Select-Object -First 1).Source
        $r = Invoke-CleanPwsh ("Import-Module '$script:ModuleManifest'; `$env:PATH = '$bin'; " +
            "try { `$m = Start-EtcdMember $name -EtcdPath '$etcd' -ClientUrl https://127.0.0.1:$(Get-FreeTcpPort) -PeerUrl $peer -InitialCluster @{ '$name' = '$peer' } -Certificate '$($node.Path)' -CA '$($ca.Path)' -DataDir '$(Join-Path $TestDrive "nodes/$name")'; 'pid=' + `$m.ProcessId } " +
            "catch { 'error=' + `$_.FullyQualifiedErrorId; 'message=' + `$_.Exception.Message }")
        if ($Expect -eq 'session') {
            $found = @($r.Output | Where-Object { $_ -like 'pid=*' })
            $found.Count | Should -Be 1 -Because ($r.Output -join "`n")
            $memberPid = [int]($found[0] -replace 'pid=')
            # Field 6 of /proc/PID/stat is the session id: a session of its own means it equals the PID.
            $stat = Get-Content "/proc/$memberPid/stat" -Raw
            ($stat.Substring($stat.LastIndexOf(')') + 2) -split ' ')[3] | Should -Be "$memberPid"
            Stop-EtcdMember $name
        }
        else {
            $r.Output | Should -Contain 'error=PlatformNotSupported,EtcdSecure.PowerShell.Cmdlets.StartEtcdMemberCommand' -Because ($r.Output -join "`n")
            Get-EtcdMember $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }
    }

    It 'keeps its records where only the user can read them' {
        (Get-Item $env:ETCDSECURE_STATE_DIR).UnixFileMode | Should -Be ([IO.UnixFileMode] 'UserRead, UserWrite, UserExecute')
    }
}

Describe 'A detached proxy' -Tag Integration {
    BeforeAll {
        $cluster = New-EtcdCluster -Path (Join-Path $TestDrive 'behind-proxy') -Name behind -Size 1
        $assets = Join-Path $cluster.Path 'tls/assets'
        $port = Get-FreeTcpPort
        $endpoint = "https://127.0.0.1:$port"
    }
    It 'outlives the session that started it, reports live counters to another, and stops from there' {
        # A runtime setting of the user's own is kept; the proxy's defaults fill in the rest.
        $out = Invoke-OtherSession ("`$env:DOTNET_ReadyToRun = '1'; `$p = Start-EtcdProxy -Detached -Name detached -Listen $endpoint -Endpoint $($cluster.Endpoints[0]) " +
            "-Certificate '$assets/behind-1-server.pem' -CA '$($cluster.CAPath)' -UpstreamCertificate '$($cluster.ClientCertificatePath)' -SingleIdentity; 'pid=' + `$p.ProcessId")
        $proxyPid = [int](($out | Where-Object { $_ -like 'pid=*' }) -replace 'pid=')
        Test-ProcessRunning $proxyPid | Should -BeTrue
        $environ = ([IO.File]::ReadAllText("/proc/$proxyPid/environ")) -split "`0"
        $environ | Should -Contain 'DOTNET_TieredCompilation=0'
        $environ | Should -Contain 'DOTNET_ReadyToRun=1'

        # The starting session has exited; the proxy serves etcdctl and answers Get-EtcdProxy from this one.
        $r = Invoke-Etcdctl @('--endpoints', $endpoint, '--cacert', $cluster.CAPath, '--cert', $cluster.ClientCertificatePath, '--key', $cluster.ClientKeyPath, 'put', 'via-detached', 'yes')
        $r.ExitCode | Should -Be 0 -Because $r.Output
        $info = Get-EtcdProxy detached
        $info.Detached | Should -BeTrue
        $info.State | Should -Be 'Running'
        $info.ProcessId | Should -Be $proxyPid
        $info.Endpoint | Should -Be $endpoint
        $info.TotalConnections | Should -BeGreaterOrEqual 1
        $info.Members.Alive | Should -Be $true
        # Its own process, with the runtime settings of a service, sets up the shared TLS contexts too.
        $info.TlsServerContext | Should -Be 'shared'
        $info.TlsUpstreamContext | Should -Be 'shared'
        Get-Content $info.LogPath -Raw | Should -Match 'listening on'
        (TabExpansion2 -inputScript 'Stop-EtcdProxy deta' -cursorColumn 19).CompletionMatches.CompletionText | Should -Contain 'detached'
        # Only this user may talk to it.
        (Get-Item (Join-Path $env:ETCDSECURE_STATE_DIR 'proxies/detached.sock')).UnixFileMode | Should -Be ([IO.UnixFileMode] 'UserRead, UserWrite')

        (Stop-EtcdProxy detached -PassThru).State | Should -Be 'Stopped'
        Test-ProcessRunning $proxyPid | Should -BeFalse
        $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, $port)
        { $l.Start() } | Should -Not -Throw
        $l.Stop()
        Get-EtcdProxy detached -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'gives its very first connection''s TLS buffers back once it idles, on both sides' {
        # A fresh process compiles as it goes (fully optimized, in a detached proxy), so the thread that finished the
        # first handshakes is slow to reach its hop to the relay loop. The pumps must still start on the loop, where
        # a silent connection's waiting reads are watched and its buffers freed; started where the handshake
        # finished, they were never watched, and this connection kept its buffers for as long as it stayed silent.
        $out = Invoke-OtherSession ("`$p = Start-EtcdProxy -Detached -Name first-idle -Listen $endpoint -Endpoint $($cluster.Endpoints[0]) " +
            "-Certificate '$assets/behind-1-server.pem' -CA '$($cluster.CAPath)' -UpstreamCertificate '$($cluster.ClientCertificatePath)' -SingleIdentity; 'pid=' + `$p.ProcessId")
        $proxyPid = [int](($out | Where-Object { $_ -like 'pid=*' }) -replace 'pid=')
        try {
            $client = [Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($cluster.ClientCertificatePath, $cluster.ClientKeyPath)
            $conn = Connect-TlsClient $port $client $cluster.CAPath
            try {
                (Get-EtcdProxy first-idle).TotalConnections | Should -Be 1
                Wait-Until -Timeout '00:00:10' -Because 'both TLS sides of the silent first connection give their buffers back' { (Get-EtcdProxy first-idle).TlsIdleFrees -ge 2 }
            }
            finally { $conn.Tcp.Dispose() }
        }
        finally { Stop-EtcdProxy first-idle -ErrorAction SilentlyContinue }
        Test-ProcessRunning $proxyPid | Should -BeFalse
    }

    It 'is one proxy per name across jobs and detached processes; a stopped job does not hide it, and -PassThru keeps its last counters' {
        $proxyArgs = @{ Endpoint = $cluster.Endpoints[0]; Certificate = "$assets/behind-1-server.pem"; CA = $cluster.CAPath; UpstreamCertificate = $cluster.ClientCertificatePath; SingleIdentity = $true }
        $jobPort = Get-FreeTcpPort
        $job = Start-EtcdProxy -Name front -Listen "https://127.0.0.1:$jobPort" @proxyArgs
        try {
            # A running job holds the name against a detached start, before anything is written or started.
            (Get-ThrownError { Start-EtcdProxy -Detached -Name front -Listen $endpoint @proxyArgs }).FullyQualifiedErrorId | Should -BeLike 'ProxyAlreadyRunning,*'
            Test-Path (Join-Path $env:ETCDSECURE_STATE_DIR 'proxies/front.options.json') | Should -BeFalse
            Stop-EtcdProxy front

            # The stopped job stays for Receive-Job; the name is free again, and now means the detached proxy.
            $detached = Start-EtcdProxy -Detached -Name front -Listen $endpoint @proxyArgs
            $all = @(Get-EtcdProxy front)
            $all.Count | Should -Be 1
            $all[0].Detached | Should -BeTrue
            $all[0].State | Should -Be 'Running'
            # Its list shows traffic and members, not the relay's internal switches (they stay as properties).
            $list = $all[0] | Format-List | Out-String
            $list | Should -Match 'RelayedConnections'
            $list | Should -Match 'Members'
            $list | Should -Not -Match 'TlsBufferRelease|DirectRelays|EventLoops'
            $all[0].EventLoops | Should -BeGreaterThan 0
            (Get-ThrownError { Start-EtcdProxy -Name front -Listen "https://127.0.0.1:$jobPort" @proxyArgs }).FullyQualifiedErrorId | Should -BeLike 'ProxyAlreadyRunning,*'
            Get-Job -Name front | Remove-Job
            (Get-EtcdProxy front).Detached | Should -BeTrue

            $r = Invoke-Etcdctl @('--endpoints', $endpoint, '--cacert', $cluster.CAPath, '--cert', $cluster.ClientCertificatePath, '--key', $cluster.ClientKeyPath, 'put', 'via-front', 'yes')
            $r.ExitCode | Should -Be 0 -Because $r.Output
            $final = Stop-EtcdProxy front -PassThru
            $final.State | Should -Be 'Stopped'
            $final.TotalConnections | Should -BeGreaterOrEqual 1
            $final.BytesFromClients | Should -BeGreaterThan 0
            Test-ProcessRunning $detached.ProcessId | Should -BeFalse
        }
        finally {
            if (Get-EtcdProxy front -ErrorAction Ignore) { Stop-EtcdProxy front }
            Get-Job -Name front -ErrorAction Ignore | Remove-Job -Force
        }
    }

    It 'leaves no options file, record or process behind when a detached start fails, and keeps the log that says why' {
        $taken = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
        $taken.Start()
        try {
            $e = Get-ThrownError { Start-EtcdProxy -Detached -Name doomed -Listen "https://127.0.0.1:$($taken.LocalEndpoint.Port)" -Endpoint $cluster.Endpoints[0] -Certificate "$assets/behind-1-server.pem" -CA $cluster.CAPath -UpstreamCertificate $cluster.ClientCertificatePath -SingleIdentity }
        }
        finally { $taken.Stop() }
        $e.FullyQualifiedErrorId | Should -BeLike 'ProxyStartFailed,*'
        $e.Exception.Message | Should -Match 'nothing of it is left but its log'
        $e.Exception.Message | Should -Match 'in use'
        Test-Path (Join-Path $env:ETCDSECURE_STATE_DIR 'proxies/doomed.options.json') | Should -BeFalse
        Test-Path (Join-Path $env:ETCDSECURE_STATE_DIR 'proxies/doomed.json') | Should -BeFalse
        Get-EtcdProxy doomed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Test-Path (Join-Path $env:ETCDSECURE_STATE_DIR 'proxies/doomed.log') | Should -BeTrue
    }

    It 'refuses -Wait together with -Detached' {
        $e = Get-ThrownError { Start-EtcdProxy -Detached -Wait -Listen $endpoint -Endpoint $cluster.Endpoints[0] -Certificate "$assets/behind-1-server.pem" -CA $cluster.CAPath -UpstreamCertificate $cluster.ClientCertificatePath -SingleIdentity }
        $e.FullyQualifiedErrorId | Should -BeLike 'InvalidParameterCombination,*'
    }
}
