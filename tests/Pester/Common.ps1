# Dot-sourced by every test file: imports the staged module and defines the shared test helpers.
$script:ModuleManifest = if ($env:ETCDSECURE_MODULE) { $env:ETCDSECURE_MODULE } else {
    $version = (Import-PowerShellDataFile "$PSScriptRoot/../../EtcdSecure.psd1").ModuleVersion
    "$PSScriptRoot/../../out/EtcdSecure/$version/EtcdSecure.psd1"
}
Import-Module $script:ModuleManifest -Force

function Invoke-CleanPwsh {
    <# Runs a script in a new pwsh process (no profile) and returns everything it wrote, all streams merged. #>
    param([Parameter(Mandatory)] [string] $Command)
    # The tool-installed pwsh runs as "dotnet pwsh.dll"; a regular install runs as pwsh itself.
    $exe = [Environment]::ProcessPath
    [string[]] $prefix = if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { @(Join-Path $PSHOME 'pwsh.dll') } else { @() }
    $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($Command))
    $output = & $exe @prefix -NoProfile -NonInteractive -EncodedCommand $encoded 2>&1
    [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = @($output | ForEach-Object { "$_" }) }
}

function Get-ThrownError {
    <# Runs a script block that must throw and returns the ErrorRecord, so tests can assert id, category and target. #>
    param([Parameter(Mandatory)] [scriptblock] $ScriptBlock)
    try { & $ScriptBlock; $null = $PSCmdlet } catch { return $_ }
    throw 'Expected the script block to throw, and it did not.'
}

function Wait-Until {
    <# Polls a condition with a bound instead of sleeping a fixed time. #>
    param([Parameter(Mandatory)] [scriptblock] $Condition, [TimeSpan] $Timeout = '00:00:20', [string] $Because = 'the condition')
    $deadline = [DateTime]::UtcNow + $Timeout
    while ([DateTime]::UtcNow -lt $deadline) {
        if (& $Condition) { return }
        Start-Sleep -Milliseconds 100
    }
    throw "Timed out after $Timeout waiting for $Because."
}
