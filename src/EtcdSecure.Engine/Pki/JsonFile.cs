using System;
using System.IO;
using System.Text.Json;

namespace EtcdSecure.Engine.Pki;

/// <summary>Reads the cfssl JSON files (CSR JSON, ca-config.json) with cfssl's leniency and this module's errors.</summary>
internal static class JsonFile
{
    public static JsonDocument Parse(string path, string what, string notReadableId, string invalidId)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new EtcdSecureException(notReadableId, ErrorKind.ObjectNotFound, $"Cannot read the {what} '{path}': {ex.Message}", path, ex);
        }

        try
        {
            return JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new EtcdSecureException(invalidId, ErrorKind.InvalidData, $"'{path}' is not valid JSON: {ex.Message}", path, ex);
        }
    }
}
