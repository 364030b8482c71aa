namespace ScratchGpt.Training;

/// <summary>
/// Adam with decoupled weight decay (Loshchilov &amp; Hutter), as torch.optim.AdamW:
///
///     θ ← θ − lr·λ·θ                       (decay, matrices only: see <see cref="ParameterTensor.Decays"/>)
///     m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
///     θ ← θ − lr · m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
/// </summary>
public sealed class AdamW
{
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float Epsilon { get; init; } = 1e-8f;
    public float WeightDecay { get; }

    /// <summary>First and second moments, laid out like the parameters.</summary>
    public float[] M { get; }
    public float[] V { get; }
    public long Step { get; set; }

    private readonly Gpt2Parameters _parameters;

    public AdamW(Gpt2Parameters parameters, float weightDecay)
    {
        _parameters = parameters;
        WeightDecay = weightDecay;
        M = new float[parameters.Count];
        V = new float[parameters.Count];
    }

    public void Update(float[] grads, float learningRate)
    {
        Step++;
        float c1 = 1f - MathF.Pow(Beta1, Step), c2 = 1f - MathF.Pow(Beta2, Step);
        var values = _parameters.Values;
        Parallel.ForEach(_parameters.Tensors, t =>
        {
            float decay = t.Decays ? 1f - learningRate * WeightDecay : 1f;
            for (int i = t.Offset; i < t.Offset + t.Length; i++)
            {
                float g = grads[i];
                M[i] = Beta1 * M[i] + (1 - Beta1) * g;
                V[i] = Beta2 * V[i] + (1 - Beta2) * g * g;
                values[i] = values[i] * decay - learningRate * (M[i] / c1) / (MathF.Sqrt(V[i] / c2) + Epsilon);
            }
        });
    }

    /// <summary>Scales the gradients so their global L2 norm is at most <paramref name="maxNorm"/>;
    /// returns the norm before clipping (what the progress line shows).</summary>
    public static double ClipGradientNorm(float[] grads, double maxNorm)
    {
        double sum = 0;
        foreach (float g in grads) sum += (double)g * g;
        double norm = Math.Sqrt(sum);
        if (maxNorm > 0 && norm > maxNorm)
            System.Numerics.Tensors.TensorPrimitives.Multiply(grads, (float)(maxNorm / (norm + 1e-6)), grads);
        return norm;
    }
}
