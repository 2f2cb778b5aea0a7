#requires -Version 7.4
<#
.SYNOPSIS
    What one pair of .NET SslStreams costs once idle (one server side, one client side, handshake and one round
    trip done, a zero-byte read pending on each as a relay's pumps leave them): the floor under the memory per
    connection of any SslStream relay, which holds two TLS sides per connection.
.DESCRIPTION
    With -EnginePath, each side is also given OpenSSL's release-buffers mode the way the proxy does
    (EtcdSecure.Engine.Relay.OpenSslBuffers). Run in a fresh process; prints one JSON line.
#>
param([int] $Pairs = 1000, [string] $EnginePath)
if ($EnginePath) { Add-Type -Path $EnginePath }
$listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
$listener.Start($Pairs)
$key = [Security.Cryptography.ECDsa]::Create()
$request = [Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=localhost', $key, 'SHA256')
$cert = $request.CreateSelfSigned([DateTimeOffset]::Now.AddDays(-1), [DateTimeOffset]::Now.AddDays(1))
$cert = [Security.Cryptography.X509Certificates.X509Certificate2]::new($cert.Export('Pkcs12'))
$context = [Net.Security.SslStreamCertificateContext]::Create($cert, $null)
function Get-Rss { [long]((Get-Content "/proc/$PID/status" | Select-String '^VmRSS:\s+(\d+)').Matches[0].Groups[1].Value) * 1KB }
$keep = [Collections.Generic.List[object]]::new()
$one = [byte[]]::new(1); $into = [byte[]]::new(16)
$released = 0
function Add-Pair {
    $tcp = [Net.Sockets.TcpClient]::new()
    $connect = $tcp.ConnectAsync('127.0.0.1', $listener.LocalEndpoint.Port)
    $accepted = $listener.AcceptTcpClient()
    $connect.Wait()
    $server = [Net.Security.SslStream]::new($accepted.GetStream())
    $client = [Net.Security.SslStream]::new($tcp.GetStream(), $false, { $true })
    $options = [Net.Security.SslServerAuthenticationOptions]::new(); $options.ServerCertificateContext = $context
    $serverDone = $server.AuthenticateAsServerAsync($options)
    $client.AuthenticateAsClient('localhost')
    $serverDone.Wait()
    if ($EnginePath) {
        foreach ($s in $server, $client) { if ([EtcdSecure.Engine.Relay.OpenSslBuffers]::TryRelease($s)) { $script:released++ } }
    }
    $client.Write($one); $null = $server.Read($into, 0, $into.Length)
    $server.Write($one); $null = $client.Read($into, 0, $into.Length)
    $keep.Add($server); $keep.Add($client)
    foreach ($s in $server, $client) { $keep.Add($s.ReadAsync([Memory[byte]]::Empty, [Threading.CancellationToken]::None).AsTask()) }
}
# The first pairs pay one-time costs (TLS contexts, JIT); they are not what a connection costs.
$warmUp = 20
for ($i = 0; $i -lt $warmUp; $i++) { Add-Pair }
[GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
$managed0 = [GC]::GetTotalMemory($true); $rss0 = Get-Rss
for ($i = 0; $i -lt $Pairs; $i++) { Add-Pair }
[GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
$managed1 = [GC]::GetTotalMemory($true); $rss1 = Get-Rss
[pscustomobject]@{
    Pairs = $Pairs
    BuffersReleased = $EnginePath -and $released -eq 2 * ($Pairs + $warmUp)
    RssKiBPerPair = ($rss1 - $rss0) / 1KB / $Pairs
    ManagedKiBPerPair = ($managed1 - $managed0) / 1KB / $Pairs
} | ConvertTo-Json -Compress
