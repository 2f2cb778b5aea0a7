BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    $repo = New-Item -ItemType Directory (Join-Path $TestDrive 'repo')
    # The same .nupkg `build.ps1 package` makes, from the staged module under test.
    Compress-PSResource -Path (Split-Path $script:ModuleManifest) -DestinationPath $repo
    $version = (Import-PowerShellDataFile $script:ModuleManifest).ModuleVersion

    function Invoke-InCleanHome([string] $Name, [string] $Script) {
        $home_ = New-Item -ItemType Directory (Join-Path $TestDrive "home-$Name")
        # A new HOME is a new CurrentUser scope: nothing installed before can satisfy the import.
        Invoke-WithEnvironment @{ HOME = $home_.FullName; XDG_DATA_HOME = $null; XDG_CONFIG_HOME = $null; PSModulePath = $null } {
            Invoke-CleanPwsh "`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'; $Script"
        }
    }
}

Describe 'The package' -Tag Integration, Package {
    It 'is one .nupkg named for the manifest version' {
        (Get-ChildItem $repo -Filter *.nupkg).Name | Should -Be "EtcdSecure.$version.nupkg"
    }

    It 'installs with Install-PSResource from a local repository into a clean HOME, imports and runs' {
        $r = Invoke-InCleanHome psresource @"
Register-PSResourceRepository -Name local -Uri '$repo' -Trusted
Install-PSResource EtcdSecure -Repository local -Scope CurrentUser -TrustRepository
`$m = Import-Module EtcdSecure -PassThru
"module=`$(`$m.Version) at `$(`$m.ModuleBase)"
`$ca = New-EtcdCA -Path (Join-Path `$HOME 'pki')
"ca=`$(`$ca.CommonName)"
"@
        $r.ExitCode | Should -Be 0 -Because ($r.Output -join "`n")
        $r.Output | Should -Contain "ca=etcd-ca"
        ($r.Output -join "`n") | Should -Match "module=$([regex]::Escape($version)) at .*home-psresource"
    }

    It 'installs with Install-Module (PowerShellGet) from a local repository into a clean HOME, imports and runs' {
        $r = Invoke-InCleanHome powershellget @"
Register-PSRepository -Name local -SourceLocation '$repo' -InstallationPolicy Trusted
Install-Module EtcdSecure -Repository local -Scope CurrentUser
`$m = Import-Module EtcdSecure -PassThru
"module=`$(`$m.Version) at `$(`$m.ModuleBase)"
"binary=`$((Get-EtcdBinary | Where-Object Name -EQ etcd).Name)"
"@
        $r.ExitCode | Should -Be 0 -Because ($r.Output -join "`n")
        ($r.Output -join "`n") | Should -Match "module=$([regex]::Escape($version)) at .*home-powershellget"
        $r.Output | Should -Contain 'binary=etcd'
    }
}
