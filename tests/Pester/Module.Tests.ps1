BeforeAll { . "$PSScriptRoot/Common.ps1" }

Describe 'The module manifest' -Tag Unit {
    BeforeAll { $manifest = Test-ModuleManifest $ModuleManifest -ErrorAction Stop }

    It 'targets PowerShell 7.6+ Core only (the LTS that CI runs)' {
        $manifest.PowerShellVersion | Should -Be ([version] '7.6')
        $manifest.CompatiblePSEditions | Should -Be @('Core')
    }

    It 'has gallery metadata filled in' {
        $manifest.Tags | Should -Contain 'etcd'
        $manifest.ProjectUri | Should -Not -BeNullOrEmpty
        $manifest.LicenseUri | Should -Not -BeNullOrEmpty
        $manifest.ReleaseNotes | Should -Not -BeNullOrEmpty
    }

    It 'exports exactly the cmdlets the assembly defines' {
        $assembly = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'EtcdSecure.PowerShell' } | Select-Object -First 1
        $defined = $assembly.GetTypes() | ForEach-Object {
            $attr = $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)
            if ($attr) { '{0}-{1}' -f $attr[0].VerbName, $attr[0].NounName }
        }
        $exported = (Import-PowerShellDataFile $ModuleManifest).CmdletsToExport
        @($exported | Sort-Object) | Should -Be @($defined | Sort-Object)
    }

    It 'uses approved verbs only' {
        $approved = (Get-Verb).Verb
        (Get-Command -Module EtcdSecure).Verb | Where-Object { $_ -notin $approved } | Should -BeNullOrEmpty
    }

    It 'gives every exported type a table view' {
        $formats = [xml](Get-Content (Join-Path (Split-Path $ModuleManifest) 'EtcdSecure.Format.ps1xml') -Raw)
        $viewed = $formats.Configuration.ViewDefinitions.View.ViewSelectedBy.TypeName
        $outputs = Get-Command -Module EtcdSecure | ForEach-Object { $_.OutputType | ForEach-Object Name } | Where-Object { $_ -like 'EtcdSecure.*' } | Sort-Object -Unique
        $outputs | Should -Not -BeNullOrEmpty
        $outputs | Where-Object { $_ -notin $viewed } | Should -BeNullOrEmpty
    }

    It 'labels every table column with a property of its type, so Format-Table with those names shows the same' {
        $formats = [xml](Get-Content (Join-Path (Split-Path $ModuleManifest) 'EtcdSecure.Format.ps1xml') -Raw)
        $assembly = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'EtcdSecure.PowerShell' } | Select-Object -First 1
        $missing = foreach ($view in $formats.Configuration.ViewDefinitions.View | Where-Object { $_.SelectSingleNode("TableControl") }) {
            $type = $assembly.GetType($view.ViewSelectedBy.TypeName)
            $properties = $type.GetProperties().Name
            foreach ($label in $view.TableControl.TableHeaders.TableColumnHeader.Label) {
                if ($label -notin $properties) { "$($type.Name).$label" }
            }
        }
        $missing | Should -BeNullOrEmpty
    }
}

Describe 'Importing the module' -Tag Unit {
    It 'imports into a clean session without warnings or errors' {
        $r = Invoke-CleanPwsh "Import-Module '$ModuleManifest' -ErrorAction Stop -WarningVariable w 3>&1; if (`$w) { 'WARNING: ' + (`$w -join ';') }; 'imported'"
        $r.ExitCode | Should -Be 0
        $r.Output | Should -Be @('imported')
    }

    It 'loads the engine and its packages into the EtcdSecure load context, not the default one' {
        $script = @"
Import-Module '$ModuleManifest' -ErrorAction Stop
`$null = Get-EtcdBinary -Name etcd -ErrorAction Ignore
`$dir = Join-Path ([IO.Path]::GetTempPath()) "alc-`$PID"
`$null = New-EtcdCA -Path `$dir -Force
Remove-Item `$dir -Recurse -Force
[AppDomain]::CurrentDomain.GetAssemblies() |
    Where-Object { `$_.Location -like '*Dependencies*' -or `$_.GetName().Name -eq 'EtcdSecure.Engine' } |
    ForEach-Object { '{0}={1}' -f `$_.GetName().Name, [Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$_).Name }
"@
        $r = Invoke-CleanPwsh $script
        $r.ExitCode | Should -Be 0
        $r.Output | Should -Contain 'EtcdSecure.Engine=EtcdSecure'
        $r.Output | Should -Contain 'BouncyCastle.Cryptography=EtcdSecure'
        # Nothing shipped in Dependencies/ may end up in the default context.
        $r.Output | Where-Object { $_ -notlike '*=EtcdSecure' } | Should -BeNullOrEmpty
    }

    It 'ships every assembly with ReadyToRun code beside its IL, so a fresh session JITs less' {
        $dlls = @(Get-ChildItem (Split-Path $ModuleManifest) -Filter *.dll -Recurse)
        $dlls.Count | Should -BeGreaterThan 5
        $ilOnly = foreach ($dll in $dlls) {
            $stream = [IO.File]::OpenRead($dll.FullName)
            try {
                $pe = [Reflection.PortableExecutable.PEReader]::new($stream)
                if ($pe.PEHeaders.CorHeader.ManagedNativeHeaderDirectory.Size -eq 0) { $dll.Name }
                $pe.Dispose()
            }
            finally { $stream.Dispose() }
        }
        $ilOnly | Should -BeNullOrEmpty
    }

    It 'reports a missing engine as a load error instead of crashing the session' {
        $copy = Join-Path $TestDrive 'broken/EtcdSecure'
        Copy-Item (Split-Path $ModuleManifest) $copy -Recurse
        Remove-Item (Join-Path $copy 'Dependencies/EtcdSecure.Engine.dll')
        $script = @"
Import-Module '$(Join-Path $copy 'EtcdSecure.psd1')' -ErrorAction Stop
try { `$null = New-EtcdCA -Path '$(Join-Path $TestDrive 'broken-ca')' } catch { 'error: ' + `$_.Exception.Message }
'session alive'
"@
        $r = Invoke-CleanPwsh $script
        $r.ExitCode | Should -Be 0
        $r.Output | Should -Contain 'session alive'
        ($r.Output -join "`n") | Should -Match "error: .*EtcdSecure\.Engine"
    }
}

Describe 'Get-EtcdBinary' -Tag Integration {
    It 'finds etcd and etcdctl on PATH and reads their versions' {
        $bins = Get-EtcdBinary
        $bins.Name | Should -Be @('etcd', 'etcdctl')
        foreach ($b in $bins) {
            $b.Version.Major | Should -Be 3
            $b.Path | Should -Exist
        }
    }

    It 'says which flags the installed etcd supports' {
        $etcd = Get-EtcdBinary -Name etcd
        $etcd.SupportsV2 | Should -Be ($etcd.Version -lt [version] '3.6')
        $etcd.SupportsClientCertFile | Should -Be ($etcd.Version -ge [version] '3.5')
    }

    It 'fails with a stable error id when the path does not exist' {
        $err = Get-ThrownError { Get-EtcdBinary -Name etcd -Path (Join-Path $TestDrive 'no-such-etcd') }
        $err.FullyQualifiedErrorId | Should -BeLike 'EtcdBinaryNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err.TargetObject | Should -BeLike '*no-such-etcd'
    }
}

Describe 'Durations: one rule for every duration parameter' -Tag Unit {
    BeforeAll {
        $transform = [EtcdSecure.PowerShell.DurationTransformationAttribute]::new()
        $ca = New-EtcdCA -Path (Join-Path $TestDrive 'pki')
        # Expires in 20 days: a window of two years must find it.
        $soon = $ca | New-EtcdCertificate -Profile Client -CommonName soon -Validity '480h'
    }

    It 'puts the rule on every TimeSpan parameter of every cmdlet, so none reads a number as ticks' {
        $bare = foreach ($c in Get-Command -Module EtcdSecure -CommandType Cmdlet) {
            foreach ($p in $c.Parameters.Values | Where-Object { $_.ParameterType -in [TimeSpan], [Nullable[TimeSpan]] }) {
                if (-not ($p.Attributes | Where-Object { $_ -is [EtcdSecure.PowerShell.DurationTransformationAttribute] })) { "$($c.Name) -$($p.Name)" }
            }
        }
        $bare | Should -BeNullOrEmpty
    }

    It 'takes <Text> as <Expected>' -TestCases @(
        @{ Text = '30s'; Expected = [TimeSpan]::FromSeconds(30) }
        @{ Text = '8760h'; Expected = [TimeSpan]::FromHours(8760) }
        @{ Text = '1h30m'; Expected = [TimeSpan]::FromMinutes(90) }
        @{ Text = '30d'; Expected = [TimeSpan]::FromDays(30) }
        @{ Text = '500ms'; Expected = [TimeSpan]::FromMilliseconds(500) }
        @{ Text = '365.00:00:00'; Expected = [TimeSpan]::FromDays(365) }
        @{ Text = '00:00:05'; Expected = [TimeSpan]::FromSeconds(5) }
        @{ Text = '0'; Expected = [TimeSpan]::Zero }
    ) {
        $transform.Transform($ExecutionContext, $Text) | Should -Be $Expected
    }

    It 'takes a TimeSpan as it is, and the number 0 as zero' {
        $transform.Transform($ExecutionContext, [TimeSpan]::FromMinutes(3)) | Should -Be ([TimeSpan]::FromMinutes(3))
        $transform.Transform($ExecutionContext, 0) | Should -Be ([TimeSpan]::Zero)
    }

    It 'refuses <Shown>, never guessing a unit' -TestCases @(
        @{ Shown = 'the number 30'; Value = 30 }
        @{ Shown = '2y (the sbyte 2)'; Value = [sbyte] 2 }
        @{ Shown = '30d (the decimal 30)'; Value = [decimal] 30 }
        @{ Shown = "the string '30'"; Value = '30' }
        @{ Shown = "'2y'"; Value = '2y' }
        @{ Shown = "'soon'"; Value = 'soon' }
    ) {
        { $transform.Transform($ExecutionContext, $Value) } | Should -Throw
    }

    It 'refuses Stop-EtcdMember -Timeout 30 before it stops anything, with the message -Validity gives' {
        $err = Get-ThrownError { Stop-EtcdMember no-such-member -Timeout 30 }
        $err.FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentTransformationError,*'
        $err.Exception.Message | Should -Match "arrived as a number, without a unit"
        $err.CategoryInfo.Category | Should -Be 'InvalidData'
        $same = Get-ThrownError { New-EtcdCA -Path (Join-Path $TestDrive 'unquoted') -Validity 1s }
        $same.Exception.Message | Should -Match "arrived as a number, without a unit"
    }

    It 'refuses Test-EtcdClusterHealth -Timeout 30 and takes -Timeout ''5s''' {
        (Get-ThrownError { Test-EtcdClusterHealth https://127.0.0.1:1 -CA $ca -Timeout 30 }).Exception.Message | Should -Match 'arrived as a number'
        $r = Test-EtcdClusterHealth "https://127.0.0.1:$(Get-FreeTcpPort)" -CA $ca -Timeout '5s'
        $r.Error | Should -Match 'refused'
    }

    It 'refuses -ExpiringWithin 2y, which PowerShell reads as 2, instead of passing a certificate that expires in 20 days' {
        (Get-ThrownError { Test-EtcdCertificate $soon.Path -ExpiringWithin 2y }).Exception.Message | Should -Match 'arrived as a number'
        (Get-ThrownError { Test-EtcdCertificate $soon.Path -ExpiringWithin 3 }).Exception.Message | Should -Match 'arrived as a number'
        Test-EtcdCertificate $soon.Path -ExpiringWithin '17520h' -Quiet | Should -BeFalse
        Test-EtcdCertificate $soon.Path -ExpiringWithin '730d' -Quiet | Should -BeFalse
        Test-EtcdCertificate $soon.Path -ExpiringWithin '10d' -Quiet | Should -BeTrue
    }

    It 'takes -Validity ''20d'' as 20 days' {
        $c = $ca | New-EtcdCertificate -Profile Client -CommonName twenty -Validity '20d'
        ($c.NotAfter - $c.NotBefore).TotalDays | Should -BeGreaterThan 20
        ($c.NotAfter - $c.NotBefore).TotalDays | Should -BeLessThan 20.01
    }
}
