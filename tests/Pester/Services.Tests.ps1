# What was tried in a shell runs as a systemd service unchanged: the units Export-EtcdServiceUnit writes pass
# systemd-analyze verify (where systemd is installed), and their ExecStart lines, run as written, serve.
BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $cluster = New-EtcdCluster -Path (Join-Path $TestDrive 'svc') -Name svc -Size 1
    $units = Join-Path $TestDrive 'units'
    $hasSystemd = [bool](Get-Command systemd-analyze -CommandType Application -ErrorAction Ignore)

    function Start-ExecStart([string] $Unit) {
        # ExecStart as systemd would run it; the module quotes words the way sh reads double quotes too, and writes no $ or %.
        $line = (Get-Content $Unit | Where-Object { $_ -like 'ExecStart=*' }) -replace '^ExecStart=', ''
        $line | Should -Not -Match '[$%`]'
        # ProcessStartInfo.ArgumentList, not Start-Process: that joins its arguments with spaces, unquoted.
        $psi = [Diagnostics.ProcessStartInfo]::new('sh')
        $psi.ArgumentList.Add('-c'); $psi.ArgumentList.Add("exec $line")
        $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
        # And its Environment= lines, as systemd sets them.
        foreach ($e in (Get-Content $Unit | Where-Object { $_ -like 'Environment=*' })) {
            $k, $v = ($e -replace '^Environment=', '').Trim('"') -split '=', 2
            $psi.Environment[$k] = $v
        }
        $p = [Diagnostics.Process]::Start($psi)
        # Drained, so a chatty service never blocks on a full pipe.
        $null = $p.StandardOutput.ReadToEndAsync(); $null = $p.StandardError.ReadToEndAsync()
        $p
    }
    function Invoke-Verify([string] $Unit) {
        $out = & systemd-analyze verify $Unit 2>&1
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($out | ForEach-Object { "$_" }) -join "`n" }
    }
}

AfterAll { Stop-TestCluster }

# The proxy first: the member's test stops the cluster's member to run its unit in its place.
Describe 'Export-EtcdServiceUnit for a proxy' -Tag Integration {
    It 'writes a unit running Start-EtcdProxy -Wait with the same options; run, it relays, and SIGTERM stops it cleanly' {
        $port = Get-FreeTcpPort
        $assets = Join-Path $cluster.Path 'tls/assets'
        $proxy = Start-EtcdProxy -Name svc-proxy -Listen "https://127.0.0.1:$port" -Endpoint $cluster.Endpoints -Certificate "$assets/svc-1-server.pem" -CA $cluster.CAPath -UpstreamCertificate $cluster.ClientCertificatePath -SingleIdentity -AllowedClient root
        $files = $proxy | Export-EtcdServiceUnit -Path $units
        $files.Name | Sort-Object | Should -Be @('etcd-proxy-svc-proxy.json', 'etcd-proxy-svc-proxy.service')
        # As Get-Item returns them: mode, owner and size are there for the file table.
        foreach ($f in $files) { $f.UnixMode | Should -Not -BeNullOrEmpty; $f.Length | Should -BeGreaterThan 0; $f.User | Should -Not -BeNullOrEmpty }
        $unit = ($files | Where-Object Extension -EQ '.service').FullName
        (Get-Content $unit -Raw) | Should -Match 'Start-EtcdProxy -Wait -OptionsFile'
        # Fully optimized code from the first request on (docs/benchmarks.md, a cold proxy under load).
        (Get-Content $unit) | Should -Contain 'Environment=DOTNET_TieredCompilation=0'
        (Get-Content $unit) | Should -Contain 'Environment=DOTNET_ReadyToRun=0'
        (Get-Content ($files | Where-Object Extension -EQ '.json').FullName -Raw | ConvertFrom-Json).AllowedClients | Should -Be 'root'
        if ($hasSystemd) {
            $v = Invoke-Verify $unit
            $v.ExitCode | Should -Be 0 -Because $v.Output
        }

        Stop-EtcdProxy svc-proxy
        $service = Start-ExecStart $unit
        try {
            $via = @('--endpoints', "https://127.0.0.1:$port", '--cacert', $cluster.CAPath, '--cert', $cluster.ClientCertificatePath, '--key', $cluster.ClientKeyPath, '--dial-timeout', '2s')
            Wait-Until -Timeout '00:00:40' -Because 'the proxy run from ExecStart to relay' { (Invoke-Etcdctl ($via + @('put', 'from-unit', 'yes'))).ExitCode -eq 0 }
            kill -TERM $service.Id
            $service.WaitForExit(15000) | Should -BeTrue
            $service.ExitCode | Should -Be 0
        }
        finally { Stop-TestProcess $service }
    }
}

Describe 'Export-EtcdServiceUnit for a member' -Tag Integration {
    It 'refuses to overwrite a unit without -Force, and writes nothing with -WhatIf' {
        $once = Join-Path $TestDrive 'once'
        $null = Export-EtcdServiceUnit -Member svc-1 -Path $once
        $e = Get-ThrownError { Export-EtcdServiceUnit -Member svc-1 -Path $once }
        $e.FullyQualifiedErrorId | Should -BeLike 'FileExists,*'
        $other = Join-Path $TestDrive 'whatif-units'
        Export-EtcdServiceUnit -Member svc-1 -Path $other -WhatIf | Should -BeNullOrEmpty
        $other | Should -Not -Exist
    }

    It 'writes a unit whose ExecStart is the member''s own etcd command line, and which serves when run' {
        $file = Get-EtcdMember svc-1 | Export-EtcdServiceUnit -Path $units -User etcd
        $file.Name | Should -Be 'etcd-svc-1.service'
        $text = Get-Content $file.FullName -Raw
        $text | Should -Match '(?m)^Type=notify$'
        $text | Should -Match '(?m)^User=etcd$'
        $text | Should -Match '(?m)^Restart=on-failure$'
        $member = Get-EtcdMember svc-1
        $text | Should -Match ([regex]::Escape("ExecStart=$($member.CommandLine -replace "'", '')"))
        if ($hasSystemd) {
            $v = Invoke-Verify $file.FullName
            $v.ExitCode | Should -Be 0 -Because $v.Output
        }

        # The shell's member makes way, and the unit's command line brings the same member back.
        Stop-EtcdMember svc-1
        $etcd = Start-ExecStart $file.FullName
        try {
            Wait-Until -Because 'the member run from ExecStart to serve' {
                Test-EtcdClusterHealth $cluster.Endpoints -CA $cluster.CAPath -Certificate $cluster.ClientCertificatePath -Quiet -Timeout '00:00:02'
            }
        }
        finally { Stop-TestProcess $etcd }
    }

}
