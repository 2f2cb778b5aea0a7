#requires -Version 7.6
<#
.SYNOPSIS
    Reference workflow A with EtcdSecure: RSA 2048 PKI from a cfssl ca-config.json, three TLS members on
    1179/1279/1379 (peers 1180/1280/1380), a TLS proxy on 2379 that finds them from their peer URLs, and a
    health check that knows only the proxy.
.DESCRIPTION
    As in the reference workflow, the members and the proxy are daemons: they keep running when this script (and
    the session) ends, until Stop-EtcdProxy workflow-a and Stop-EtcdMember node1, node2, node3 stop them, from this
    or any later session of the same user. -Cleanup stops everything at the end instead.
    Prints a short summary of what runs and how to reach it; returns the members, the proxy and the health rows, so
    a caller (or a test) can check the result.
.EXAMPLE
    ./examples/secure-cluster-behind-proxy.ps1 -Path ./wfa
.EXAMPLE
    ./examples/secure-cluster-behind-proxy.ps1 -Path ./wfa -Cleanup
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Path,
    [string] $ModulePath = 'EtcdSecure',
    # Stop the proxy and the members and delete -Path at the end, rather than leave them running.
    [switch] $Cleanup
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$pki = Join-Path $Path 'pki'
New-Item -ItemType Directory -Path $pki -Force | Out-Null
Set-Content (Join-Path $pki 'ca-config.json') @'
{
  "signing": {
    "default": { "expiry": "8760h" },
    "profiles": {
      "etcd-node":  { "usages": ["signing", "key encipherment", "server auth", "client auth"], "expiry": "8760h" },
      "etcd-proxy": { "usages": ["signing", "key encipherment", "server auth", "client auth"], "expiry": "8760h" }
    }
  }
}
'@
$config = Join-Path $pki 'ca-config.json'
$hosts = 'localhost', '0.0.0.0', '127.0.0.1'

Write-Host '== PKI (cfssl gencert -initca; gencert -profile etcd-node / etcd-proxy)'
$ca = New-EtcdCA -Path $pki -CommonName Etcd -Country US -Locality 'San Francisco' -Organization Infra -OrganizationalUnit CA -State California -KeyAlgorithm RSA -KeySize 2048 -Validity 8760h -Force
$node = $ca | New-EtcdCertificate -Profile etcd-node -Config $config -CommonName etcd-node -OrganizationalUnit Cluster -Hosts $hosts -KeyAlgorithm RSA -KeySize 2048 -Force
$proxy = $ca | New-EtcdCertificate -Profile etcd-proxy -Config $config -CommonName etcd-proxy -Hosts $hosts -KeyAlgorithm RSA -KeySize 2048 -Force
$ca, $node, $proxy | Format-Table | Out-Host

$members = [ordered]@{ node1 = 1179; node2 = 1279; node3 = 1379 }
$cluster = @{}
foreach ($n in $members.Keys) { $cluster[$n] = "https://localhost:$($members[$n] + 1)" }

try {
    Write-Host '== Three members with client and peer certificate authentication'
    $started = foreach ($n in $members.Keys) {
        Start-EtcdMember $n -ClientUrl "https://localhost:$($members[$n])" -PeerUrl $cluster[$n] -InitialCluster $cluster `
            -ClusterToken etcd-cluster -Certificate $node -CA $ca -DataDir (Join-Path $Path "nodes/$n")
    }
    $started | Format-Table | Out-Host

    Write-Host '== Health of every member, with the node certificate'
    $endpoints = $members.Values | ForEach-Object { "https://localhost:$_" }
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while (-not (Test-EtcdClusterHealth $endpoints -CA $ca -Certificate $node -Quiet)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw 'The cluster did not become healthy within 30 s.' }
        Start-Sleep -Milliseconds 250
    }
    Test-EtcdClusterHealth $endpoints -CA $ca -Certificate $node | Format-Table | Out-Host

    Write-Host '== The proxy on https://localhost:2379, in a process of its own: proxy certificate to clients, node certificate to the members'
    $proxyJob = Start-EtcdProxy -Detached -Name workflow-a -Listen https://localhost:2379 -InitialCluster $cluster -Certificate $proxy -UpstreamCertificate $node -SingleIdentity -CA $ca
    $proxyJob.Members | Format-Table | Out-Host

    Write-Host '== Health through the proxy only, with the proxy-side credentials: every member is listed'
    $health = Test-EtcdClusterHealth https://localhost:2379 -CA $ca -Certificate $proxy -Cluster
    $health | Format-Table | Out-Host
    if (@($health | Where-Object Healthy).Count -ne $members.Count) { throw 'Not every member is healthy through the proxy.' }

    $q = { param($p) "'" + ($p -replace "'", "'\''") + "'" }
    Write-Host @"
== Running now$(if ($Cleanup) { ' (stopped again below: -Cleanup)' } else { ', after this script has ended too' })
   members  $(($started | ForEach-Object { "$($_.Name) (pid $($_.ProcessId))" }) -join ', ') on $($endpoints -join ', ')
   proxy    https://localhost:2379 (pid $($proxyJob.ProcessId), log $($proxyJob.LogPath))
   etcdctl through the proxy:
     etcdctl --endpoints https://localhost:2379 --cacert $(& $q $ca.Path) --cert $(& $q $proxy.Path) --key $(& $q $proxy.KeyPath) member list
   see them from any session:  Get-EtcdProxy; Get-EtcdMember
   stop them from any session: Stop-EtcdProxy workflow-a; Stop-EtcdMember node1, node2, node3
"@

    [pscustomobject]@{ Members = $started; Proxy = $proxyJob; Health = $health; CA = $ca; Node = $node; ProxyCertificate = $proxy }
}
finally {
    if ($Cleanup) {
        Get-EtcdProxy workflow-a -ErrorAction Ignore | Stop-EtcdProxy
        Get-EtcdMember node1, node2, node3 -ErrorAction Ignore | Stop-EtcdMember
        Remove-Item $Path -Recurse -Force -ErrorAction Ignore
        Write-Host '== Stopped the proxy and the members, and removed' $Path
    }
}
