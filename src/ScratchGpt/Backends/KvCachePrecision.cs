namespace ScratchGpt.Backends;

/// <summary>How a backend stores the KV cache (the keys and values of every position seen so far).</summary>
public enum KvCachePrecision
{
    /// <summary>The values attention computed, as they are: the same numbers transformers keeps.</summary>
    Float32,
    /// <summary>Each key and value rounded to float16 as it is written (llama.cpp's default cache type): a decode
    /// step's attention reads half the bytes. Rounding follows <see cref="Float16CacheValues"/>.</summary>
    Float16,
}
