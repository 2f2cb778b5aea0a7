# Dot-sourced by the bench scripts, which can also be run one by one.
. "$PSScriptRoot/../tools/PwshCommand.ps1"

function Get-Median([double[]] $Values) {
    $sorted = $Values | Sort-Object
    $mid = [math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { $sorted[$mid] } else { ($sorted[$mid - 1] + $sorted[$mid]) / 2 }
}
