#requires -Version 7.6
<#
.SYNOPSIS
    Certificates per second: EtcdSecure in one session against cfssl making the same set, same run.
.DESCRIPTION
    Each side makes a CA and then N leaf certificates (server profile, two hosts). cfssl is a CLI, so its
    number includes a process per certificate: that is how people run it (cfssl gencert | cfssljson -bare).
#>
param([Parameter(Mandatory)] [string] $ModulePath, [int] $Count = 100)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$root = Join-Path ([IO.Path]::GetTempPath()) "etcdsecure-bench-pki-$PID"
$config = '{"signing":{"profiles":{"server":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"8760h"}}}}'
$lines = @('## Certificates per second (CA + server certificates, 2 SANs each)', '',
    "$Count certificates per row; cfssl 1.2 runs as people run it: cfssl gencert | cfssljson -bare, one process pair per certificate.", '',
    '| key | EtcdSecure cert/s | cfssl cert/s | ratio (EtcdSecure / cfssl) |', '|---|---:|---:|---:|')
try {
    foreach ($k in @(@{ Name = 'ECDSA P-256'; Algo = 'ecdsa'; Size = 256; Ps = 'ECDSA' }, @{ Name = 'RSA 2048'; Algo = 'rsa'; Size = 2048; Ps = 'RSA' })) {
        $dir = New-Item -ItemType Directory (Join-Path $root "$($k.Algo)-ours") -Force
        $ca = New-EtcdCA -Path $dir -KeyAlgorithm $k.Ps -KeySize $k.Size
        $null = $ca | New-EtcdCertificate -Profile Server -CommonName warm -Hosts localhost -KeyAlgorithm $k.Ps -KeySize $k.Size
        $ours = Measure-Command {
            for ($i = 0; $i -lt $Count; $i++) { $null = $ca | New-EtcdCertificate -Profile Server -CommonName "s$i" -Hosts localhost, 127.0.0.1 -KeyAlgorithm $k.Ps -KeySize $k.Size }
        }

        $cdir = New-Item -ItemType Directory (Join-Path $root "$($k.Algo)-cfssl") -Force
        Push-Location $cdir
        try {
            Set-Content ca-config.json $config
            "{`"CN`":`"ca`",`"key`":{`"algo`":`"$($k.Algo)`",`"size`":$($k.Size)}}" | Set-Content ca-csr.json
            cfssl gencert -initca ca-csr.json 2>$null | cfssljson -bare ca
            $theirs = Measure-Command {
                for ($i = 0; $i -lt $Count; $i++) {
                    "{`"CN`":`"s$i`",`"hosts`":[`"localhost`",`"127.0.0.1`"],`"key`":{`"algo`":`"$($k.Algo)`",`"size`":$($k.Size)}}" | Set-Content "s$i.json"
                    cfssl gencert -ca ca.pem -ca-key ca-key.pem -config ca-config.json -profile server "s$i.json" 2>$null | cfssljson -bare "s$i"
                }
            }
        }
        finally { Pop-Location }
        $o = $Count / $ours.TotalSeconds
        $t = $Count / $theirs.TotalSeconds
        $lines += ('| {0} | {1:N1} | {2:N1} | {3:N2} |' -f $k.Name, $o, $t, ($o / $t))
    }
}
finally { Remove-Item $root -Recurse -Force -ErrorAction Ignore }
# RSA issuance is bounded by key generation: the platform's (OpenSSL 3 here) on one core, against what a certificate
# costs in all when keys are made on every core at once.
$keygen = Measure-Command { for ($i = 0; $i -lt 20; $i++) { $r = [System.Security.Cryptography.RSA]::Create(2048); $null = $r.ExportParameters($true); $r.Dispose() } }
$lines += ''
$lines += ('RSA 2048 key generation alone, on one core, in the platform crypto EtcdSecure uses: {0:N1} keys/s. Every RSA certificate needs a key; EtcdSecure makes them on {1} cores at once while a caller waits, takes the first one done and keeps the rest for the next caller (at most one per extra core, dropped after 5 minutes). RSA counts vary from run to run: the time a prime search takes is luck, hence {2} certificates a row.' -f (20 / $keygen.TotalSeconds), [Math]::Min([Environment]::ProcessorCount, 4), $Count)
$lines += ''
$lines
