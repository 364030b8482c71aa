using ScratchGpt.Tokenization;
using ScratchGpt.Backends;
using ScratchGpt.Decoding;
using ScratchGpt.Loading;

namespace ScratchGpt.Model;

/// <summary>
/// GPT-2 (GPT2LMHeadModel) on any backend. The whole forward pass:
///
///     x = wte[ids] + wpe[positions]                 [T, E]
///     for each block:  x = block(x)                 [T, E]   (see Gpt2Block)
///     x = ln_f(x)                                   [T, E]
///     logits = x · wteᵀ                             [T, V]   (LM head tied to the embedding)
/// </summary>
public sealed class Gpt2Model : ILanguageModel, IDisposable
{
    public Gpt2Config Config { get; }
    public IBackend Backend { get; }
    public Gpt2Tokenizer? Tokenizer { get; init; }

    /// <summary>Generation defaults from the model folder's generation_config.json, if it has one.</summary>
    public GenerationConfig? GenerationDefaults { get; init; }

    /// <summary>The dtype the checkpoint stores its weights in (F32, F16 or BF16).</summary>
    public string CheckpointDType { get; init; } = "F32";
    public string? Directory { get; init; }
    public WeightPrecision Precision { get; }

    private readonly IDeviceBuffer _wte, _wpe, _lnFWeight, _lnFBias;
    private readonly Gpt2Block[] _blocks;

    public int VocabSize => Config.VocabSize;
    public int MaxPositions => Config.NPositions;

    public Gpt2Model(Gpt2Checkpoint ckpt, IBackend backend, WeightPrecision precision = WeightPrecision.Float32)
    {
        Config = ckpt.Config;
        Backend = backend;
        Precision = precision;
        var c = Config;
        _wte = backend.UploadWeight(ckpt.Read("wte.weight", c.VocabSize, c.NEmbd), precision);
        _wpe = backend.Upload(ckpt.Read("wpe.weight", c.NPositions, c.NEmbd));
        _blocks = new Gpt2Block[c.NLayer];
        for (int l = 0; l < c.NLayer; l++) _blocks[l] = Gpt2Block.Load(ckpt, backend, l, precision);
        _lnFWeight = backend.Upload(ckpt.Read("ln_f.weight", c.NEmbd));
        _lnFBias = backend.Upload(ckpt.Read("ln_f.bias", c.NEmbd));
    }

    /// <summary>Loads config.json, model.safetensors and the tokenizer from a Hugging Face model folder.</summary>
    public static Gpt2Model Load(string directory, ModelLoadOptions? options = null) => ModelFolder.Load(directory, options ?? new());

    public Gpt2Session CreateSession(int capacity = 0) =>
        new(this, capacity <= 0 ? Config.NPositions : Math.Min(capacity, Config.NPositions));

    ILanguageModelState ILanguageModel.CreateState(int capacity) => CreateSession(capacity);

    /// <summary>A forward pass over a whole sequence with no cache, as model(input_ids) in transformers.</summary>
    public ForwardResult Forward(ReadOnlySpan<int> ids, ForwardOptions? options = null)
    {
        using var session = CreateSession(ids.Length);
        return Forward(session, ids, options ?? new ForwardOptions());
    }

    /// <summary>Appends <paramref name="ids"/> to the session's sequence and returns the outputs for those positions.</summary>
    public ForwardResult Forward(Gpt2Session session, ReadOnlySpan<int> ids, ForwardOptions options)
    {
        var c = Config;
        int T = ids.Length, past = session.Length, E = c.NEmbd;
        if (T == 0) throw new ArgumentException("Forward needs at least one token", nameof(ids));
        if (past + T > session.Capacity)
            throw new ArgumentException($"sequence of {past + T} tokens is longer than the model's n_positions ({c.NPositions})" +
                (session.Capacity < c.NPositions ? $" or this session's capacity ({session.Capacity})" : ""));
        foreach (int id in ids)
            if ((uint)id >= (uint)c.VocabSize) throw new ArgumentException($"token id {id} is outside the vocabulary (0..{c.VocabSize - 1})");

        // The workspace is sized for the largest T seen; decode steps (T = 1) reuse it without allocating.
        if (session.Work is null || session.Work.Rows < T || (options.AllLogits && session.Work.LogitRows < T))
        {
            session.Work?.Dispose();
            session.Work = new Workspace(Backend, c, T, options.AllLogits);
        }
        var s = session.Work;
        var hidden = options.HiddenStates ? new float[c.NLayer + 1][] : null;
        var attentions = options.Attentions ? new float[c.NLayer][] : null;
        using var probs = options.Attentions ? Backend.Allocate((long)c.NHead * T * (past + T)) : null;

        Backend.Embedding(ids, past, _wte, _wpe, s.X, E);                          // x = wte[ids] + wpe[pos]   [T, E]
        if (hidden is not null) hidden[0] = DownloadRows(s.X, T * E);
        for (int l = 0; l < c.NLayer; l++)
        {
            _blocks[l].Forward(Backend, c, s, session.K[l], session.V[l], T, past, probs);   // x = block_l(x)   [T, E]
            if (attentions is not null) attentions[l] = DownloadRows(probs!, (long)c.NHead * T * (past + T));
            if (hidden is not null && l < c.NLayer - 1) hidden[l + 1] = DownloadRows(s.X, T * E);
        }
        Backend.LayerNorm(s.X, _lnFWeight, _lnFBias, s.A, T, E, c.LayerNormEpsilon);   // x = ln_f(x)   [T, E]
        if (hidden is not null) hidden[c.NLayer] = DownloadRows(s.A, T * E);

        // LM head: logits = x · wteᵀ, for every row or only the last one.      [T or 1, V]
        int rows = options.AllLogits ? T : 1;
        if (options.AllLogits) Backend.MatMul(s.A, _wte, null, s.Logits, T, E, c.VocabSize);
        else
        {
            if (T > 1) Backend.Copy(s.A, (long)(T - 1) * E, s.Proj, 0, E);
            Backend.MatMul(T > 1 ? s.Proj : s.A, _wte, null, s.Logits, 1, E, c.VocabSize);
        }
        session.Length = past + T;
        if (options.LogitsStayOnDevice) return new ForwardResult([], rows, c.VocabSize, attentions, hidden);
        var logits = DownloadRows(s.Logits, (long)rows * c.VocabSize);
        return new ForwardResult(logits, rows, c.VocabSize, attentions, hidden);
    }

    /// <summary>How many sequences one batched decode step takes at a time (<see cref="AppendEach"/>): on the CPU,
    /// up to this many rows get exactly the single-row dot products (CpuKernels.DecodeRows).</summary>
    public const int MaxDecodeBatch = Backends.Cpu.CpuKernels.DecodeRows;

    /// <summary>
    /// One decode step for several sequences at once: appends ids[b] to states[b] and writes each one's
    /// next-token logits to nextLogits[b·V .. (b+1)·V]. The layer norms and matmuls run over all the rows
    /// together, so each weight is read from memory once per step instead of once per sequence (reading the
    /// weights is what a decode step costs); attention runs per sequence, over its own cache. Up to
    /// <see cref="MaxDecodeBatch"/> sequences go through each pass; on the CPU every row's logits are bit for bit
    /// those of <see cref="Gpt2Session.Append"/>, so beam search gives the same beams batched or not.
    /// </summary>
    public void AppendEach(IReadOnlyList<ILanguageModelState> states, ReadOnlySpan<int> ids, Span<float> nextLogits)
    {
        int B = states.Count, V = VocabSize;
        if (ids.Length != B) throw new ArgumentException($"{ids.Length} token ids for {B} sequences", nameof(ids));
        if (nextLogits.Length < (long)B * V) throw new ArgumentException($"room for {nextLogits.Length} logits, {B} sequences need {(long)B * V}", nameof(nextLogits));
        for (int b = 0; b < B; b++)
        {
            if (states[b] is not Gpt2Session s || s.Model != this) throw new ArgumentException($"sequence {b} is not a session of this model", nameof(states));
            ObjectDisposedException.ThrowIf(s.IsDisposed, s);
            if (s.Length + 1 > s.Capacity) throw new ArgumentException($"sequence {b} is full ({s.Capacity} positions)", nameof(states));
            if ((uint)ids[b] >= (uint)V) throw new ArgumentException($"token id {ids[b]} is outside the vocabulary (0..{V - 1})", nameof(ids));
            for (int o = 0; o < b; o++)
                if (ReferenceEquals(states[o], s)) throw new ArgumentException($"sequences {o} and {b} are the same session", nameof(states));
        }
        for (int b0 = 0; b0 < B; b0 += MaxDecodeBatch)
        {
            int n = Math.Min(MaxDecodeBatch, B - b0);
            DecodeStep(states, b0, n, ids.Slice(b0, n));
            var w = ((Gpt2Session)states[b0]).BatchWork!;
            Backend.Download(w.Logits, 0, nextLogits.Slice(b0 * V, n * V));
        }
    }

    /// <summary>The batched step for sequences b0 .. b0+n−1; the logits stay in the first one's batch workspace.</summary>
    private void DecodeStep(IReadOnlyList<ILanguageModelState> states, int b0, int n, ReadOnlySpan<int> ids)
    {
        var c = Config;
        int E = c.NEmbd;
        Gpt2Session S(int b) => (Gpt2Session)states[b0 + b];
        var owner = S(0);
        if (owner.BatchWork is null || owner.BatchWork.Rows < n)
        {
            owner.BatchWork?.Dispose();
            owner.BatchWork = new Workspace(Backend, c, n, allLogits: true);
        }
        var w = owner.BatchWork;
        for (int b = 0; b < n; b++)                                                   // x[b] = wte[id_b] + wpe[pos_b]   [n, E]
        {
            Backend.Embedding(ids.Slice(b, 1), S(b).Length, _wte, _wpe, w.RowA, E);
            Backend.Copy(w.RowA, 0, w.X, (long)b * E, E);
        }
        for (int l = 0; l < c.NLayer; l++)
        {
            _blocks[l].QueryKeyValue(Backend, c, w, n);                                // qkv = c_attn(ln_1(x))   [n, 3E]
            for (int b = 0; b < n; b++)                                               // a[b] = attention over sequence b's cache
            {
                Backend.Copy(w.Qkv, (long)b * 3 * E, w.RowQkv, 0, 3 * E);
                Backend.Attention(w.RowQkv, S(b).K[l], S(b).V[l], w.RowA, null, 1, S(b).Length, c.NHead, c.HeadDim);
                Backend.Copy(w.RowA, 0, w.A, (long)b * E, E);
            }
            _blocks[l].ProjectionAndMlp(Backend, c, w, n);                             // x += c_proj(a); x += mlp(ln_2(x))
        }
        Backend.LayerNorm(w.X, _lnFWeight, _lnFBias, w.A, n, E, c.LayerNormEpsilon);   // x = ln_f(x)   [n, E]
        Backend.MatMul(w.A, _wte, null, w.Logits, n, E, c.VocabSize);                 // logits = x · wteᵀ   [n, V]
        for (int b = 0; b < n; b++) S(b).Length++;
    }

    private float[] DownloadRows(IDeviceBuffer b, long count)
    {
        var a = new float[count];
        Backend.Download(b, 0, a);
        return a;
    }

    /// <summary>The module tree with parameter shapes, in the checkpoint's names (without "transformer.").</summary>
    public IEnumerable<(string Name, long[] Shape)> ParameterShapes()
    {
        var c = Config;
        int E = c.NEmbd, M = c.MlpWidth;
        yield return ("wte.weight", [c.VocabSize, E]);
        yield return ("wpe.weight", [c.NPositions, E]);
        for (int l = 0; l < c.NLayer; l++)
        {
            string p = $"h.{l}.";
            yield return (p + "ln_1.weight", [E]); yield return (p + "ln_1.bias", [E]);
            yield return (p + "attn.c_attn.weight", [E, 3 * E]); yield return (p + "attn.c_attn.bias", [3 * E]);
            yield return (p + "attn.c_proj.weight", [E, E]); yield return (p + "attn.c_proj.bias", [E]);
            yield return (p + "ln_2.weight", [E]); yield return (p + "ln_2.bias", [E]);
            yield return (p + "mlp.c_fc.weight", [E, M]); yield return (p + "mlp.c_fc.bias", [M]);
            yield return (p + "mlp.c_proj.weight", [M, E]); yield return (p + "mlp.c_proj.bias", [E]);
        }
        yield return ("ln_f.weight", [E]); yield return ("ln_f.bias", [E]);
    }

    public long ParameterCount => ParameterShapes().Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b));

    public void Dispose()
    {
        _wte.Dispose(); _wpe.Dispose(); _lnFWeight.Dispose(); _lnFBias.Dispose();
        foreach (var b in _blocks) b.Dispose();
        Backend.Dispose();
    }
}
