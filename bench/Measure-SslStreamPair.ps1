#requires -Version 7.4
<#
.SYNOPSIS
    What one pair of .NET SslStreams costs once its handshake is done (one server side, one client side, idle):
    the floor under the memory per connection of any SslStream relay, which holds two TLS sides per connection.
    Run in a fresh process; prints one JSON line.
#>
param([int] $Pairs = 1000)
$listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
$listener.Start($Pairs)
$key = [Security.Cryptography.ECDsa]::Create()
$request = [Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=localhost', $key, 'SHA256')
$cert = $request.CreateSelfSigned([DateTimeOffset]::Now.AddDays(-1), [DateTimeOffset]::Now.AddDays(1))
$cert = [Security.Cryptography.X509Certificates.X509Certificate2]::new($cert.Export('Pkcs12'))
function Get-Rss { [long]((Get-Content "/proc/$PID/status" | Select-String '^VmRSS:\s+(\d+)').Matches[0].Groups[1].Value) * 1KB }
$keep = [Collections.Generic.List[object]]::new()
[GC]::Collect(); $managed0 = [GC]::GetTotalMemory($true); $rss0 = Get-Rss
for ($i = 0; $i -lt $Pairs; $i++) {
    $tcp = [Net.Sockets.TcpClient]::new()
    $connect = $tcp.ConnectAsync('127.0.0.1', $listener.LocalEndpoint.Port)
    $accepted = $listener.AcceptTcpClient()
    $connect.Wait()
    $server = [Net.Security.SslStream]::new($accepted.GetStream())
    $client = [Net.Security.SslStream]::new($tcp.GetStream(), $false, { $true })
    $serverDone = $server.AuthenticateAsServerAsync($cert)
    $client.AuthenticateAsClient('localhost')
    $serverDone.Wait()
    $keep.Add($server); $keep.Add($client)
}
[GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
$managed1 = [GC]::GetTotalMemory($true); $rss1 = Get-Rss
[pscustomobject]@{ Pairs = $Pairs; RssKiBPerPair = ($rss1 - $rss0) / 1KB / $Pairs; ManagedKiBPerPair = ($managed1 - $managed0) / 1KB / $Pairs } | ConvertTo-Json -Compress
