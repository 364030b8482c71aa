namespace ScratchGpt.Training;

/// <summary>
/// The masks of GPT-2's three dropouts for one training step (inverted dropout: each entry is 0 with
/// probability p, else 1/(1 − p), so the expected activation is unchanged):
/// <see cref="Embd"/> on the embeddings [N, E]; per block <see cref="Attn"/> on the attention weights
/// [B, H, T, T] and <see cref="AttnResid"/>, <see cref="MlpResid"/> on the two residual branches [N, E].
/// Drawn from one seeded generator in a fixed order, so the CPU and the GPU training paths, and a
/// resumed run, drop exactly the same entries.
/// </summary>
public sealed class DropoutMasks
{
    public float[] Embd { get; }
    public float[][] Attn { get; }
    public float[][] AttnResid { get; }
    public float[][] MlpResid { get; }

    public DropoutMasks(int layers, int batch, int seq, int nHead, int nEmbd)
    {
        int rowsTimesE = batch * seq * nEmbd, scores = batch * nHead * seq * seq;
        float[][] PerLayer(int size) => Enumerable.Range(0, layers).Select(_ => new float[size]).ToArray();
        Embd = new float[rowsTimesE];
        Attn = PerLayer(scores);
        AttnResid = PerLayer(rowsTimesE);
        MlpResid = PerLayer(rowsTimesE);
    }

    /// <summary>Fills every mask for a step; <paramref name="n"/> and <paramref name="scores"/> are the
    /// entries in use (N·E and B·H·T·T of this batch).</summary>
    public void Draw(int seed, (float Embd, float Attn, float Resid) p, int n, int scores)
    {
        var rng = new Random(seed);
        void Fill(float[] mask, int count, float prob)
        {
            float keep = 1f / (1f - prob);
            for (int i = 0; i < count; i++) mask[i] = prob > 0 && rng.NextSingle() < prob ? 0f : (prob > 0 ? keep : 1f);
        }
        Fill(Embd, n, p.Embd);
        for (int l = 0; l < Attn.Length; l++)
        {
            Fill(Attn[l], scores, p.Attn);
            Fill(AttnResid[l], n, p.Resid);
            Fill(MlpResid[l], n, p.Resid);
        }
    }
}
