namespace ScratchGpt.Decoding.Processors;

/// <summary>
/// scores / T: T &lt; 1 sharpens the distribution towards the likeliest tokens, T &gt; 1 flattens it.
/// A float32 division, as PyTorch does it.
/// </summary>
public sealed class TemperatureLogitsWarper : ILogitsProcessor
{
    public float Temperature { get; }

    public TemperatureLogitsWarper(float temperature)
    {
        if (!(temperature > 0))
            throw new GenerationConfigException($"temperature must be a float > 0, got {temperature}");
        Temperature = temperature;
    }

    public void Process(ReadOnlySpan<int> inputIds, Span<float> scores)
    {
        for (int i = 0; i < scores.Length; i++) scores[i] /= Temperature;
    }
}
