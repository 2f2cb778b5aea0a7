# Dot-sourced by build.ps1, tests/Pester/Common.ps1 and bench/Common.ps1.

function Get-PwshCommand {
    <#
    How to start this same PowerShell again: Path, and Arguments that must come before the script's own. The
    tool-installed pwsh runs as "dotnet pwsh.dll"; a regular install runs as pwsh itself.
    Use: $pwsh = Get-PwshCommand; $prefix = $pwsh.Arguments; & $pwsh.Path @prefix -NoProfile ...
    #>
    $exe = [Environment]::ProcessPath
    [string[]] $arguments = if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { @(Join-Path $PSHOME 'pwsh.dll') } else { @() }
    [pscustomobject]@{ Path = $exe; Arguments = $arguments }
}
