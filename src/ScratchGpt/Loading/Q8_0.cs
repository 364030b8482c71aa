namespace ScratchGpt.Loading;

/// <summary>
/// llama.cpp's Q8_0: weights in blocks of 32, each stored as one float16 scale d = max|x| / 127 and 32 signed
/// bytes q = round(x / d) (half away from zero), 34 bytes for what float32 holds in 128. x ≈ d · q; the error per
/// weight is at most d / 2.
/// </summary>
public static class Q8_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 2 + BlockSize;

    /// <summary>Quantizes <paramref name="x"/> (a multiple of 32 values) into blocks.</summary>
    public static byte[] Quantize(ReadOnlySpan<float> x)
    {
        if (x.Length % BlockSize != 0) throw new ArgumentException($"Q8_0 needs a multiple of {BlockSize} values, got {x.Length}");
        var blocks = new byte[x.Length / BlockSize * BlockBytes];
        for (int b = 0; b < x.Length / BlockSize; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            float amax = 0;
            foreach (float f in v) amax = Math.Max(amax, Math.Abs(f));
            float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
            var block = blocks.AsSpan(b * BlockBytes, BlockBytes);
            BitConverter.TryWriteBytes(block, (Half)d);
            for (int i = 0; i < BlockSize; i++) block[2 + i] = (byte)(sbyte)MathF.Round(v[i] * id, MidpointRounding.AwayFromZero);
        }
        return blocks;
    }

    /// <summary>x[i] = d · q[i], block by block.</summary>
    public static float[] Dequantize(ReadOnlySpan<byte> blocks)
    {
        if (blocks.Length % BlockBytes != 0) throw new ArgumentException($"Q8_0 data is whole blocks of {BlockBytes} bytes, got {blocks.Length}");
        var x = new float[blocks.Length / BlockBytes * BlockSize];
        for (int b = 0; b < x.Length / BlockSize; b++)
        {
            var block = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = (float)BitConverter.ToHalf(block);
            for (int i = 0; i < BlockSize; i++) x[b * BlockSize + i] = d * (sbyte)block[2 + i];
        }
        return x;
    }
}
