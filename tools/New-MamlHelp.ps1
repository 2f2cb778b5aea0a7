#requires -Version 7.6
<#
.SYNOPSIS
    Writes the module's MAML help from the C# doc comments: the cmdlet class's <summary> (first sentence = synopsis),
    <remarks> and <example> elements, and each parameter property's <summary>. Syntax comes from PowerShell's own view
    of the cmdlets (parameter sets, positions, pipeline binding), so help and behaviour cannot drift apart.
#>
param(
    [Parameter(Mandatory)] [string] $ModuleManifest,
    [Parameter(Mandatory)] [string] $DocumentationXml,
    [Parameter(Mandatory)] [string] $OutFile
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$module = Import-Module $ModuleManifest -PassThru
$docs = @{}
foreach ($m in ([xml](Get-Content $DocumentationXml -Raw)).doc.members.member) { $docs[$m.name] = $m }
$common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters

function Get-Text($node) {
    # Doc-comment text as plain paragraphs: <see cref="X"/> becomes X, whitespace from the C# indentation goes.
    if ($null -eq $node) { return @() }
    $clone = $node.Clone()
    foreach ($see in @($clone.SelectNodes('.//see'))) { $see.ParentNode.ReplaceChild($clone.OwnerDocument.CreateTextNode(($see.cref -replace '^\w:', '' -split '\.')[-1]), $see) | Out-Null }
    foreach ($p in @($clone.SelectNodes('.//paramref'))) { $p.ParentNode.ReplaceChild($clone.OwnerDocument.CreateTextNode($p.name), $p) | Out-Null }
    @(($clone.InnerText -split '\n\s*\n') | ForEach-Object { ($_ -replace '\s+', ' ').Trim() } | Where-Object { $_ })
}

function Get-CodeText([string] $code) {
    $lines = $code -split "`n"
    while ($lines.Count -and -not $lines[0].Trim()) { $lines = $lines[1..($lines.Count - 1)] }
    while ($lines.Count -and -not $lines[-1].Trim()) { $lines = $lines[0..($lines.Count - 2)] }
    $indent = ($lines | Where-Object { $_.Trim() } | ForEach-Object { $_.Length - $_.TrimStart().Length } | Measure-Object -Minimum).Minimum
    ($lines | ForEach-Object { if ($_.Length -ge $indent) { $_.Substring($indent) } else { $_.TrimStart() } }) -join "`n"
}

function Esc([string] $s) { [Security.SecurityElement]::Escape($s) }
function Para([string[]] $ps) { ($ps | ForEach-Object { "<maml:para>$(Esc $_)</maml:para>" }) -join '' }

function Get-TypeName([Type] $t) {
    # What a user types: Int32 for Nullable`1[Int32], TimeSpan for TimeSpan?, String[] as it is.
    $inner = [Nullable]::GetUnderlyingType($t)
    if ($inner) { return $inner.Name }
    $t.Name
}

function Get-PropertyDoc([Type] $type, [string] $name) {
    $prop = $type.GetProperty($name)
    if (-not $prop) { return $null }
    $docs["P:$($prop.DeclaringType.FullName).$name"]
}

$out = [Text.StringBuilder]::new()
$null = $out.AppendLine('<?xml version="1.0" encoding="utf-8"?>')
$null = $out.AppendLine('<helpItems schema="maml" xmlns="http://msh">')
foreach ($cmd in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    $type = $cmd.ImplementingType
    $classDoc = $docs["T:$($type.FullName)"]
    $docText = if ($classDoc) { $classDoc.OuterXml } else { "" }
    $summary = @(Get-Text (${classDoc}?.SelectSingleNode('summary')))
    $synopsis = if ($summary) { ($summary[0] -split '(?<=[.!?])\s')[0] } else { '' }
    $description = @($summary) + @(Get-Text (${classDoc}?.SelectSingleNode('remarks')))
    $null = $out.AppendLine('<command:command xmlns:maml="http://schemas.microsoft.com/maml/2004/10" xmlns:command="http://schemas.microsoft.com/maml/dev/command/2004/10" xmlns:dev="http://schemas.microsoft.com/maml/dev/2004/10">')
    $null = $out.AppendLine("<command:details><command:name>$($cmd.Name)</command:name><command:verb>$($cmd.Verb)</command:verb><command:noun>$($cmd.Noun)</command:noun><maml:description>$(Para $synopsis)</maml:description></command:details>")
    $null = $out.AppendLine("<maml:description>$(Para $description)</maml:description>")

    $params = $cmd.Parameters.Values | Where-Object { $_.Name -notin $common }
    $null = $out.AppendLine('<command:syntax>')
    foreach ($set in $cmd.ParameterSets) {
        $null = $out.AppendLine("<command:syntaxItem><maml:name>$($cmd.Name)</maml:name>")
        foreach ($p in $set.Parameters | Where-Object { $_.Name -notin $common }) {
            $pos = if ($p.Position -ge 0) { $p.Position + 1 } else { 'named' }
            $value = if ($p.ParameterType -eq [switch]) { '' } else { '<command:parameterValue required="true">' + (Esc (Get-TypeName $p.ParameterType)) + '</command:parameterValue>' }
            $required = $p.IsMandatory.ToString().ToLower()
            $piped = $p.ValueFromPipeline -or $p.ValueFromPipelineByPropertyName
            $null = $out.AppendLine("<command:parameter required='$required' position='$pos' pipelineInput='$piped' globbing='false'><maml:name>$($p.Name)</maml:name>$value</command:parameter>")
        }
        $null = $out.AppendLine('</command:syntaxItem>')
    }
    $null = $out.AppendLine('</command:syntax>')

    $null = $out.AppendLine('<command:parameters>')
    foreach ($p in $params | Sort-Object Name) {
        $attrs = @($p.ParameterSets.Values)
        $mandatory = @($attrs | Where-Object IsMandatory).Count -gt 0
        $position = ($attrs | Where-Object { $_.Position -ge 0 } | Select-Object -First 1)
        $pos = if ($position) { $position.Position + 1 } else { 'named' }
        $pipeline = @(if ($attrs | Where-Object ValueFromPipeline) { 'True (ByValue)' }; if ($attrs | Where-Object ValueFromPipelineByPropertyName) { 'True (ByPropertyName)' })
        $propDoc = Get-PropertyDoc $type $p.Name
        $text = @(Get-Text (${propDoc}?.SelectSingleNode('summary')))
        $aliases = if ($p.Aliases.Count) { $p.Aliases -join ', ' } else { 'None' }
        $required = $mandatory.ToString().ToLower()
        $globbing = [bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
        $pipeText = if ($pipeline) { $pipeline -join ', ' } else { 'False' }
        $typeName = Esc (Get-TypeName $p.ParameterType)
        $inner = [Nullable]::GetUnderlyingType($p.ParameterType)
        $fullName = Esc $(if ($inner) { $inner.FullName } else { $p.ParameterType.FullName })
        $null = $out.AppendLine("<command:parameter required='$required' globbing='$globbing' pipelineInput='$pipeText' position='$pos' aliases='$(Esc $aliases)'><maml:name>$($p.Name)</maml:name><maml:description>$(Para $text)</maml:description><command:parameterValue required='true'>$typeName</command:parameterValue><dev:type><maml:name>$fullName</maml:name></dev:type></command:parameter>")
    }
    $null = $out.AppendLine('</command:parameters>')

    # INPUTS: what the pipeline can bind, by value (the type) or by property name (objects with those properties).
    $null = $out.AppendLine('<command:inputTypes>')
    $byValue = @($params | Where-Object { $_.ParameterSets.Values | Where-Object ValueFromPipeline })
    $byName = @($params | Where-Object { $_.ParameterSets.Values | Where-Object ValueFromPipelineByPropertyName })
    foreach ($p in $byValue) {
        $t = [Nullable]::GetUnderlyingType($p.ParameterType) ?? $p.ParameterType
        $null = $out.AppendLine("<command:inputType><dev:type><maml:name>$(Esc $t.FullName)</maml:name></dev:type><maml:description>$(Para "Bound to -$($p.Name).")</maml:description></command:inputType>")
    }
    if ($byName) {
        $names = $byName | ForEach-Object { @($_.Name) + @($_.Aliases) } | Select-Object -Unique
        $null = $out.AppendLine("<command:inputType><dev:type><maml:name>System.Management.Automation.PSObject</maml:name></dev:type><maml:description>$(Para "Any object with a property named $(($names | ForEach-Object { $_ }) -join ', ') (such as the objects the other EtcdSecure cmdlets return), bound by property name.")</maml:description></command:inputType>")
    }
    if (-not $byValue -and -not $byName) {
        $null = $out.AppendLine("<command:inputType><dev:type><maml:name>None</maml:name></dev:type><maml:description>$(Para 'This cmdlet takes no pipeline input.')</maml:description></command:inputType>")
    }
    $null = $out.AppendLine('</command:inputTypes>')

    $null = $out.AppendLine('<command:returnValues>')
    foreach ($t in $cmd.OutputType) { $null = $out.AppendLine("<command:returnValue><dev:type><maml:name>$(Esc $t.Name)</maml:name></dev:type></command:returnValue>") }
    $null = $out.AppendLine('</command:returnValues>')

    $null = $out.AppendLine('<command:examples>')
    $i = 0
    foreach ($ex in @(${classDoc}?.SelectNodes('example'))) {
        if ($null -eq $ex) { continue }
        $i++
        $code = Get-CodeText $ex.SelectSingleNode('code').InnerText
        $ex.RemoveChild($ex.SelectSingleNode('code')) | Out-Null
        $null = $out.AppendLine("<command:example><maml:title>-------------------------- Example $i --------------------------</maml:title><dev:code>$(Esc $code)</dev:code><dev:remarks>$(Para (Get-Text $ex))</dev:remarks></command:example>")
    }
    $null = $out.AppendLine('</command:examples>')

    # RELATED LINKS: the cmdlets of the same noun, those the help itself names, and the module's about topic.
    $named = [regex]::Matches($docText, '\b[A-Z][a-z]+-Etcd[A-Za-z]+\b') | ForEach-Object Value
    $sameNoun = Get-Command -Module $module.Name -Noun $cmd.Noun | ForEach-Object Name
    $related = @($sameNoun) + @($named) | Where-Object { $_ -ne $cmd.Name -and (Get-Command $_ -Module $module.Name -ErrorAction Ignore) } | Select-Object -Unique | Sort-Object
    $null = $out.AppendLine('<command:relatedLinks>')
    foreach ($r in @($related) + 'about_EtcdSecure') { $null = $out.AppendLine("<maml:navigationLink><maml:linkText>$(Esc $r)</maml:linkText><maml:uri /></maml:navigationLink>") }
    $null = $out.AppendLine('</command:relatedLinks>')
    $null = $out.AppendLine('</command:command>')
}
$null = $out.AppendLine('</helpItems>')
New-Item -ItemType Directory (Split-Path $OutFile) -Force | Out-Null
Set-Content -Path $OutFile -Value $out.ToString() -Encoding utf8
Write-Host "build: help for $((Get-Command -Module $module.Name -CommandType Cmdlet).Count) cmdlets in $OutFile"
