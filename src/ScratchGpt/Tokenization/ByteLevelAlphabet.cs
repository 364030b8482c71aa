namespace ScratchGpt.Tokenization;

/// <summary>
/// GPT-2's reversible map from the 256 byte values to printable Unicode characters, so that BPE can
/// work on strings without whitespace or control characters. Printable Latin-1 bytes map to
/// themselves; the other 68 bytes go to U+0100 upwards in byte order: space (0x20) becomes 'Ġ' (U+0120),
/// newline (0x0A) becomes 'Ċ' (U+010A).
/// </summary>
public static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    private static char[] Build()
    {
        static bool Printable(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++) map[b] = Printable(b) ? (char)b : (char)next++;
        return map;
    }

    public static bool TryGetByte(char c, out byte b) => CharToByte.TryGetValue(c, out b);
}
