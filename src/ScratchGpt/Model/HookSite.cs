using ScratchGpt.Backends;

namespace ScratchGpt.Model;

/// <summary>
/// Where a hooked forward pass meets its <see cref="ForwardHooks"/>: copies a device tensor to the host, fires
/// the hooks, and writes the values back when the pass continues from that tensor.
/// </summary>
internal sealed class HookSite(IBackend backend, ForwardHooks hooks, int T, int nHead, int headDim)
{
    private readonly int _e = nHead * headDim;

    /// <summary>A device tensor of <paramref name="shape"/>; returns its values (after the hooks) for derived
    /// views.</summary>
    public float[]? Device(string name, IDeviceBuffer buffer, int[] shape, bool need = false)
    {
        if (!hooks.Wants(name) && !need) return null;
        var values = new float[shape.Aggregate(1, (a, b) => a * b)];
        backend.Download(buffer, 0, values);
        if (!hooks.Wants(name)) return values;
        hooks.Fire(new Activation(name, shape, values));
        using var written = backend.Upload(values);
        backend.Copy(written, 0, buffer, 0, values.Length);
        return values;
    }

    /// <summary>A value computed for reading only.</summary>
    public void Host(string name, int[] shape, Func<float[]> values)
    {
        if (hooks.Wants(name)) hooks.Fire(new Activation(name, shape, values()));
    }

    public bool Wants(string name) => hooks.Wants(name);

    /// <summary>hook_q, hook_k, hook_v as [1, T, H, D] views of qkv [T, 3E]; written back into qkv.
    /// Returns q and k.</summary>
    public (float[] Q, float[] K) QueryKeyValue(string prefix, IDeviceBuffer qkv, bool needQk)
    {
        string[] names = [prefix + "hook_q", prefix + "hook_k", prefix + "hook_v"];
        var parts = new float[3][];
        if (!names.Any(hooks.Wants) && !needQk) return ([], []);
        var all = new float[T * 3 * _e];
        backend.Download(qkv, 0, all);
        for (int p = 0; p < 3; p++)
        {
            parts[p] = new float[T * _e];
            for (int t = 0; t < T; t++) Array.Copy(all, t * 3 * _e + p * _e, parts[p], t * _e, _e);
            if (hooks.Wants(names[p])) hooks.Fire(new Activation(names[p], [1, T, nHead, headDim], parts[p]));
            for (int t = 0; t < T; t++) Array.Copy(parts[p], t * _e, all, t * 3 * _e + p * _e, _e);
        }
        if (names.Any(hooks.Wants))
        {
            using var written = backend.Upload(all);
            backend.Copy(written, 0, qkv, 0, all.Length);
        }
        return (parts[0], parts[1]);
    }

    /// <summary>scores[h, i, j] = q_i·k_j / √D for j ≤ i, −∞ above the diagonal (causal).</summary>
    public float[] Scores(float[] q, float[] k)
    {
        var s = new float[nHead * T * T];
        float scale = 1f / MathF.Sqrt(headDim);
        for (int h = 0; h < nHead; h++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                {
                    float dot = 0;
                    for (int d = 0; d < headDim; d++) dot += q[i * _e + h * headDim + d] * k[j * _e + h * headDim + d];
                    s[(h * T + i) * T + j] = j <= i ? dot * scale : float.NegativeInfinity;
                }
        return s;
    }

    /// <summary>(x − mean) / √(var + ε) per row, the layer norm before its gain and bias.</summary>
    public float[] Normalized(float[] x, float eps)
    {
        var y = new float[x.Length];
        for (int t = 0; t < T; t++)
        {
            var row = x.AsSpan(t * _e, _e);
            double mean = 0, var = 0;
            foreach (float v in row) mean += v;
            mean /= _e;
            foreach (float v in row) var += (v - mean) * (v - mean);
            double rstd = 1 / Math.Sqrt(var / _e + eps);
            for (int i = 0; i < _e; i++) y[t * _e + i] = (float)((row[i] - mean) * rstd);
        }
        return y;
    }
}
