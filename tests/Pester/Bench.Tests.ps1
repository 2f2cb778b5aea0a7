BeforeAll {
    . "$PSScriptRoot/../../bench/Common.ps1"
    $stamp = 'Measured today.'
    $report = @(
        '# EtcdSecure benchmarks', '', 'What this file is.', ''
        '## Import', '', 'Measured before.', '', '| old import |', '', $BenchSectionEnd, '', 'Notes on import, by hand.', ''
        '## Proxy', '', '| old proxy |', '', $BenchSectionEnd, '', 'Notes on the proxy.', '', 'More notes.', ''
        '## Written before the markers', '', '| old table |', '', 'Text of that run.', ''
    )
}

Describe 'bench/Invoke-Benchmark.ps1: a new run goes into docs/benchmarks.md' -Tag Unit {
    It 'replaces the tables of the sections it ran, keeps the notes below them and the sections it did not run' {
        $run = @(Split-BenchSection -Lines @('## Proxy', '', '| new proxy |', '', '') -Stamp $stamp)
        $merged = Merge-BenchReport -Document $report -Sections $run
        $merged | Should -Not -Contain '| old proxy |'
        $text = $merged -join "`n"
        $text | Should -BeLike "*## Proxy`n`nMeasured today.`n`n| new proxy |`n`n$BenchSectionEnd`n`nNotes on the proxy.`n`nMore notes.`n`n## Written before the markers*"
        $text | Should -BeLike "# EtcdSecure benchmarks`n`nWhat this file is.`n`n## Import`n`nMeasured before.`n`n| old import |`n`n$BenchSectionEnd`n`nNotes on import, by hand.`n`n## Proxy*"
    }

    It 'puts a section the report lacks at its end, with its marker' {
        $run = @(Split-BenchSection -Lines @('## New part', '', '| its table |') -Stamp $stamp)
        $merged = Merge-BenchReport -Document $report -Sections $run
        ($merged -join "`n") | Should -BeLike "*Text of that run.`n`n## New part`n`nMeasured today.`n`n| its table |`n`n$BenchSectionEnd`n"
        ($merged | Where-Object { $_ -eq $BenchSectionEnd }).Count | Should -Be 3
    }

    It 'replaces a section that has no marker yet down to the next heading, and marks it' {
        $run = @(Split-BenchSection -Lines @('## Written before the markers', '', '| new table |', '## Import', '', '| new import |') -Stamp $stamp)
        $merged = Merge-BenchReport -Document $report -Sections $run
        $merged | Should -Not -Contain 'Text of that run.'
        $merged | Should -Not -Contain '| old import |'
        $merged | Should -Contain 'Notes on import, by hand.'
        ($merged -join "`n") | Should -BeLike "*## Written before the markers`n`nMeasured today.`n`n| new table |`n`n$BenchSectionEnd`n"
    }

    It 'writes a report of its own where there is none, each section with its marker' {
        $out = Join-Path $TestDrive 'report.md'
        $run = @(Split-BenchSection -Lines @('## A', 'a', '## B', 'b') -Stamp $stamp)
        Set-Content $out (Merge-BenchReport -Document @('# Title', '') -Sections $run)
        $lines = Get-Content $out
        $lines | Should -Be @('# Title', '', '## A', '', 'Measured today.', '', 'a', '', $BenchSectionEnd, '', '## B', '', 'Measured today.', '', 'b', '', $BenchSectionEnd, '')
    }
}
