using System.Text.Json;
using System.Text.Json.Nodes;

namespace ScratchGpt.Loading;

/// <summary>A small JSON settings file (config.json, generation_config.json): one object, or one-line
/// <see cref="ModelLoadException"/>s naming the file.</summary>
public static class JsonObjectFile
{
    public static JsonObject Read(string path)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{path}: not valid JSON: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        return root as JsonObject ?? throw new ModelLoadException($"{path}: expected a JSON object");
    }
}
