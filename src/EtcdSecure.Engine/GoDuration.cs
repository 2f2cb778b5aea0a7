using System;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;

namespace EtcdSecure.Engine;

/// <summary>Go's time.ParseDuration format ("8760h", "1h30m", "90s"), which cfssl uses for every expiry.</summary>
public static partial class GoDuration
{
    public static bool TryParse(string? text, out TimeSpan value) => TryParse(text, allowDays: false, out value);

    /// <summary>As Go parses durations; with <paramref name="allowDays"/> also "d" for 24 hours, which Go lacks.</summary>
    public static bool TryParse(string? text, bool allowDays, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        if (text == "0") return true;
        Match m = Pattern().Match(text);
        if (!m.Success) return false;
        if (!allowDays && m.Groups["part"].Captures.Any(c => c.Value.EndsWith('d'))) return false;
        double ticks = 0;
        foreach (Capture c in m.Groups["part"].Captures)
        {
            Match p = Part().Match(c.Value);
            double n = double.Parse(p.Groups[1].Value, CultureInfo.InvariantCulture);
            ticks += p.Groups[2].Value switch
            {
                "d" => n * TimeSpan.TicksPerDay,
                "h" => n * TimeSpan.TicksPerHour,
                "m" => n * TimeSpan.TicksPerMinute,
                "s" => n * TimeSpan.TicksPerSecond,
                "ms" => n * TimeSpan.TicksPerMillisecond,
                "us" or "µs" => n * 10,
                "ns" => n / 100,
                _ => double.NaN,
            };
        }

        if (double.IsNaN(ticks) || ticks > TimeSpan.MaxValue.Ticks) return false;
        value = TimeSpan.FromTicks((long)ticks);
        return true;
    }

    public static TimeSpan Parse(string text, string what) =>
        TryParse(text, out TimeSpan v)
            ? v
            : throw new EtcdSecureException("InvalidDuration", ErrorKind.InvalidArgument,
                $"{what} '{text}' is not a duration. Use Go's form as cfssl does (\"8760h\", \"43800h\", \"1h30m\") or a TimeSpan.", text);

    public static string Format(TimeSpan t) =>
        t.Ticks % TimeSpan.TicksPerHour == 0 ? $"{(long)t.TotalHours}h" : $"{(long)t.TotalSeconds}s";

    [GeneratedRegex(@"^(?<part>\d+(?:\.\d+)?(?:d|h|ms|m|s|us|µs|ns))+$")]
    private static partial Regex Pattern();

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)(d|h|ms|m|s|us|µs|ns)$")]
    private static partial Regex Part();
}
