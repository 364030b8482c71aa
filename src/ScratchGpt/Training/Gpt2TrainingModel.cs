using ScratchGpt.Backends.Cpu;
using ScratchGpt.Loading;
using ScratchGpt.Training.Kernels;

namespace ScratchGpt.Training;

/// <summary>
/// GPT-2's forward pass over a batch of whole sequences, keeping every activation the backward pass
/// needs, and the backward pass itself (the chain rule, op by op, in reverse). Same math as
/// <see cref="Model.Gpt2Model"/>, written for training on the CPU: B sequences of T tokens, N = B·T rows.
///
///     x   = wte[ids] + wpe[0..T)                               [N, E]
///     per block:  a = ln_1(x);  qkv = a·W_attnᵀ + b             [N, 3E]
///                 y = attention(qkv);  x = x + y·W_projᵀ + b    [N, E]
///                 m = ln_2(x);  h = m·W_fcᵀ + b;  g = gelu(h)   [N, M]
///                 x = x + g·W_fcprojᵀ + b                       [N, E]
///     f = ln_f(x);  loss = cross_entropy(f · wteᵀ, targets)     (tied head)
///
/// Training with <see cref="Dropout"/> adds GPT-2's three dropouts (inverted: kept values scaled by 1/(1 − p)):
/// on the embeddings, on the attention probabilities, and on each residual branch before it is added.
/// The masks come from <see cref="DropoutSeed"/>, so a step can be replayed exactly.
/// </summary>
public sealed class Gpt2TrainingModel
{
    public Gpt2Parameters Parameters { get; }

    /// <summary>Dropout probabilities used by <see cref="LossAndGradients"/> (none by default; <see cref="Loss"/> never
    /// drops).</summary>
    public (float Embd, float Attn, float Resid) Dropout { get; set; }

    /// <summary>Seeds the dropout masks of the next <see cref="LossAndGradients"/> call.</summary>
    public int DropoutSeed { get; set; }

    private readonly Gpt2Config _c;
    private readonly CrossEntropyHead _head;
    private int _capacity;   // rows the activation buffers hold
    private (int Batch, int Seq) _capacityShape;   // the batch shape they were sized for

    // Activations kept for the backward pass (per block unless noted).
    private float[] _x0 = [];                                  // embedding output [N, E]
    private float[][] _xIn = [], _ln1 = [], _ln1Mean = [], _ln1Rstd = [], _qkv = [], _probs = [], _attnY = [],
        _xMid = [], _ln2 = [], _ln2Mean = [], _ln2Rstd = [], _fcPre = [], _fcAct = [];
    private float[] _xOut = [], _lnF = [], _lnFMean = [], _lnFRstd = [];
    // Scratch for the backward pass.
    private float[] _dx = [], _dTmpE = [], _dQkv = [], _dFc = [], _tA = [], _tB = [], _wT = [], _dMasked = [];
    private DropoutMasks? _masks;   // of the current step, when dropping
    private bool _dropping;

    public Gpt2TrainingModel(Gpt2Parameters parameters)
    {
        Parameters = parameters;
        _c = parameters.Config;
        _head = new CrossEntropyHead(_c.VocabSize, _c.NEmbd);
    }

    private void Ensure(int batch, int seq)
    {
        int n = batch * seq;
        if (n <= _capacity && _probs.Length > 0 && _probs[0].Length >= batch * _c.NHead * seq * seq) return;
        int E = _c.NEmbd, M = _c.MlpWidth, L = _c.NLayer, H = _c.NHead;
        float[][] PerLayer(int size) => Enumerable.Range(0, L).Select(_ => new float[size]).ToArray();
        _x0 = new float[n * E];
        _xIn = PerLayer(n * E); _ln1 = PerLayer(n * E); _ln1Mean = PerLayer(n); _ln1Rstd = PerLayer(n);
        _qkv = PerLayer(n * 3 * E); _probs = PerLayer(batch * H * seq * seq); _attnY = PerLayer(n * E);
        _xMid = PerLayer(n * E); _ln2 = PerLayer(n * E); _ln2Mean = PerLayer(n); _ln2Rstd = PerLayer(n);
        _fcPre = PerLayer(n * M); _fcAct = PerLayer(n * M);
        _xOut = new float[n * E]; _lnF = new float[n * E]; _lnFMean = new float[n]; _lnFRstd = new float[n];
        _dx = new float[n * E]; _dTmpE = new float[n * E]; _dQkv = new float[n * 3 * E]; _dFc = new float[n * M];
        _tA = new float[n * Math.Max(3 * E, M)]; _tB = new float[n * Math.Max(3 * E, M)];
        _wT = new float[Math.Max(3 * E * E, M * E)];
        _dMasked = new float[n * E];
        _masks = null;   // allocated at this size when first needed
        _capacityShape = (batch, seq);
        _capacity = n;
    }

    /// <summary>Mean cross-entropy (nats per target) of a batch, without gradients.</summary>
    public double Loss(int[] ids, int[] targets, int batch, int seq)
    {
        _dropping = false;
        Forward(ids, batch, seq);
        int count = targets.Count(t => t >= 0);
        return count == 0 ? 0
            : _head.Run(_lnF, targets, Parameters.Wte.MemoryOf(Parameters.Values), batch * seq, default, default,
            0f) / count;
    }

    /// <summary>Mean cross-entropy of a batch; adds d(loss)/d(parameter) into <paramref name="grads"/>
    /// (same layout as <see cref="Gpt2Parameters.Values"/>), scaled by <paramref name="gradScale"/>
    /// (1/accumulation steps when gradients of several batches are summed).</summary>
    public double LossAndGradients(int[] ids, int[] targets, int batch, int seq, float[] grads, float gradScale = 1f)
    {
        _dropping = Dropout.Embd > 0 || Dropout.Attn > 0 || Dropout.Resid > 0;
        Forward(ids, batch, seq);
        int count = targets.Count(t => t >= 0);
        if (count == 0) return 0;
        double loss = _head.Run(_lnF, targets, Parameters.Wte.MemoryOf(Parameters.Values), batch * seq,
            _dTmpE, Parameters.Wte.MemoryOf(grads), gradScale / count) / count;
        Backward(ids, batch, seq, grads);
        return loss;
    }

    private void Forward(int[] ids, int batch, int seq)
    {
        if (ids.Length != batch * seq)
            throw new ArgumentException($"ids has {ids.Length} tokens, expected batch {batch} × seq {seq}");
        if (seq > _c.NPositions)
            throw new ArgumentException($"sequence length {seq} is past n_positions {_c.NPositions}");
        Ensure(batch, seq);
        if (_dropping)
        {
            _masks ??= new DropoutMasks(_c.NLayer, _capacityShape.Batch, _capacityShape.Seq, _c.NHead, _c.NEmbd);
            _masks.Draw(DropoutSeed, Dropout, batch * seq * _c.NEmbd, batch * _c.NHead * seq * seq);
        }
        var P = Parameters.Values;
        int E = _c.NEmbd, M = _c.MlpWidth, N = batch * seq;
        var wte = Parameters.Wte.Of(P); var wpe = Parameters.Wpe.Of(P);
        for (int r = 0; r < N; r++)
        {
            int id = ids[r];
            if ((uint)id >= (uint)_c.VocabSize)
                throw new ArgumentException($"token id {id} is outside the vocabulary (size {_c.VocabSize})");
            System.Numerics.Tensors.TensorPrimitives.Add(wte.Slice(id * E, E), wpe.Slice(r % seq * E, E),
                _x0.AsSpan(r * E, E));
        }
        if (_dropping) Mul(_x0, _masks!.Embd, N * E);
        float[] x = _x0;
        for (int l = 0; l < _c.NLayer; l++)
        {
            var b = Parameters.Blocks[l];
            x.AsSpan(0, N * E).CopyTo(_xIn[l]);
            LayerNormOp.Forward(_xIn[l], b.Ln1Weight.MemoryOf(P), b.Ln1Bias.MemoryOf(P), _ln1[l], _ln1Mean[l],
                _ln1Rstd[l], N, E, _c.LayerNormEpsilon);
            Gemm.MatMulNT(_ln1[l], b.CAttnWeight.MemoryOf(P), _qkv[l], N, 3 * E, E, b.CAttnBias.MemoryOf(P));
            AttentionOp.Forward(_qkv[l], _attnY[l], _probs[l], batch, seq, _c.NHead, _c.HeadDim,
                _dropping ? _masks!.Attn[l] : default);
            Gemm.MatMulNT(_attnY[l], b.AttnCProjWeight.MemoryOf(P), _xMid[l], N, E, E, b.AttnCProjBias.MemoryOf(P));
            if (_dropping) Mul(_xMid[l], _masks!.AttnResid[l], N * E);
            System.Numerics.Tensors.TensorPrimitives.Add(_xMid[l].AsSpan(0, N * E), _xIn[l].AsSpan(0, N * E),
                _xMid[l].AsSpan(0, N * E));
            LayerNormOp.Forward(_xMid[l], b.Ln2Weight.MemoryOf(P), b.Ln2Bias.MemoryOf(P), _ln2[l], _ln2Mean[l],
                _ln2Rstd[l], N, E, _c.LayerNormEpsilon);
            Gemm.MatMulNT(_ln2[l], b.CFcWeight.MemoryOf(P), _fcPre[l], N, M, E, b.CFcBias.MemoryOf(P));
            GeluOp.Forward(_fcPre[l].AsMemory(0, N * M), _fcAct[l]);
            x = l + 1 < _c.NLayer ? _xIn[l + 1] : _xOut;
            Gemm.MatMulNT(_fcAct[l], b.MlpCProjWeight.MemoryOf(P), x, N, E, M, b.MlpCProjBias.MemoryOf(P));
            if (_dropping) Mul(x, _masks!.MlpResid[l], N * E);
            System.Numerics.Tensors.TensorPrimitives.Add(x.AsSpan(0, N * E), _xMid[l].AsSpan(0, N * E),
                x.AsSpan(0, N * E));
        }
        LayerNormOp.Forward(x, Parameters.LnFWeight.MemoryOf(P), Parameters.LnFBias.MemoryOf(P), _lnF, _lnFMean,
            _lnFRstd, N, E, _c.LayerNormEpsilon);
    }

    /// <summary>Backward from d(loss)/d(ln_f output), which the head left in _dTmpE.</summary>
    private void Backward(int[] ids, int batch, int seq, float[] grads)
    {
        var P = Parameters.Values;
        int E = _c.NEmbd, M = _c.MlpWidth, N = batch * seq;
        float[] xLast = _c.NLayer > 0 ? _xOut : _x0;
        // ln_f: _dx = d(loss)/d(residual stream after the last block).
        LayerNormOp.Backward(_dTmpE, xLast, Parameters.LnFWeight.MemoryOf(P), _lnFMean, _lnFRstd, _dx,
            Parameters.LnFWeight.MemoryOf(grads), Parameters.LnFBias.MemoryOf(grads), N, E, accumulate: false);
        for (int l = _c.NLayer - 1; l >= 0; l--)
        {
            var b = Parameters.Blocks[l];
            // x_out = x_mid + fcproj(g): the residual passes _dx straight to x_mid; the branch gets it too.
            LinearBackward(Masked(_dx, _masks?.MlpResid[l], N * E), _fcAct[l], b.MlpCProjWeight, b.MlpCProjBias, _dFc,
                N, M, E, grads, accumulateInput: false);
            GeluOp.Backward(_fcPre[l].AsMemory(0, N * M), _dFc.AsMemory(0, N * M), _dFc);
            LinearBackward(_dFc, _ln2[l], b.CFcWeight, b.CFcBias, _dTmpE, N, E, M, grads, accumulateInput: false);
            LayerNormOp.Backward(_dTmpE, _xMid[l], b.Ln2Weight.MemoryOf(P), _ln2Mean[l], _ln2Rstd[l], _dx,
                b.Ln2Weight.MemoryOf(grads), b.Ln2Bias.MemoryOf(grads), N, E, accumulate: true);
            // x_mid = x_in + proj(attention(ln_1(x_in))).
            LinearBackward(Masked(_dx, _masks?.AttnResid[l], N * E), _attnY[l], b.AttnCProjWeight, b.AttnCProjBias,
                _dTmpE, N, E, E, grads, accumulateInput: false);
            AttentionOp.Backward(_qkv[l], _probs[l], _dTmpE, _dQkv, batch, seq, _c.NHead, _c.HeadDim,
                _dropping ? _masks!.Attn[l] : default);
            LinearBackward(_dQkv, _ln1[l], b.CAttnWeight, b.CAttnBias, _dTmpE, N, E, 3 * E, grads,
                accumulateInput: false);
            LayerNormOp.Backward(_dTmpE, _xIn[l], b.Ln1Weight.MemoryOf(P), _ln1Mean[l], _ln1Rstd[l], _dx,
                b.Ln1Weight.MemoryOf(grads), b.Ln1Bias.MemoryOf(grads), N, E, accumulate: true);
        }
        // Embeddings: each row's gradient goes to its token's row of wte and its position's row of wpe.
        if (_dropping) Mul(_dx, _masks!.Embd, N * E);
        var dWte = Parameters.Wte.Of(grads); var dWpe = Parameters.Wpe.Of(grads);
        for (int r = 0; r < N; r++)
        {
            var row = _dx.AsSpan(r * E, E);
            var te = dWte.Slice(ids[r] * E, E); System.Numerics.Tensors.TensorPrimitives.Add(te, row, te);
            var pe = dWpe.Slice(r % seq * E, E); System.Numerics.Tensors.TensorPrimitives.Add(pe, row, pe);
        }
    }

    private static void Mul(float[] x, float[] mask, int n) =>
        System.Numerics.Tensors.TensorPrimitives.Multiply(x.AsSpan(0, n), mask.AsSpan(0, n), x.AsSpan(0, n));

    /// <summary>dy ⊙ mask (into scratch) when dropping, else dy itself: a dropped branch passes no gradient.</summary>
    private float[] Masked(float[] dy, float[]? mask, int n)
    {
        if (!_dropping || mask is null) return dy;
        System.Numerics.Tensors.TensorPrimitives.Multiply(dy.AsSpan(0, n), mask.AsSpan(0, n), _dMasked.AsSpan(0, n));
        return _dMasked;
    }

    /// <summary>
    /// For y = x·Wᵀ + b with x [N, in], W [out, in]: dx = dy·W, dW += dyᵀ·x, db += Σ_rows dy.
    /// </summary>
    private void LinearBackward(float[] dy, float[] x, ParameterTensor w, ParameterTensor bias, float[] dx,
        int n, int inDim, int outDim, float[] grads, bool accumulateInput)
    {
        var P = Parameters.Values;
        var wT = _wT.AsMemory(0, inDim * outDim);
        BlockedTranspose.Transpose(w.MemoryOf(P), wT, outDim, inDim);                       // Wᵀ [in, out]
        Gemm.MatMulNT(dy.AsMemory(0, n * outDim), wT, dx.AsMemory(0, n * inDim), n, inDim, outDim,
            accumulate: accumulateInput);
        var dyT = _tA.AsMemory(0, outDim * n); var xT = _tB.AsMemory(0, inDim * n);
        BlockedTranspose.Transpose(dy.AsMemory(0, n * outDim), dyT, n, outDim);             // dyᵀ [out, N]
        BlockedTranspose.Transpose(x.AsMemory(0, n * inDim), xT, n, inDim);                 // xᵀ  [in, N]
        Gemm.MatMulNT(dyT, xT, w.MemoryOf(grads), outDim, inDim, n, accumulate: true);
        Gemm.AddColumnSums(dy.AsSpan(0, n * outDim), bias.Of(grads), n, outDim);
    }
}
