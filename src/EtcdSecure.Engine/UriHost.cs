using System;

namespace EtcdSecure.Engine;

public static class UriHost
{
    /// <summary>
    /// The host of a URL as sockets, TLS name checks and IP parsing take it: IDN-encoded, and an IPv6 address
    /// without the brackets the URL syntax puts around it.
    /// </summary>
    public static string DialHost(this Uri url) => url.IdnHost.Trim('[', ']');
}
