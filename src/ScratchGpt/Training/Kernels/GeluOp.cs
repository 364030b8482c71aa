namespace ScratchGpt.Training.Kernels;

/// <summary>
/// GPT-2's GELU (tanh approximation) and its derivative. With u = √(2/π)(x + 0.044715 x³):
///
///     gelu(x)  = ½ x (1 + tanh u)
///     gelu'(x) = ½ (1 + tanh u) + ½ x (1 − tanh² u) · √(2/π)(1 + 3·0.044715 x²)
/// </summary>
public static class GeluOp
{
    private const float Sqrt2OverPi = 0.7978845608028654f;

    public static void Forward(ReadOnlyMemory<float> x, Memory<float> y) =>
        Chunks(x.Length, (a, b) =>
        {
            var xs = x.Span; var ys = y.Span;
            for (int i = a; i < b; i++) ys[i] = Backends.Cpu.CpuKernels.Gelu(xs[i]);
        });

    /// <summary>dx = dy ⊙ gelu'(x), written over dy's buffer when they are the same.</summary>
    public static void Backward(ReadOnlyMemory<float> x, ReadOnlyMemory<float> dy, Memory<float> dx) =>
        Chunks(x.Length, (a, b) =>
        {
            var xs = x.Span; var dys = dy.Span; var dxs = dx.Span;
            for (int i = a; i < b; i++) dxs[i] = dys[i] * Derivative(xs[i]);
        });

    public static float Derivative(float x)
    {
        float u = Sqrt2OverPi * (x + 0.044715f * x * x * x);
        float t = MathF.Tanh(u);
        return 0.5f * (1f + t) + 0.5f * x * (1f - t * t) * Sqrt2OverPi * (1f + 3f * 0.044715f * x * x);
    }

    private static void Chunks(int count, Action<int, int> body)
    {
        int chunks = count < 65_536 ? 1 : Environment.ProcessorCount * 4;
        Parallel.For(0, chunks, c => body((int)((long)count * c / chunks), (int)((long)count * (c + 1) / chunks)));
    }
}
