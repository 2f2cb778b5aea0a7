BeforeAll {
    . "$PSScriptRoot/Common.ps1"

    function Get-OpenSslText([string] $Path) { (& openssl x509 -in $Path -noout -text) -join "`n" }

    $configJson = @'
{
  "signing": {
    "default": { "expiry": "8760h" },
    "profiles": {
      "etcd-node":  { "usages": ["signing", "key encipherment", "server auth", "client auth"], "expiry": "8760h" },
      "etcd-proxy": { "usages": ["signing", "key encipherment", "server auth", "client auth"], "expiry": "8760h" },
      "server-only": { "usages": ["signing", "key encipherment", "server auth"], "expiry": "8760h" }
    }
  }
}
'@
}

Describe 'New-EtcdCA' -Tag Unit {
    BeforeAll {
        $dir = Join-Path $TestDrive 'ca-defaults'
        $ca = New-EtcdCA -Path $dir
    }

    It 'defaults to an ECDSA P-256 CA named etcd-ca, valid ten years as kubeadm''s CAs' {
        $ca.CommonName | Should -Be 'etcd-ca'
        $ca.KeyAlgorithm | Should -Be 'ECDSA'
        $ca.KeySize | Should -Be 256
        $ca.IsCA | Should -BeTrue
        ($ca.NotAfter - $ca.NotBefore).TotalHours | Should -BeGreaterThan 87600
        ($ca.NotAfter - $ca.NotBefore).TotalHours | Should -BeLessThan 87600.2
    }

    It 'backdates NotBefore by five minutes' {
        ([DateTime]::UtcNow - $ca.NotBefore).TotalMinutes | Should -BeGreaterThan 4.5
        ([DateTime]::UtcNow - $ca.NotBefore).TotalMinutes | Should -BeLessThan 10
    }

    It 'writes ca.pem, ca-key.pem (0600, SEC1) and ca.csr, as cfssljson -bare ca does' {
        (Get-ChildItem $dir -Force).Name | Sort-Object | Should -Be @('ca-key.pem', 'ca.csr', 'ca.pem')
        (Get-Item (Join-Path $dir 'ca-key.pem')).UnixFileMode | Should -Be ([IO.UnixFileMode] 'UserRead, UserWrite')
        (Get-Content (Join-Path $dir 'ca-key.pem') -First 1) | Should -Be '-----BEGIN EC PRIVATE KEY-----'
        (Get-Content (Join-Path $dir 'ca.csr') -First 1) | Should -Be '-----BEGIN CERTIFICATE REQUEST-----'
        & openssl req -in (Join-Path $dir 'ca.csr') -noout -verify 2>&1 | Should -Match 'verify OK'
    }

    It 'has CA basic constraints, cert sign + CRL sign, a subject key id and a 20-byte serial' {
        $text = Get-OpenSslText $ca.Path
        $text | Should -Match 'CA:TRUE'
        $text | Should -Match 'Certificate Sign, CRL Sign'
        $text | Should -Match 'Subject Key Identifier'
        $ca.SerialNumber.Length | Should -BeLessOrEqual 40
        $ca.SerialNumber.Length | Should -BeGreaterOrEqual 38
    }

    It 'makes the RSA 2048 CA of workflow A with its full subject' {
        $a = New-EtcdCA -Path (Join-Path $TestDrive 'wfa') -CommonName Etcd -Country US -Locality 'San Francisco' -Organization Infra -OrganizationalUnit CA -State California -KeyAlgorithm RSA -KeySize 2048 -Validity 8760h
        $a.KeyAlgorithm | Should -Be 'RSA'
        $a.KeySize | Should -Be 2048
        (Get-Content $a.KeyPath -First 1) | Should -Be '-----BEGIN RSA PRIVATE KEY-----'
        Get-OpenSslText $a.Path | Should -Match 'Subject: C\s?=\s?US, ST\s?=\s?California, L\s?=\s?San Francisco, O\s?=\s?Infra, OU\s?=\s?CA, CN\s?=\s?Etcd'
        [math]::Round(($a.NotAfter - $a.NotBefore).TotalHours) | Should -Be 8760
    }

    It 'takes a cfssl CSR JSON, with parameters overriding it' {
        $json = Join-Path $TestDrive 'ca-csr.json'
        '{"CN":"json-ca","key":{"algo":"rsa","size":3072},"names":[{"C":"NL","O":"Json"}],"ca":{"expiry":"1000h"}}' | Set-Content $json
        $c = New-EtcdCA -Path (Join-Path $TestDrive 'json') -CsrJson $json -Organization Override
        $c.CommonName | Should -Be 'json-ca'
        $c.KeySize | Should -Be 3072
        $c.Subject | Should -Match 'O=Override'
        $c.Subject | Should -Match 'C=NL'
        [math]::Round(($c.NotAfter - $c.NotBefore).TotalHours) | Should -Be 1000
    }

    It 'writes nothing with -WhatIf' {
        $dir2 = Join-Path $TestDrive 'whatif'
        New-EtcdCA -Path $dir2 -WhatIf | Should -BeNullOrEmpty
        Test-Path $dir2 | Should -BeFalse
    }

    It 'refuses to overwrite an existing CA key without -Force, and changes nothing' {
        $before = Get-FileHash (Join-Path $dir 'ca-key.pem')
        $err = Get-ThrownError { New-EtcdCA -Path $dir }
        $err.FullyQualifiedErrorId | Should -BeLike 'FileExists,*'
        $err.CategoryInfo.Category | Should -Be 'ResourceExists'
        (Get-FileHash (Join-Path $dir 'ca-key.pem')).Hash | Should -Be $before.Hash
        (Get-ChildItem $dir -Force).Count | Should -Be 3
    }

    It 'replaces it with -Force' {
        $before = (Get-FileHash (Join-Path $dir 'ca-key.pem')).Hash
        $new = New-EtcdCA -Path $dir -Force
        (Get-FileHash (Join-Path $dir 'ca-key.pem')).Hash | Should -Not -Be $before
        $new.Thumbprint | Should -Not -Be $ca.Thumbprint
        (Get-ChildItem $dir -Force).Count | Should -Be 3
    }

    It 'rejects <Case> with <ErrorId>' -ForEach @(
        @{ Case = 'an RSA key of 256 bits'; ErrorId = 'InvalidKeySize'; Params = @{ KeyAlgorithm = 'RSA'; KeySize = 256 } }
        @{ Case = 'a folder path that is a file'; ErrorId = 'OutputDirectoryUnavailable'; Params = @{ Path = 'FILE/sub' } }
        @{ Case = 'a base name with a slash'; ErrorId = 'InvalidName'; Params = @{ Name = 'a/b' } }
        @{ Case = 'a missing CSR JSON'; ErrorId = 'CsrJsonNotReadable'; Params = @{ CsrJson = 'nope.json' } }
    ) {
        $file = Join-Path $TestDrive 'a-file'
        Set-Content $file 'x'
        $p = @{ Path = Join-Path $TestDrive "bad-$ErrorId" }
        foreach ($k in $Params.Keys) { $p[$k] = $Params[$k] }
        if ($p['Path'] -like 'FILE*') { $p['Path'] = $p['Path'] -replace '^FILE', $file }
        if ($p.ContainsKey('CsrJson')) { $p['CsrJson'] = Join-Path $TestDrive $p['CsrJson'] }
        $err = Get-ThrownError { New-EtcdCA @p }
        $err.FullyQualifiedErrorId | Should -BeLike "$ErrorId,*"
        $err.TargetObject | Should -Not -BeNullOrEmpty
        Test-Path (Join-Path $TestDrive "bad-$ErrorId") | Should -BeFalse
    }
}

Describe 'New-EtcdCertificate' -Tag Unit {
    BeforeAll {
        $dir = Join-Path $TestDrive 'pki'
        $ca = New-EtcdCA -Path $dir -CommonName test-ca
        $config = Join-Path $TestDrive 'ca-config.json'
        Set-Content $config $configJson
    }

    It 'issues a <Profile> certificate with exactly <Expected>' -ForEach @(
        @{ Profile = 'Server'; Expected = @('server auth', 'client auth') }
        @{ Profile = 'Peer'; Expected = @('server auth', 'client auth') }
        @{ Profile = 'Client'; Expected = @('client auth') }
    ) {
        $c = $ca | New-EtcdCertificate -Profile $Profile -CommonName "t-$Profile" -Hosts localhost, 127.0.0.1
        $c.ExtendedKeyUsages | Should -Be $Expected
        $c.Profile | Should -Be $Profile
        $c.IsCA | Should -BeFalse
        $c.AuthorityKeyId | Should -Be $ca.SubjectKeyId
        & openssl verify -CAfile $ca.Path $c.Path | Should -Match ': OK$'
    }

    It 'puts DNS names and IPv4 and IPv6 addresses into the right SAN kinds' {
        $c = $ca | New-EtcdCertificate -Profile Server -CommonName sans -Hosts 'localhost', '127.0.0.1', '::1', '[fe80::1]', 'etcd-1.local'
        $c.DnsNames | Should -Be @('localhost', 'etcd-1.local')
        $c.IPAddresses | Should -Be @('127.0.0.1', '::1', 'fe80::1')
        Get-OpenSslText $c.Path | Should -Match 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FE80:0:0:0:0:0:0:1, DNS:etcd-1.local'
    }

    It 'uses the etcd-node profile of a cfssl ca-config.json unchanged (workflow A)' {
        $node = $ca | New-EtcdCertificate -Profile etcd-node -Config $config -CommonName etcd-node -OrganizationalUnit Cluster -Hosts localhost, 0.0.0.0, 127.0.0.1
        $node.Name | Should -Be 'etcd-node'
        $node.KeyUsages | Should -Be @('digital signature', 'key encipherment')
        $node.ExtendedKeyUsages | Should -Be @('server auth', 'client auth')
        $node.IPAddresses | Should -Be @('0.0.0.0', '127.0.0.1')
        [math]::Round(($node.NotAfter - $node.NotBefore).TotalHours) | Should -Be 8760
        @($node.Path, $node.KeyPath, $node.CsrPath) | ForEach-Object { $_ | Should -Exist }
        Split-Path $node.Path | Should -Be $dir
    }

    It 'signs with CA paths as well as with a CA object, into -Path' {
        $out = Join-Path $TestDrive 'elsewhere'
        $c = New-EtcdCertificate -Profile Client -CACertPath $ca.Path -CAKeyPath $ca.KeyPath -CommonName root -Path $out
        $c.Path | Should -Be (Join-Path $out 'root.pem')
        $c.DnsNames | Should -BeNullOrEmpty
    }

    It 'takes hosts, key and names from a cfssl CSR JSON, -Hosts overriding hosts like -hostname' {
        $json = Join-Path $TestDrive 'member-csr.json'
        '{"CN":"etcd-member","hosts":["etcd-1.local"],"key":{"algo":"rsa","size":2048},"names":[{"O":"etcd"}]}' | Set-Content $json
        $c = $ca | New-EtcdCertificate -Profile Peer -CsrJson $json -Name member-1
        $c.DnsNames | Should -Be @('etcd-1.local')
        $c.KeyAlgorithm | Should -Be 'RSA'
        $c2 = $ca | New-EtcdCertificate -Profile Peer -CsrJson $json -Name member-2 -Hosts 127.0.0.1
        $c2.DnsNames | Should -BeNullOrEmpty
        $c2.IPAddresses | Should -Be @('127.0.0.1')
    }

    It 'gives every RSA certificate a key of its own, one after another and from parallel runspaces' {
        # RSA keys are made on every core at once and a spare waits for the next caller: no key may go to two.
        $made = @(1..4 | ForEach-Object { $ca | New-EtcdCertificate -Profile Client -CommonName "seq$_" -KeyAlgorithm RSA })
        $module = (Get-Module EtcdSecure).Path
        $made += @(1..4 | ForEach-Object -ThrottleLimit 4 -Parallel {
            Import-Module $using:module
            New-EtcdCertificate -Profile Client -CACertPath $using:ca.Path -CAKeyPath $using:ca.KeyPath -CommonName "par$_" -KeyAlgorithm RSA
        })
        $moduli = foreach ($c in $made) {
            $fromCert = (& openssl x509 -in $c.Path -noout -modulus) -replace '^Modulus='
            $fromKey = (& openssl rsa -in $c.KeyPath -noout -modulus 2>$null) -replace '^Modulus='
            $fromKey | Should -Be $fromCert -Because "$($c.Path) must hold the public half of $($c.KeyPath)"
            $fromCert
        }
        $moduli.Count | Should -Be 8
        @($moduli | Sort-Object -Unique).Count | Should -Be 8
    }

    It 'fails on an unknown profile instead of falling back to the default, and writes nothing' {
        $err = Get-ThrownError { $ca | New-EtcdCertificate -Profile etcd-nod -Config $config -CommonName x -Hosts localhost }
        $err.FullyQualifiedErrorId | Should -BeLike 'UnknownProfile,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err.Exception.Message | Should -Match 'etcd-node'
        Join-Path $dir 'x.pem' | Should -Not -Exist
    }

    It 'rejects a <What> that is not JSON with <ErrorId>' -ForEach @(
        @{ What = 'signing config'; ErrorId = 'InvalidConfig'; Param = 'Config' }
        @{ What = 'CSR JSON'; ErrorId = 'InvalidCsrJson'; Param = 'CsrJson' }
    ) {
        $bad = Join-Path $TestDrive "not-json-$Param.json"
        Set-Content $bad '{ "signing": '
        $p = @{ Profile = 'Server'; CommonName = 'nj'; Hosts = 'localhost'; $Param = $bad }
        $err = Get-ThrownError { $ca | New-EtcdCertificate @p }
        $err.FullyQualifiedErrorId | Should -BeLike "$ErrorId,*"
        $err.CategoryInfo.Category | Should -Be 'InvalidData'
        $err.TargetObject | Should -Be $bad
        Join-Path $dir 'nj.pem' | Should -Not -Exist
    }

    It 'rejects the invalid host <BadHost>' -ForEach @(
        @{ BadHost = 'bad host' }, @{ BadHost = '-leading.example' }, @{ BadHost = '*.com' }
        # A mistyped address would otherwise become a DNS SAN that no client ever matches.
        @{ BadHost = '300.1.1.1' }, @{ BadHost = '10.0.0' }, @{ BadHost = 'host.123' }
    ) {
        $err = Get-ThrownError { $ca | New-EtcdCertificate -Profile Server -CommonName bad -Hosts $BadHost }
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidHost,*'
        $err.TargetObject | Should -Be $BadHost
        Join-Path $dir 'bad.pem' | Should -Not -Exist
    }

    It 'refuses a CA whose key belongs to another CA' {
        $other = New-EtcdCA -Path (Join-Path $TestDrive 'other') -CommonName other
        $err = Get-ThrownError { New-EtcdCertificate -Profile Server -CACertPath $ca.Path -CAKeyPath $other.KeyPath -CommonName mm -Hosts localhost }
        $err.FullyQualifiedErrorId | Should -BeLike 'CAKeyMismatch,*'
        Join-Path $dir 'mm.pem' | Should -Not -Exist
    }

    It 'refuses an expired CA' {
        $short = New-EtcdCA -Path (Join-Path $TestDrive 'short') -CommonName short -Validity '1s'
        # NotBefore is backdated, so a 1s CA expires a second after it was made; poll rather than sleep.
        Wait-Until { [DateTime]::UtcNow -gt $short.NotAfter } -Timeout '00:00:05' -Because 'the 1 s CA to expire'
        $err = Get-ThrownError { $short | New-EtcdCertificate -Profile Server -CommonName late -Hosts localhost }
        $err.FullyQualifiedErrorId | Should -BeLike 'CAExpired,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidData'
    }

    It 'refuses a leaf certificate as CA' {
        $leaf = $ca | New-EtcdCertificate -Profile Server -CommonName leaf -Hosts localhost
        $err = Get-ThrownError { $leaf | New-EtcdCertificate -Profile Server -CommonName sub -Hosts localhost }
        $err.FullyQualifiedErrorId | Should -BeLike 'NotACertificateAuthority,*'
    }

    It 'refuses an encrypted CA key with an explanation' {
        $enc = Join-Path $TestDrive 'enc-key.pem'
        & openssl pkey -in $ca.KeyPath -aes256 -passout pass:secret -out $enc 2>&1 | Out-Null
        $err = Get-ThrownError { New-EtcdCertificate -Profile Server -CACertPath $ca.Path -CAKeyPath $enc -CommonName e -Hosts localhost }
        $err.FullyQualifiedErrorId | Should -BeLike 'EncryptedPrivateKey,*'
        $err.Exception.Message | Should -Match 'unencrypted'
    }

    It 'refuses to overwrite an issued key without -Force' {
        $first = $ca | New-EtcdCertificate -Profile Client -CommonName again
        $hash = (Get-FileHash $first.KeyPath).Hash
        $err = Get-ThrownError { $ca | New-EtcdCertificate -Profile Client -CommonName again }
        $err.FullyQualifiedErrorId | Should -BeLike 'FileExists,*'
        (Get-FileHash $first.KeyPath).Hash | Should -Be $hash
        ($ca | New-EtcdCertificate -Profile Client -CommonName again -Force).Thumbprint | Should -Not -Be $first.Thumbprint
    }

    It 'completes profile names, including those of -Config' {
        $line = "New-EtcdCertificate -Config '$config' -Profile etcd-"
        $r = TabExpansion2 -inputScript $line -cursorColumn $line.Length
        $r.CompletionMatches.CompletionText | Should -Be @('etcd-node', 'etcd-proxy')
        $line2 = 'New-EtcdCertificate -Profile Pe'
        (TabExpansion2 -inputScript $line2 -cursorColumn $line2.Length).CompletionMatches.CompletionText | Should -Be @('Peer')
    }
}

Describe 'Get-EtcdCertificate' -Tag Unit {
    BeforeAll {
        $dir = Join-Path $TestDrive 'read'
        $ca = New-EtcdCA -Path $dir
        $null = $ca | New-EtcdCertificate -Profile Server -CommonName s1 -Hosts localhost
        $null = $ca | New-EtcdCertificate -Profile Client -CommonName c1
    }

    It 'reads every certificate a wildcard matches, with key and CSR paths' {
        $all = Get-EtcdCertificate (Join-Path $dir '*.pem') -ErrorAction SilentlyContinue
        ($all.Name | Sort-Object) | Should -Be @('c1', 'ca', 's1')
        ($all | Where-Object Name -EQ 's1').KeyPath | Should -Be (Join-Path $dir 's1-key.pem')
        ($all | Where-Object Name -EQ 's1').CsrPath | Should -Be (Join-Path $dir 's1.csr')
        # Built-in profiles issue for one year, as kubeadm does.
        ($all | Where-Object Name -EQ 'c1').DaysLeft | Should -BeIn 364, 365
    }

    It 'passes over the key files a wildcard matches in a cfssljson folder, and errs on a key file named on its own' {
        $null = Get-EtcdCertificate (Join-Path $dir '*.pem') -ErrorVariable errs
        $errs.Count | Should -Be 0
        $err = Get-ThrownError { Get-EtcdCertificate (Join-Path $dir 's1-key.pem') -ErrorAction Stop }
        $err.FullyQualifiedErrorId | Should -BeLike 'KeyFileGivenAsCertificate,*'
    }

    It 'passes over the CRL a wildcard matches (every cluster folder holds one), and errs on a CRL named on its own' {
        $crl = $ca | Update-EtcdCrl
        Test-Path $crl.Path | Should -BeTrue
        $all = Get-EtcdCertificate (Join-Path $dir '*.pem') -ErrorVariable errs
        $errs.Count | Should -Be 0
        ($all.Name | Sort-Object) | Should -Be @('c1', 'ca', 's1')
        { Get-EtcdCertificate -LiteralPath $crl.Path -ErrorAction Stop } | Should -Throw
    }

    It 'fills the columns Format-Table Hosts, Usages names, as the table view shows them' {
        $s1 = Get-EtcdCertificate (Join-Path $dir 's1.pem')
        $s1.Hosts | Should -Be @('localhost')
        $s1.Usages | Should -Contain 'server auth'
        ($s1 | Format-Table Name, Hosts, Usages | Out-String -Width 200) | Should -Match 's1\s+\{localhost\}\s+\{server auth'
    }

    It 'shows URI and e-mail SANs in the Hosts column' {
        $uri = $ca | New-EtcdCertificate -Profile Client -CommonName svc -Hosts 'spiffe://cluster.local/ns/etcd/sa/svc' -Name svc-uri
        ($uri | Format-Table | Out-String -Width 400) | Should -Match 'uri:spiffe://cluster.local/ns/etcd/sa/svc'
    }

    It 'takes paths from Get-ChildItem by property name' {
        (Get-ChildItem $dir -Filter 's1.pem' | Get-EtcdCertificate).CommonName | Should -Be 's1'
    }

    It 'fails with <ErrorId> on <Case>' -ForEach @(
        @{ Case = 'garbage'; Content = 'hello'; ErrorId = 'NotACertificate' }
        @{ Case = 'a damaged PEM'; Content = "-----BEGIN CERTIFICATE-----`nAAAA!!!!`n-----END CERTIFICATE-----"; ErrorId = 'MalformedCertificate' }
        @{ Case = 'a CSR'; Content = 'CSR'; ErrorId = 'NotACertificate' }
    ) {
        $f = Join-Path $TestDrive "bad-$($Case -replace ' ','_').pem"
        if ($Content -eq 'CSR') { Copy-Item (Join-Path $dir 's1.csr') $f } else { Set-Content $f $Content }
        $err = Get-ThrownError { Get-EtcdCertificate -LiteralPath $f -ErrorAction Stop }
        $err.FullyQualifiedErrorId | Should -BeLike "$ErrorId,*"
        $err.TargetObject | Should -Be $f
    }
}

Describe 'Test-EtcdCertificate' -Tag Unit {
    BeforeAll {
        $dir = Join-Path $TestDrive 'check'
        $ca = New-EtcdCA -Path $dir
        $other = New-EtcdCA -Path (Join-Path $TestDrive 'other') -CommonName etcd-ca
        $config = Join-Path $TestDrive 'ca-config.json'
        Set-Content $config $configJson
        $peer = $ca | New-EtcdCertificate -Profile Peer -CommonName peer -Hosts localhost, 127.0.0.1
        $serverOnly = $ca | New-EtcdCertificate -Profile server-only -Config $config -CommonName server-only -Hosts localhost
        $foreign = $other | New-EtcdCertificate -Profile Client -CommonName foreign -Path $dir
    }

    It 'passes a good peer certificate for its hosts' {
        $r = $peer | Test-EtcdCertificate -CAPath $ca.Path -CAKeyPath $ca.KeyPath -Role Peer -Hosts localhost, 127.0.0.1
        $r.Reasons | Should -BeNullOrEmpty
        $r.Valid | Should -BeTrue
    }

    It 'returns a bool with -Quiet' {
        $peer | Test-EtcdCertificate -CAPath $ca.Path -Role Peer -Quiet | Should -BeTrue
        $peer | Test-EtcdCertificate -CAPath $ca.Path -Hosts 10.1.2.3 -Quiet | Should -BeFalse
    }

    It 'explains <Case>' -ForEach @(
        @{ Case = 'a server certificate without client auth'; Cert = 'serverOnly'; Params = @{ Role = 'Server' }; Pattern = "lacks the 'client auth'.*gateway" }
        @{ Case = 'a missing IP SAN'; Cert = 'peer'; Params = @{ Hosts = '10.0.0.5' }; Pattern = 'does not cover the IP address 10.0.0.5' }
        @{ Case = 'a certificate from another CA with the same name'; Cert = 'foreign'; Params = @{}; Pattern = 'signature does not verify' }
        @{ Case = 'a CA used as a leaf'; Cert = 'ca'; Params = @{ Role = 'Server' }; Pattern = 'is a CA certificate' }
        @{ Case = 'a certificate checked after it expires'; Cert = 'peer'; Params = @{ At = [DateTime]::UtcNow.AddYears(6) }; Pattern = 'expired' }
        @{ Case = 'a certificate checked before it starts'; Cert = 'peer'; Params = @{ At = [DateTime]::UtcNow.AddDays(-1) }; Pattern = 'not valid yet' }
    ) {
        $c = Get-Variable $Cert -ValueOnly
        $r = Test-EtcdCertificate -Path $c.Path -CAPath $ca.Path @Params
        $r.Valid | Should -BeFalse
        $r.Reasons -join "`n" | Should -Match $Pattern
    }

    It 'explains a key that belongs to another certificate' {
        $r = Test-EtcdCertificate -Path $peer.Path -KeyPath $serverOnly.KeyPath
        $r.Reasons | Should -Match 'does not belong'
    }

    It 'explains an encrypted key' {
        $enc = Join-Path $TestDrive 'peer-enc-key.pem'
        & openssl pkey -in $peer.KeyPath -aes256 -passout pass:secret -out $enc 2>&1 | Out-Null
        (Test-EtcdCertificate -Path $peer.Path -KeyPath $enc).Reasons | Should -Match 'encrypted'
    }

    It 'reads every key form openssl writes (PKCS#1, SEC1 after EC PARAMETERS, PKCS#8), and names what it cannot use' {
        $forms = @{
            'pkcs1-rsa' = { param($k) & openssl genrsa -traditional -out $k 2048 2>&1 }
            'sec1-ec'   = { param($k) & openssl ecparam -genkey -name prime256v1 -out $k 2>&1 }
            'pkcs8-rsa' = { param($k) & openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $k 2>&1 }
            'pkcs8-ec'  = { param($k) & openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out $k 2>&1 }
        }
        foreach ($name in $forms.Keys) {
            $k = Join-Path $TestDrive "$name-key.pem"; $c = Join-Path $TestDrive "$name.pem"
            $null = & $forms[$name] $k
            & openssl req -x509 -key $k -out $c -subj "/CN=$name" -days 1 2>&1 | Out-Null
            $r = Test-EtcdCertificate -Path $c -KeyPath $k
            $r.Reasons | Should -BeNullOrEmpty -Because "$name should be read and match its certificate"
            # And a key of another certificate is told apart.
            (Test-EtcdCertificate -Path $c -KeyPath $peer.KeyPath).Reasons | Should -Match 'does not belong'
        }
        (Get-Content (Join-Path $TestDrive 'sec1-ec-key.pem') -Raw) | Should -Match 'BEGIN EC PARAMETERS'

        $ed = Join-Path $TestDrive 'ed-key.pem'
        & openssl genpkey -algorithm ed25519 -out $ed 2>&1 | Out-Null
        (Test-EtcdCertificate -Path $peer.Path -KeyPath $ed).Reasons | Should -Match 'neither RSA nor ECDSA'
        $bad = Join-Path $TestDrive 'bad-key.pem'
        Set-Content $bad "-----BEGIN PRIVATE KEY-----`nAAAA`n-----END PRIVATE KEY-----"
        (Test-EtcdCertificate -Path $peer.Path -KeyPath $bad).Reasons | Should -Match 'cannot be read'
    }

    It 'explains an IP address that was issued as a DNS name' {
        $f = Join-Path $TestDrive 'ipdns.pem'
        $k = Join-Path $TestDrive 'ipdns-key.pem'
        & openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $k -out $f -subj '/CN=ipdns' -addext 'subjectAltName=DNS:127.0.0.1' -days 1 2>&1 | Out-Null
        (Test-EtcdCertificate -Path $f -Hosts 127.0.0.1).Reasons | Should -Match 'as a DNS name'
    }

    It 'explains a CA key that does not match the CA' {
        (Test-EtcdCertificate -Path $peer.Path -CAPath $ca.Path -CAKeyPath $other.KeyPath).Reasons | Should -Match 'CA key .* does not belong'
    }
}

Describe 'Interoperability with cfssl and openssl' -Tag Integration {
    BeforeAll {
        $dir = Join-Path $TestDrive 'cfssl'
        New-Item -ItemType Directory $dir | Out-Null
        Push-Location $dir
        try {
            '{"CN":"cfssl-ca","key":{"algo":"ecdsa","size":256},"names":[{"O":"cfssl"}]}' | Set-Content ca-csr.json
            Set-Content ca-config.json $configJson
            '{"CN":"cfssl-node","hosts":["localhost","127.0.0.1"],"key":{"algo":"rsa","size":2048}}' | Set-Content node-csr.json
            cfssl gencert -initca ca-csr.json 2>$null | cfssljson -bare cfssl-ca
            cfssl gencert -ca cfssl-ca.pem -ca-key cfssl-ca-key.pem -config ca-config.json -profile etcd-node node-csr.json 2>$null | cfssljson -bare cfssl-node
        }
        finally { Pop-Location }
        $ours = New-EtcdCA -Path (Join-Path $TestDrive 'ours') -KeyAlgorithm RSA
    }

    It 'reads cfssl certificates correctly' {
        $n = Get-EtcdCertificate (Join-Path $dir 'cfssl-node.pem')
        $n.CommonName | Should -Be 'cfssl-node'
        $n.DnsNames | Should -Be @('localhost')
        $n.IPAddresses | Should -Be @('127.0.0.1')
        $n.ExtendedKeyUsages | Should -Be @('server auth', 'client auth')
        $n.KeyPath | Should -Be (Join-Path $dir 'cfssl-node-key.pem')
        (Get-EtcdCertificate (Join-Path $dir 'cfssl-ca.pem')).IsCA | Should -BeTrue
    }

    It 'validates a cfssl certificate and key against the cfssl CA' {
        $r = Test-EtcdCertificate (Join-Path $dir 'cfssl-node.pem') -CAPath (Join-Path $dir 'cfssl-ca.pem') -CAKeyPath (Join-Path $dir 'cfssl-ca-key.pem') -Role Peer -Hosts localhost, 127.0.0.1
        $r.Reasons | Should -BeNullOrEmpty
    }

    It 'issues from a cfssl-made CA' {
        $c = New-EtcdCertificate -Profile Server -CACertPath (Join-Path $dir 'cfssl-ca.pem') -CAKeyPath (Join-Path $dir 'cfssl-ca-key.pem') -CommonName ours-from-cfssl -Hosts localhost
        & openssl verify -CAfile (Join-Path $dir 'cfssl-ca.pem') $c.Path | Should -Match ': OK$'
    }

    It 'lets cfssl sign with our CA and key (our key formats are what Go reads)' {
        Push-Location $dir
        try { cfssl gencert -ca $ours.Path -ca-key $ours.KeyPath -config ca-config.json -profile etcd-node node-csr.json 2>$null | cfssljson -bare by-cfssl }
        finally { Pop-Location }
        (Test-EtcdCertificate (Join-Path $dir 'by-cfssl.pem') -CAPath $ours.Path -Role Server -Hosts localhost).Reasons | Should -BeNullOrEmpty
    }
}

Describe 'A real etcd member and our certificates' -Tag Integration {
    BeforeAll {
        $dir = Join-Path $TestDrive 'etcd-pki'
        $ca = New-EtcdCA -Path $dir
        $config = Join-Path $TestDrive 'ca-config.json'
        Set-Content $config $configJson
        $server = $ca | New-EtcdCertificate -Profile Server -CommonName etcd-server -Hosts localhost, 127.0.0.1
        $client = $ca | New-EtcdCertificate -Profile Client -CommonName root
        $notClient = $ca | New-EtcdCertificate -Profile server-only -Config $config -CommonName not-a-client -Hosts localhost
        $etcd = Start-RawEtcd -Server $server -CA $ca -DataDir (Join-Path $TestDrive 'raw.etcd')
        $tls = @('--cacert', $ca.Path)
        Wait-Until -Timeout '00:00:30' -Because 'etcd to serve TLS' {
            (Invoke-Etcdctl (@('--endpoints', $etcd.Url, '--cert', $client.Path, '--key', $client.KeyPath, '--dial-timeout', '1s', 'endpoint', 'health') + $tls)).ExitCode -eq 0
        }
    }
    AfterAll { Stop-TestProcess $etcd.Process }

    It 'accepts our client certificate: put and get round-trip' {
        $base = @('--endpoints', $etcd.Url, '--cert', $client.Path, '--key', $client.KeyPath) + $tls
        (Invoke-Etcdctl ($base + @('put', 'k', 'v'))).ExitCode | Should -Be 0
        (Invoke-Etcdctl ($base + @('get', 'k', '--print-value-only'))).Output | Should -Be 'v'
    }

    It 'rejects a client certificate without the client auth usage' {
        $r = Invoke-Etcdctl (@('--endpoints', $etcd.Url, '--cert', $notClient.Path, '--key', $notClient.KeyPath, '--dial-timeout', '2s', '--command-timeout', '3s', 'get', 'k') + $tls)
        $r.ExitCode | Should -Not -Be 0
        # Our own check says the same thing before etcd has to.
        (Test-EtcdCertificate $notClient.Path -Role Client).Reasons | Should -Match "lacks the 'client auth'"
    }

    It 'rejects a client without any certificate' {
        $r = Invoke-Etcdctl (@('--endpoints', $etcd.Url, '--dial-timeout', '2s', '--command-timeout', '3s', 'get', 'k') + $tls)
        $r.ExitCode | Should -Not -Be 0
    }
}

Describe 'Durations' -Tag Unit {
    It 'accepts <Text> as <Hours> hours' -ForEach @(
        @{ Text = '8760h'; Hours = 8760 }
        @{ Text = '1h30m'; Hours = 1.5 }
        @{ Text = '90m'; Hours = 1.5 }
        @{ Text = '2.00:00:00'; Hours = 48 }
    ) {
        $c = New-EtcdCA -Path (Join-Path $TestDrive "d-$($Text -replace '[:.]','_')") -Validity $Text
        [math]::Round(($c.NotAfter - $c.NotBefore - [TimeSpan]::FromMinutes(5)).TotalHours, 2) | Should -Be $Hours
    }

    It 'tells a user who typed an unquoted 1s to quote it' {
        $err = Get-ThrownError { New-EtcdCA -Path (Join-Path $TestDrive 'unquoted') -Validity 1s }
        $err.Exception.Message | Should -Match "Quote the duration"
        Join-Path $TestDrive 'unquoted' | Should -Not -Exist
    }
}
