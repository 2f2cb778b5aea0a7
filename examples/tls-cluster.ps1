#requires -Version 7.6
<#
.SYNOPSIS
    Reference workflow B with EtcdSecure: an ECDSA PKI with a client certificate (CN root), a server and a peer
    certificate per member, three members on 12379/22379/32379 (peers 12380/22380/32380) with logs in logs/,
    and etcdctl configured through ETCDCTL_* listing the members.
.EXAMPLE
    ./examples/tls-cluster.ps1 -Path ./wfb -Cleanup
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Path,
    [string] $ModulePath = 'EtcdSecure',
    # Stop the members and delete -Path at the end.
    [switch] $Cleanup
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

try {
    Write-Host '== PKI in tls/assets, three members, a leader'
    $cluster = New-EtcdCluster -Path $Path -Name etcd -Size 3 -ClientPort 12379, 22379, 32379 -PeerPort 12380, 22380, 32380 -Force
    $cluster.Members | Format-Table Name, ProcessId, ClientUrls, LogPath
    Get-ChildItem (Join-Path $Path 'tls/assets') | Format-Table Name, UnixMode, Length

    Write-Host '== Paste these to point etcdctl at the cluster'
    $cluster.EnvironmentLines

    Write-Host '== etcdctl member list, configured only by ETCDCTL_*'
    $env:ETCDCTL_API = '3'
    $env:ETCDCTL_ENDPOINTS = $cluster.Endpoints -join ','
    $env:ETCDCTL_CACERT = $cluster.CAPath
    $env:ETCDCTL_CERT = $cluster.ClientCertificatePath
    $env:ETCDCTL_KEY = $cluster.ClientKeyPath
    & etcdctl member list -w table
    if ($LASTEXITCODE -ne 0) { throw "etcdctl member list failed with exit code $LASTEXITCODE." }

    $cluster
}
finally {
    if ($Cleanup) {
        Remove-EtcdCluster etcd -Confirm:$false -ErrorAction Ignore
        Remove-Item $Path -Recurse -Force -ErrorAction Ignore
    }
}
