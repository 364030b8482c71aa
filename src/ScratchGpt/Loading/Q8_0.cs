namespace ScratchGpt.Loading;

/// <summary>
/// llama.cpp's Q8_0: weights in blocks of 32, each stored as one float16 scale d = max|x| / 127 and 32 signed
/// bytes q = round(x / d) (half away from zero), 34 bytes for what float32 holds in 128. x ≈ d · q; the error per
/// weight is at most d / 2. <see cref="Split"/> is the quantization; the GGUF block layout, the CPU backend's
/// arrays and the safetensors layout are arrangements of its q and d.
/// </summary>
public static class Q8_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 2 + BlockSize;

    /// <summary>Quantizes <paramref name="x"/> (a multiple of 32 values): one q per value, one d per block.</summary>
    public static (sbyte[] Q, Half[] D) Split(ReadOnlySpan<float> x)
    {
        var q = new sbyte[x.Length];
        var d = new Half[x.Length / BlockSize];
        Split(x, q, d);
        return (q, d);
    }

    /// <summary><see cref="Split(ReadOnlySpan{float})"/> into <paramref name="q"/> (x.Length) and
    /// <paramref name="d"/> (x.Length / 32).</summary>
    public static void Split(ReadOnlySpan<float> x, Span<sbyte> q, Span<Half> d)
    {
        if (x.Length % BlockSize != 0)
            throw new ArgumentException($"Q8_0 needs a multiple of {BlockSize} values, got {x.Length}");
        for (int b = 0; b < x.Length / BlockSize; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            float amax = 0;
            foreach (float f in v) amax = Math.Max(amax, Math.Abs(f));
            float scale = amax / 127f, inverse = scale != 0 ? 1f / scale : 0f;
            d[b] = (Half)scale;
            for (int i = 0; i < BlockSize; i++)
                q[b * BlockSize + i] = (sbyte)MathF.Round(v[i] * inverse, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>x[i] = d[i / 32] · q[i].</summary>
    public static float[] Dequantize(ReadOnlySpan<sbyte> q, ReadOnlySpan<Half> d)
    {
        var x = new float[q.Length];
        for (int i = 0; i < x.Length; i++) x[i] = (float)d[i / BlockSize] * q[i];
        return x;
    }

    /// <summary>The values as Q8_0 represents them: d · q of their quantization.</summary>
    public static float[] RoundTrip(ReadOnlySpan<float> x)
    {
        var (q, d) = Split(x);
        return Dequantize(q, d);
    }

    /// <summary>llama.cpp's block layout (GGUF): per block its float16 d, then its 32 signed bytes.</summary>
    public static byte[] Quantize(ReadOnlySpan<float> x)
    {
        var (q, d) = Split(x);
        var blocks = new byte[d.Length * BlockBytes];
        for (int b = 0; b < d.Length; b++)
        {
            var block = blocks.AsSpan(b * BlockBytes, BlockBytes);
            BitConverter.TryWriteBytes(block, d[b]);
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(q.AsSpan(b * BlockSize, BlockSize)).CopyTo(block[2..]);
        }
        return blocks;
    }

    /// <summary>d · q from the block layout.</summary>
    public static float[] Dequantize(ReadOnlySpan<byte> blocks)
    {
        if (blocks.Length % BlockBytes != 0)
            throw new ArgumentException($"Q8_0 data is whole blocks of {BlockBytes} bytes, got {blocks.Length}");
        int n = blocks.Length / BlockBytes;
        var q = new sbyte[n * BlockSize];
        var d = new Half[n];
        for (int b = 0; b < n; b++)
        {
            var block = blocks.Slice(b * BlockBytes, BlockBytes);
            d[b] = BitConverter.ToHalf(block);
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(block[2..]).CopyTo(q.AsSpan(b * BlockSize));
        }
        return Dequantize(q, d);
    }
}
