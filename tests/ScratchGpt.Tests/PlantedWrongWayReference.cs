// Two types the layer check is tried on: one in the Decoding layer that reaches into Loading (a breach the
// rule forbids: decoding must not read files), one that stays inside its layer.
namespace ScratchGpt.Decoding.Planted;

public static class ReadsAFile
{
    public static string Where() => Loading.ModelFolder.DefaultModelDirectory;
}

public static class Clean
{
    public static GenerationConfig Greedy() => new() { MaxNewTokens = 3 };
}
