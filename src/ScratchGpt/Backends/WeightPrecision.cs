namespace ScratchGpt.Backends;

/// <summary>How a backend stores weight matrices.</summary>
public enum WeightPrecision
{
    Float32,
    Float16,
    BFloat16,
    /// <summary>llama.cpp's Q8_0: blocks of 32 signed bytes with one float16 scale (see Loading/Q8_0.cs). The CPU
    /// backend keeps and reads them as such; the reference and ILGPU backends hold the dequantized float32
    /// values.</summary>
    Q8_0,
    /// <summary>llama.cpp's Q4_0: blocks of 32 four-bit codes with one float16 scale (see Loading/Q4_0.cs); held
    /// as Q8_0 is.</summary>
    Q4_0,
}
