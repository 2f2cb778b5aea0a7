BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $examples = Join-Path $PSScriptRoot '../../examples'
}

AfterAll { Stop-TestCluster }

Describe 'The README quick tour' -Tag Integration, Example {
    It 'runs as written, line by line, in a fresh non-interactive pwsh in an empty folder' {
        $readme = Get-Content (Join-Path $PSScriptRoot '../../README.md') -Raw
        $tour = [regex]::Match($readme, '(?s)## Quick tour.*?```powershell\r?\n(.*?)```').Groups[1].Value
        $tour | Should -Match 'Start-EtcdProxy'
        # The one change: the module a test runs is the staged build, not one installed from the gallery.
        $tour = $tour -replace '(?m)^Import-Module EtcdSecure\b', "Import-Module '$script:ModuleManifest'"
        $dir = New-Item -ItemType Directory (Join-Path $TestDrive 'tour')
        $r = Invoke-CleanPwsh "Set-Location '$dir'; `$ErrorActionPreference = 'Stop'; $tour`n'tour: done'; 'members: ' + @(Get-EtcdMember | Where-Object State -EQ Running).Count"
        $r.ExitCode | Should -Be 0 -Because ($r.Output -join "`n")
        $r.Output | Should -Contain 'tour: done' -Because ($r.Output -join "`n")
        $r.Output | Should -Contain 'members: 0'
        # What the tour says each line gives.
        ($r.Output -join "`n") | Should -Match 'etcd --name n1'
        Join-Path $dir 'units/etcd-n1.service' | Should -Exist
        Join-Path $dir 'wfb' | Should -Not -Exist
    }
}

# The examples use the fixed ports of the reference workflows, as a user running them would.
Describe 'examples/secure-cluster-behind-proxy.ps1 (workflow A)' -Tag Integration, Example {
    It 'builds the PKI, three members and the proxy, and the cluster answers etcdctl through the proxy' {
        $path = Join-Path $TestDrive 'wfa'
        $r = & "$examples/secure-cluster-behind-proxy.ps1" -Path $path -ModulePath $script:ModuleManifest 6>$null | Select-Object -Last 1
        $r.Members.Name | Should -Be @('node1', 'node2', 'node3')
        $r.Proxy.Endpoint | Should -Be 'https://localhost:2379'
        $r.Health.Count | Should -Be 3
        $r.Health.Via | Sort-Object -Unique | Should -Be 'https://localhost:2379'
        (Get-EtcdCertificate (Join-Path $path 'pki/etcd-node.pem')).KeyAlgorithm | Should -Be 'RSA'
        $viaProxy = @('--endpoints', 'https://localhost:2379', '--cacert', $r.CA.Path, '--cert', $r.ProxyCertificate.Path, '--key', $r.ProxyCertificate.KeyPath)
        (Invoke-Etcdctl ($viaProxy + @('put', 'workflow', 'A'))).ExitCode | Should -Be 0
        (Invoke-Etcdctl ($viaProxy + @('get', 'workflow', '--print-value-only'))).Output | Should -Be 'A'
        $list = Invoke-Etcdctl ($viaProxy + @('member', 'list'))
        @($list.Output -split "`n" | Where-Object { $_ -match 'started' }).Count | Should -Be 3

        # Daemons, as in the reference workflow: a later session finds the proxy and the members, and stops them.
        $later = Invoke-CleanPwsh "Import-Module '$script:ModuleManifest'; `$p = Get-EtcdProxy workflow-a; 'detached=' + `$p.Detached + ' state=' + `$p.State; Stop-EtcdProxy workflow-a; Stop-EtcdMember node1, node2, node3; 'members=' + @(Get-EtcdMember).Count"
        $later.ExitCode | Should -Be 0 -Because ($later.Output -join "`n")
        $later.Output | Should -Contain 'detached=True state=Running'
        $later.Output | Should -Contain 'members=0'
        (Invoke-Etcdctl ($viaProxy + @('--dial-timeout', '2s', 'get', 'workflow'))).ExitCode | Should -Not -Be 0
    }
}

Describe 'examples/tls-cluster.ps1 (workflow B)' -Tag Integration, Example {
    It 'starts three members on 12379/22379/32379 that etcdctl lists through the ETCDCTL_* lines' {
        $path = Join-Path $TestDrive 'wfb'
        $saved = @{}; foreach ($k in 'ETCDCTL_API', 'ETCDCTL_ENDPOINTS', 'ETCDCTL_CACERT', 'ETCDCTL_CERT', 'ETCDCTL_KEY') { $saved[$k] = [Environment]::GetEnvironmentVariable($k) }
        try {
            $cluster = & "$examples/tls-cluster.ps1" -Path $path -ModulePath $script:ModuleManifest 6>$null | Select-Object -Last 1
        }
        finally { foreach ($k in $saved.Keys) { Set-TestEnvironment $k $saved[$k] } }
        $cluster.Endpoints | Should -Be @('https://127.0.0.1:12379', 'https://127.0.0.1:22379', 'https://127.0.0.1:32379')
        Get-ChildItem (Join-Path $path 'tls/assets') -Filter *.csr | Should -BeNullOrEmpty
        Join-Path $path 'logs/etcd-1.log' | Should -Exist
        $list = & sh -c (($cluster.EnvironmentLines + 'etcdctl member list') -join "`n") 2>&1
        $LASTEXITCODE | Should -Be 0
        @($list | Where-Object { $_ -match 'started' }).Count | Should -Be 3
    }
}

Describe 'examples/rotate-ca.ps1' -Tag Integration, Example {
    It 'rotates the client CA of a running cluster behind the proxy, healthy after every step, and the old CA is refused at the end' {
        $path = Join-Path $TestDrive 'rotation'
        $r = & "$examples/rotate-ca.ps1" -Path $path -ModulePath $script:ModuleManifest 6>$null | Select-Object -Last 1
        $r.Steps.Count | Should -Be 8
        $r.Steps.HealthyThroughProxy | Should -Not -Contain $false

        $member = $r.Cluster.Endpoints[0]
        (Get-ServedCertificate ([uri] $member).Port).Issuer | Should -Be 'CN=rotate-ca-2'
        (Get-ServedCertificate ([uri] $r.Proxy.Endpoint).Port).Issuer | Should -Be 'CN=rotate-ca-2'
        $r.Root.Issuer | Should -Be 'CN=rotate-ca-2'
        (Get-Content $r.Trust -Raw) | Should -Be (Get-Content $r.NewCA.Path -Raw)
        (Get-EtcdMember rotate-1).CommandLine | Should -Match 'ca-2-crl.pem'

        $as = { param($Cert, $Endpoint) Invoke-Etcdctl @('--endpoints', $Endpoint, '--cacert', $r.Trust, '--cert', $Cert.Path, '--key', $Cert.KeyPath, '--dial-timeout', '3s', '--command-timeout', '5s', 'put', 'rotated', 'yes') }
        (& $as $r.Root $member).ExitCode | Should -Be 0
        (& $as $r.Root $r.Proxy.Endpoint).ExitCode | Should -Be 0
        (& $as $r.Legacy $member).ExitCode | Should -Not -Be 0
        (& $as $r.Legacy $r.Proxy.Endpoint).ExitCode | Should -Not -Be 0

        # The cluster's record follows: its clients now verify the members with the new trust file.
        (Get-EtcdCluster rotate).CAPath | Should -Be $r.Trust
        (Get-EtcdCluster rotate | Test-EtcdClusterHealth).Healthy | Should -Be @($true, $true, $true)
        (Get-EtcdIssuedCertificate $r.OldCA.Path | Where-Object Status -EQ Renewed).Count | Should -Be 5
        (Get-EtcdIssuedCertificate $r.NewCA.Path).Count | Should -Be 5
    }
}
