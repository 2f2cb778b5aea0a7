BeforeDiscovery {
    $version = (Import-PowerShellDataFile "$PSScriptRoot/../../EtcdSecure.psd1").ModuleVersion
    $manifest = if ($env:ETCDSECURE_MODULE) { $env:ETCDSECURE_MODULE } else { "$PSScriptRoot/../../out/EtcdSecure/$version/EtcdSecure.psd1" }
    Import-Module $manifest -Force
    $cmdlets = @(Get-Command -Module EtcdSecure -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name } })
}

BeforeAll { . "$PSScriptRoot/Common.ps1" }

Describe 'Help for <Name>' -Tag Unit -ForEach $cmdlets {
    BeforeAll {
        $help = Get-Help $Name -Full
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        $parameters = (Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $common }
    }

    It 'has a synopsis and a description from the shipped MAML file' {
        # Without MAML, PowerShell makes the synopsis from the syntax, which starts with the command name.
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -Match "^$Name"
        ($help.Description.Text -join ' ') | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter' {
        foreach ($p in $parameters) {
            $text = ($help.Parameters.Parameter | Where-Object Name -EQ $p).Description.Text -join ' '
            $text | Should -Not -BeNullOrEmpty -Because "-$p of $Name needs help"
        }
    }

    It 'shows value types as a user types them, never Nullable`1' {
        $text = Get-Help $Name -Full | Out-String -Width 400
        $text | Should -Not -Match 'Nullable'
        foreach ($p in (Get-Command $Name).Parameters.Values | Where-Object { $_.Name -in $parameters }) {
            $inner = [Nullable]::GetUnderlyingType($p.ParameterType)
            if ($inner) { ($help.Parameters.Parameter | Where-Object Name -EQ $p.Name).Type.Name | Should -Be $inner.FullName }
        }
    }

    It 'says what it takes from the pipeline' {
        $inputs = @($help.InputTypes.InputType | ForEach-Object { $_.Type.Name })
        $inputs | Should -Not -BeNullOrEmpty
        $meta = (Get-Command $Name).Parameters.Values | Where-Object { $_.Name -in $parameters }
        $byValue = $meta | Where-Object { $_.ParameterSets.Values.ValueFromPipeline -contains $true }
        $byName = $meta | Where-Object { $_.ParameterSets.Values.ValueFromPipelineByPropertyName -contains $true }
        foreach ($p in $byValue) { $inputs | Should -Contain (([Nullable]::GetUnderlyingType($p.ParameterType)) ?? $p.ParameterType).FullName }
        if ($byName) { ($help.InputTypes.InputType.Description.Text -join ' ') | Should -Match ([regex]::Escape($byName[0].Name)) }
        if (-not $byValue -and -not $byName) { $inputs | Should -Be 'None' }
    }

    It 'links to related cmdlets and to about_EtcdSecure' {
        $links = @($help.RelatedLinks.NavigationLink.LinkText)
        $links | Should -Contain 'about_EtcdSecure'
        @($links | Where-Object { $_ -like '*-Etcd*' }).Count | Should -BeGreaterThan 0
        foreach ($l in $links | Where-Object { $_ -ne 'about_EtcdSecure' }) { Get-Command $l -Module EtcdSecure | Should -Not -BeNullOrEmpty }
    }

    It 'has at least two examples, each with code and an explanation' {
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
        foreach ($e in $help.Examples.Example) {
            $e.Code | Should -Not -BeNullOrEmpty
            ($e.Remarks.Text -join ' ').Trim() | Should -Not -BeNullOrEmpty
        }
    }
}

Describe 'Start-EtcdProxy help states its defaults and what they give away' -Tag Unit {
    It 'says who gets in by default, what -AllowClientsWithoutCertificate gives away, and the pending caps' {
        $text = (Get-Help Start-EtcdProxy -Full).Description.Text -join ' '
        $text | Should -Match 'every such certificate is a client unless -AllowedClient'
        $text | Should -Match '-AllowClientsWithoutCertificate gives all of this away'
        $text | Should -Match 'Nothing is fetched from the network'
        $text | Should -Match '-MaxPendingPerAddress'
        (Get-Help Start-EtcdProxy -Parameter AllowClientsWithoutCertificate).Description.Text -join ' ' | Should -Match 'anyone who can reach the port'
    }
}

Describe 'about_EtcdSecure' -Tag Unit {
    It 'ships with the module and states the security model and what the defaults give away' {
        $about = Get-Help about_EtcdSecure | Out-String
        $about | Should -Match 'WHO TRUSTS WHAT'
        $about | Should -Match 'every certificate of the client CA is etcd''s root'
        $about | Should -Match '-AllowClientsWithoutCertificate'
        $about | Should -Match 'ROTATING A CA'
        # Every cmdlet the module exports is placed somewhere in the life of a cluster.
        foreach ($c in Get-Command -Module EtcdSecure -CommandType Cmdlet) { $about | Should -Match ([regex]::Escape($c.Name)) }
    }
}

Describe 'Get-Help -Examples' -Tag Unit {
    It 'shows the examples of New-EtcdCertificate' {
        (Get-Help New-EtcdCertificate -Examples | Out-String) | Should -Match 'Example 1'
    }
}
