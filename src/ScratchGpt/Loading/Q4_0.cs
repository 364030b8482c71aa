namespace ScratchGpt.Loading;

/// <summary>
/// llama.cpp's Q4_0: weights in blocks of 32, each stored as one float16 scale and 32 four-bit codes, 18 bytes for
/// what float32 holds in 128. The scale is d = m / −8, where m is the block's value of largest magnitude (with its
/// sign), and each code is q = min(15, ⌊x / d + 8.5⌋), so x ≈ d · (q − 8): m itself is code 0 exactly, and the grid
/// of 16 steps spans −8d … 7d. Two codes share a byte: byte j of a block holds value j in its low four bits and
/// value j + 16 in its high four (the GGUF layout, which the CPU backend keeps as it is).
/// </summary>
public static class Q4_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 2 + BlockSize / 2;

    /// <summary>Quantizes <paramref name="x"/> (a multiple of 32 values) into 16 bytes of codes per block
    /// (<paramref name="codes"/>, x.Length / 2) and one d per block (<paramref name="d"/>, x.Length / 32), exactly as
    /// llama.cpp's reference quantizer does.</summary>
    public static void Split(ReadOnlySpan<float> x, Span<byte> codes, Span<Half> d)
    {
        if (x.Length % BlockSize != 0)
            throw new ArgumentException($"Q4_0 needs a multiple of {BlockSize} values, got {x.Length}");
        for (int b = 0; b < x.Length / BlockSize; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            float amax = 0, max = 0;
            foreach (float f in v)
                if (amax < Math.Abs(f)) { amax = Math.Abs(f); max = f; }
            float scale = max / -8, inverse = scale != 0 ? 1f / scale : 0f;
            d[b] = (Half)scale;
            for (int j = 0; j < BlockSize / 2; j++)
                codes[b * BlockSize / 2 + j] = (byte)(Code(v[j] * inverse) | Code(v[j + BlockSize / 2] * inverse) << 4);
        }
    }

    // ⌊y + 8.5⌋ as C's (int8_t) cast computes it (y + 8.5 ≥ 0 here, so truncation is the floor), at most 15
    private static int Code(float y) => Math.Min(15, (int)(sbyte)(int)(y + 8.5f));

    /// <summary>x[i] = d[i / 32] · (q[i] − 8), with the codes as <see cref="Split"/> packs them.</summary>
    public static void Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<Half> d, Span<float> x)
    {
        for (int b = 0; b < d.Length; b++)
            DequantizeBlock(codes.Slice(b * BlockSize / 2, BlockSize / 2), (float)d[b], x.Slice(b * BlockSize));
    }

    /// <summary>One block: its 16 bytes of codes and its scale d into 32 values d · (q − 8).</summary>
    public static void DequantizeBlock(ReadOnlySpan<byte> codes, float d, Span<float> x)
    {
        for (int j = 0; j < BlockSize / 2; j++)
        {
            x[j] = d * ((codes[j] & 0x0F) - 8);
            x[j + BlockSize / 2] = d * ((codes[j] >> 4) - 8);
        }
    }

    /// <summary>The values as Q4_0 represents them: d · (q − 8) of their quantization.</summary>
    public static float[] RoundTrip(ReadOnlySpan<float> x)
    {
        var codes = new byte[x.Length / 2];
        var d = new Half[x.Length / BlockSize];
        Split(x, codes, d);
        var y = new float[x.Length];
        Dequantize(codes, d, y);
        return y;
    }

    /// <summary>d · (q − 8) from the block layout.</summary>
    public static float[] Dequantize(ReadOnlySpan<byte> blocks)
    {
        if (blocks.Length % BlockBytes != 0)
            throw new ArgumentException($"Q4_0 data is whole blocks of {BlockBytes} bytes, got {blocks.Length}");
        int n = blocks.Length / BlockBytes;
        var codes = new byte[n * BlockSize / 2];
        var d = new Half[n];
        for (int b = 0; b < n; b++)
        {
            var block = blocks.Slice(b * BlockBytes, BlockBytes);
            d[b] = BitConverter.ToHalf(block);
            block[2..].CopyTo(codes.AsSpan(b * BlockSize / 2));
        }
        var x = new float[n * BlockSize];
        Dequantize(codes, d, x);
        return x;
    }

    /// <summary>llama.cpp's block layout (GGUF): per block its float16 d, then its 16 bytes of codes.</summary>
    public static byte[] Quantize(ReadOnlySpan<float> x)
    {
        var codes = new byte[x.Length / 2];
        var d = new Half[x.Length / BlockSize];
        Split(x, codes, d);
        var blocks = new byte[d.Length * BlockBytes];
        for (int b = 0; b < d.Length; b++)
        {
            var block = blocks.AsSpan(b * BlockBytes, BlockBytes);
            BitConverter.TryWriteBytes(block, d[b]);
            codes.AsSpan(b * BlockSize / 2, BlockSize / 2).CopyTo(block[2..]);
        }
        return blocks;
    }
}
