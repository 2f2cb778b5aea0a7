#requires -Version 7.6
<#
.SYNOPSIS
    Rotates the client CA of a running cluster to a new CA without taking it down: trust both, reissue, drop the old.
.DESCRIPTION
    A 3-member cluster (New-EtcdCluster) with Start-EtcdProxy in front of it. Everything that verifies client or
    server certificates reads one trust file, trust.pem, which holds the old CA at first.

    1. Trust both: a new CA; trust.pem becomes the bundle old + new. The proxy reloads it within a second; etcd reads
       its trusted CA file only when it starts, so the members are restarted one at a time (Restart-EtcdMember), and
       the other two keep the quorum meanwhile.
    2. Reissue: the members' server certificates, the root client certificate and the proxy's certificate are issued
       again from the new CA (Update-EtcdCertificate -ChangeCA). etcd and the proxy read certificate files on every
       new handshake: nothing restarts.
    3. Drop the old CA: trust.pem holds only the new CA; the members restart once more, now with the new CA's CRL.
       A client certificate of the old CA is refused from then on.

    The cluster answers a health check through the proxy after every step. The peer CA rotates the same way, with
    -PeerCA and the peer certificates.
.EXAMPLE
    ./examples/rotate-ca.ps1 -Path ./rotation -Cleanup
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Path,
    [string] $ModulePath = 'EtcdSecure',
    # Stop the proxy and the members and delete -Path at the end.
    [switch] $Cleanup
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$steps = [System.Collections.Generic.List[object]]::new()
try {
    Write-Host '== A 3-member cluster, and a proxy that trusts trust.pem (the first CA, for now)'
    $cluster = New-EtcdCluster -Path $Path -Name rotate -Size 3 -Force
    $assets = Join-Path $Path 'tls/assets'
    $oldCA = Get-EtcdCertificate $cluster.CAPath
    $trust = Join-Path $assets 'trust.pem'
    Copy-Item $oldCA.Path $trust
    $root = Get-EtcdCertificate $cluster.ClientCertificatePath
    # A client of the old CA that is never reissued: it must stop working at the end.
    $legacy = $oldCA | New-EtcdCertificate -Profile Client -CommonName legacy-app
    $proxyCert = $oldCA | New-EtcdCertificate -Profile Server -CommonName etcd-proxy -Hosts localhost, 127.0.0.1
    $port = & {
        $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0); $l.Start()
        try { $l.LocalEndpoint.Port } finally { $l.Stop() }
    }
    $proxy = Start-EtcdProxy -Name rotate-proxy -Listen "https://127.0.0.1:$port" -Endpoint $cluster.Endpoints `
        -Certificate $proxyCert -ClientCA $trust -UpstreamCertificate $root -SingleIdentity -UpstreamCA $trust

    function Get-ServedIssuer([string] $Endpoint) {
        # Who issued the certificate a server presents; this client trusts anything, it only looks.
        $u = [uri] $Endpoint
        $tcp = [Net.Sockets.TcpClient]::new($u.Host, $u.Port)
        try {
            $script:seenIssuer = $null
            $ssl = [Net.Security.SslStream]::new($tcp.GetStream(), $false, { param($s, $c) $script:seenIssuer = $c.Issuer; $true })
            # The server may then refuse this client for want of a certificate; its own is seen by then.
            try { $ssl.AuthenticateAsClient($u.Host) } catch { Write-Verbose "$Endpoint refused the look: $_" }
            $script:seenIssuer
        }
        finally { $tcp.Dispose() }
    }

    function Add-Step([string] $Name) {
        $health = @(Test-EtcdClusterHealth -Endpoint $proxy.Endpoint -CA $trust -Certificate $root)
        $healthy = $health.Count -gt 0 -and -not ($health.Healthy -contains $false)
        $steps.Add([pscustomobject]@{ Step = $Name; HealthyThroughProxy = $healthy })
        Write-Host ("   {0}: {1}" -f $Name, $(if ($healthy) { 'healthy through the proxy' } else { 'NOT healthy' }))
        if (-not $healthy) {
            $reload = (Get-EtcdProxy rotate-proxy).ReloadError
            throw "The cluster was not healthy through the proxy after: $Name. $(($health | Where-Object { -not $_.Healthy } | ForEach-Object { "$($_.Endpoint) $($_.Name): $($_.Error)" }) -join '; ')$(if ($reload) { " Proxy reload: $reload" })"
        }
    }
    Add-Step 'before'

    Write-Host '== 1. Trust both CAs'
    $newCA = New-EtcdCA -Path $assets -Name ca-2 -CommonName rotate-ca-2
    $null = $newCA | Update-EtcdCrl
    # Written beside and renamed over: the proxy may read trust.pem at any moment and must never see half of it.
    Get-Content $oldCA.Path, $newCA.Path | Set-Content "$trust.new"
    Move-Item "$trust.new" $trust -Force
    foreach ($m in $cluster.Members) {
        $null = Restart-EtcdMember $m.Name -CA $trust
        Add-Step "restarted $($m.Name) trusting both CAs"
    }

    Write-Host '== 2. Reissue from the new CA, in place'
    $servers = $cluster.Members | ForEach-Object { Join-Path $assets "$($_.Name)-server.pem" }
    $null = Update-EtcdCertificate ($servers + $root.Path + $proxyCert.Path) -CA $newCA -ChangeCA
    # The old CA may go only once every server presents a certificate of the new one: etcd does from its next
    # handshake on, the proxy from its next reload (it looks once a second).
    foreach ($endpoint in @($cluster.Endpoints) + $proxy.Endpoint) {
        $deadline = [DateTime]::UtcNow.AddSeconds(15)
        while ((Get-ServedIssuer $endpoint) -ne $newCA.Subject) {
            if ([DateTime]::UtcNow -gt $deadline) { throw "$endpoint still presents a certificate of the old CA." }
            Start-Sleep -Milliseconds 200
        }
    }
    Add-Step 'reissued server, client and proxy certificates'

    Write-Host '== 3. Drop the old CA'
    Copy-Item $newCA.Path "$trust.new"
    Move-Item "$trust.new" $trust -Force
    foreach ($m in $cluster.Members) {
        $null = Restart-EtcdMember $m.Name -CA $trust -CrlPath (Join-Path $assets 'ca-2-crl.pem')
        Add-Step "restarted $($m.Name) trusting the new CA only"
    }

    [pscustomobject]@{
        Cluster = $cluster; Proxy = $proxy; Trust = $trust; OldCA = $oldCA; NewCA = $newCA
        Root = Get-EtcdCertificate $root.Path; Legacy = $legacy; Steps = $steps.ToArray()
    }
}
finally {
    if ($Cleanup) {
        Get-EtcdProxy rotate-proxy -ErrorAction Ignore | Stop-EtcdProxy
        Remove-EtcdCluster rotate -Confirm:$false -ErrorAction Ignore
    }
}
