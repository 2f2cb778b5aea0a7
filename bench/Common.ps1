# Dot-sourced by the bench scripts, which can also be run one by one.
. "$PSScriptRoot/../tools/PwshCommand.ps1"

function Get-Median([double[]] $Values) {
    $sorted = $Values | Sort-Object
    $mid = [math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { $sorted[$mid] } else { ($sorted[$mid - 1] + $sorted[$mid]) / 2 }
}

function Get-ReadyToRunPwsh([Parameter(Mandatory)] [string] $CacheRoot) {
    <#
    This PowerShell with its own assemblies compiled ReadyToRun, as the released packages (deb, rpm, tar.gz, MSI)
    ship them: the dotnet tool package, which CI installs, carries IL only, so every PowerShell method that runs is
    JIT-compiled first. Returns Path and Arguments as Get-PwshCommand does, plus Note; Path is $null when no such copy
    can be made here (Note says why), and this same PowerShell when it is ReadyToRun already.
    #>
    function Test-IlOnly([string] $File) {
        try {
            $reader = [Reflection.PortableExecutable.PEReader]::new([IO.File]::OpenRead($File))
            try { $reader.HasMetadata -and $reader.PEHeaders.CorHeader.ManagedNativeHeaderDirectory.Size -eq 0 }
            finally { $reader.Dispose() }
        }
        catch { $false }
    }
    $self = Get-PwshCommand
    $sma = Join-Path $PSHOME 'System.Management.Automation.dll'
    if (-not (Test-IlOnly $sma)) { return [pscustomobject]@{ Path = $self.Path; Arguments = $self.Arguments; Note = 'this PowerShell is ReadyToRun already' } }
    # A copy can only be started as "dotnet <copy>/pwsh.dll": a PowerShell that is its own executable has no such copy.
    if (-not $self.Arguments) { return [pscustomobject]@{ Path = $null; Arguments = @(); Note = 'this PowerShell does not run as dotnet pwsh.dll' } }

    $rid = [Runtime.InteropServices.RuntimeInformation]::RuntimeIdentifier
    $packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages' }
    $runtime = [Environment]::Version
    # The crossgen2 package of this runtime, which the module's ReadyToRun build restores; another patch of the same
    # major version compiles the same way.
    $crossgen = Get-ChildItem (Join-Path $packages "microsoft.netcore.app.crossgen2.$rid") -Directory -ErrorAction Ignore |
        Where-Object { $_.Name -like "$($runtime.Major).*" } | Sort-Object { [version]($_.Name -replace '-.*') } -Descending |
        ForEach-Object { Join-Path $_.FullName 'tools/crossgen2' } | Where-Object { Test-Path $_ } | Select-Object -First 1
    if (-not $crossgen) { return [pscustomobject]@{ Path = $null; Arguments = @(); Note = "no crossgen2 for $rid and .NET $($runtime.Major) under $packages (build.ps1 build restores it)" } }

    $target = Join-Path $CacheRoot "pwsh-r2r-$($PSVersionTable.PSVersion)-$runtime"
    $done = Join-Path $target '.compiled'
    if (-not (Test-Path $done)) {
        Remove-Item $target -Recurse -Force -ErrorAction Ignore
        Copy-Item $PSHOME $target -Recurse
        $os = if ($IsWindows) { 'windows' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
        $arch = "$([Runtime.InteropServices.RuntimeInformation]::OSArchitecture)".ToLowerInvariant()
        $framework = [Runtime.InteropServices.RuntimeEnvironment]::GetRuntimeDirectory()
        $compiled = Join-Path $target '.r2r'
        $null = New-Item $compiled -ItemType Directory
        # One token each: PowerShell expands a wildcard in a native command's argument into many.
        $references = @("--reference:$(Join-Path $framework '*.dll')", "--reference:$(Join-Path $PSHOME '*.dll')")
        foreach ($file in Get-ChildItem $target -Filter *.dll | Where-Object { Test-IlOnly $_.FullName }) {
            # An assembly crossgen2 cannot compile (one for Windows only, say) stays IL, as it would in a release.
            & $crossgen @references --targetos $os --targetarch $arch -O $file.FullName -o (Join-Path $compiled $file.Name) *> $null
            if ($LASTEXITCODE -eq 0) { Move-Item (Join-Path $compiled $file.Name) $file.FullName -Force }
        }
        Remove-Item $compiled -Recurse -Force
        $null = New-Item $done -ItemType File
    }
    [pscustomobject]@{ Path = $self.Path; Arguments = @(Join-Path $target 'pwsh.dll'); Note = "a copy of this PowerShell with its assemblies compiled ReadyToRun by crossgen2 $(Split-Path (Split-Path (Split-Path $crossgen)) -Leaf)" }
}

# Ends what the benchmark wrote in each section of the report. What follows it, up to the next section, is people's
# notes (runs side by side, profiles, what was tried): a new run replaces the tables above it and keeps the notes.
$BenchSectionEnd = '<!-- end of the benchmark''s output: the notes below are kept when it runs again -->'

function Split-BenchSection {
    <# The lines of a run, cut into sections at their '## ' headings, each with Stamp as its first paragraph. #>
    param([AllowEmptyString()] [string[]] $Lines, [Parameter(Mandatory)] [string] $Stamp)
    $sections = [Collections.Generic.List[object]]::new()
    $current = $null
    foreach ($line in $Lines) {
        if ($line.StartsWith('## ')) {
            $current = [Collections.Generic.List[string]]::new()
            $current.AddRange([string[]]@($line, '', $Stamp, ''))
            $sections.Add($current)
        }
        # The run's own blank line under a heading is the one after the stamp.
        elseif ($null -ne $current -and ($line -ne '' -or $current.Count -gt 4)) { $current.Add($line) }
    }
    foreach ($s in $sections) {
        while ($s.Count -and $s[$s.Count - 1] -eq '') { $s.RemoveAt($s.Count - 1) }
        , $s.ToArray()
    }
}

function Merge-BenchReport {
    <#
    The report with a new run's sections put in: each replaces the section of the same heading from that heading down
    to its end marker (down to the next heading where there is none yet), so the notes below the marker stay; a
    section the report does not have yet goes at its end. Lines before the first heading are left alone.
    #>
    param([AllowEmptyString()] [string[]] $Document, [Parameter(Mandatory)] [object[]] $Sections)
    $doc = [Collections.Generic.List[string]]::new([string[]]@($Document))
    foreach ($s in $Sections) {
        [string[]] $new = @($s) + @('', $BenchSectionEnd)
        $start = $doc.IndexOf($s[0])
        if ($start -lt 0) {
            if ($doc.Count -and $doc[$doc.Count - 1] -ne '') { $doc.Add('') }
            $doc.AddRange($new)
            $doc.Add('')
            continue
        }
        $next = $start + 1
        while ($next -lt $doc.Count -and -not $doc[$next].StartsWith('## ')) { $next++ }
        $marker = $doc.IndexOf($BenchSectionEnd, $start, $next - $start)
        if ($marker -ge 0) { $doc.RemoveRange($start, $marker - $start + 1) }
        else {
            $doc.RemoveRange($start, $next - $start)
            $new += ''
        }
        $doc.InsertRange($start, $new)
    }
    $doc.ToArray()
}
