using System;
using System.Globalization;

namespace EtcdSecure.Engine;

/// <summary>
/// How a user writes a duration to any cmdlet: Go's form ("30s", "8760h", "1h30m"), "30d" for days, or a TimeSpan
/// with its colons ("365.00:00:00", "00:00:30"). A number without a unit is never a duration: TimeSpan's own parser
/// would read "30" as 30 days, and a TimeSpan parameter would read the number 30 as 30 ticks.
/// </summary>
public static class Duration
{
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        if (GoDuration.TryParse(text, allowDays: true, out value)) return true;
        return text.Contains(':', StringComparison.Ordinal) && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value);
    }

    public static string NotADuration(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
            ? ArrivedAsNumber(text)
            : $"'{text}' is not a duration. Use Go's form as cfssl and etcd do (\"30s\", \"90m\", \"8760h\"), days as \"30d\", or a TimeSpan (\"365.00:00:00\").";

    public static string ArrivedAsNumber(object number) =>
        $"'{number}' arrived as a number, without a unit: PowerShell reads suffixes such as 's', 'd' or 'y' as number types, and a number alone is never taken as seconds, days or ticks. Quote the duration: '30s', '30d', '8760h'.";
}
