#requires -Version 7.4
<#
.SYNOPSIS
    Reference workflow A: a secure 3-member etcd cluster behind a TLS proxy, built with EtcdSecure.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Path,
    [string] $ModulePath = 'EtcdSecure',
    [switch] $Cleanup
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Get-EtcdBinary
