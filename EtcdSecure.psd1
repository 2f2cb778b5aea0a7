@{
    RootModule             = 'EtcdSecure.PowerShell.dll'
    ModuleVersion          = '0.1.0'
    CompatiblePSEditions   = @('Core')
    GUID                   = '6f4f2b9e-5d0c-4b8e-9a57-3c2d1e0b7a41'
    Author                 = 'EtcdSecure contributors'
    CompanyName            = 'EtcdSecure'
    Copyright              = '(c) EtcdSecure contributors. Apache License 2.0.'
    Description            = 'Run a secure etcd cluster behind a TLS proxy from PowerShell: a cfssl-compatible PKI, etcd members started with the full set of TLS flags, a mutual-TLS relay in front of the cluster and health checks, all as pipeline objects.'
    PowerShellVersion      = '7.6'
    FormatsToProcess       = @('EtcdSecure.Format.ps1xml')
    CmdletsToExport        = @(
        'Enable-EtcdAuth'
        'Export-EtcdServiceUnit'
        'Get-EtcdBinary'
        'Get-EtcdCertificate'
        'Get-EtcdCluster'
        'Get-EtcdClusterMember'
        'Get-EtcdIssuedCertificate'
        'Get-EtcdMember'
        'Get-EtcdProxy'
        'New-EtcdCA'
        'New-EtcdCertificate'
        'New-EtcdCluster'
        'New-EtcdMemberConfig'
        'New-EtcdProxyIdentity'
        'Remove-EtcdCluster'
        'Remove-EtcdProxyIdentity'
        'Restart-EtcdMember'
        'Revoke-EtcdCertificate'
        'Start-EtcdMember'
        'Start-EtcdProxy'
        'Stop-EtcdCluster'
        'Stop-EtcdMember'
        'Stop-EtcdProxy'
        'Test-EtcdCertificate'
        'Test-EtcdClusterHealth'
        'Test-EtcdSecurity'
        'Update-EtcdCertificate'
        'Update-EtcdCrl'
    )
    FunctionsToExport      = @()
    VariablesToExport      = @()
    AliasesToExport        = @()
    PrivateData            = @{
        PSData = @{
            Tags         = @('etcd', 'TLS', 'PKI', 'cfssl', 'mTLS', 'proxy', 'certificates', 'Linux', 'PSEdition_Core')
            ProjectUri   = 'https://github.com/etcdsecure/EtcdSecure'
            LicenseUri   = 'https://github.com/etcdsecure/EtcdSecure/blob/main/LICENSE'
            ReleaseNotes = 'See CHANGELOG.md. 0.1.0: module foundation (isolated dependency load context, build, test and bench tasks).'
        }
    }
}
