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

    /// <summary>How each session's KV cache stores keys and values (<see cref="Backend"/>'s
    /// <see cref="IBackend.AllocateCache"/>).</summary>
    public KvCachePrecision KvCache { get; init; } = KvCachePrecision.Float32;

    private readonly Gpt2Tensors<IDeviceBuffer> _w;     // the checkpoint's tensors on the backend (Gpt2Layout)
    private readonly Gpt2Block[] _blocks;

    public int VocabSize => Config.VocabSize;
    public int MaxPositions => Config.NPositions;

    public Gpt2Model(Gpt2Checkpoint ckpt, IBackend backend, WeightPrecision precision = WeightPrecision.Float32)
    {
        Config = ckpt.Config;
        Backend = backend;
        Precision = precision;
        // Matmul weights (wte, the Conv1D weights) in the run's precision; embeddings of positions,
        // gains, biases in float32.
        _w = Gpt2Layout.For(Config).Select(spec => spec.IsMatMulWeight
            ? backend.UploadWeight(ckpt.Read(spec), precision)
            : backend.Upload(ckpt.Read(spec)));
        _blocks = _w.H.Select(w => new Gpt2Block(w)).ToArray();
    }

    /// <summary>Loads config.json, model.safetensors and the tokenizer from a Hugging Face model folder.</summary>
    public static Gpt2Model Load(string directory, ModelLoadOptions? options = null) =>
        Gpt2ModelLoader.Load(directory, options ?? new());

    public Gpt2Session CreateSession(int capacity = 0) =>
        new(this, capacity <= 0 ? Config.NPositions : Math.Min(capacity, Config.NPositions));

    ILanguageModelState ILanguageModel.CreateState(int capacity) => CreateSession(capacity);

    /// <summary>A forward pass over a whole sequence with no cache, as model(input_ids) in transformers.</summary>
    public ForwardResult Forward(ReadOnlySpan<int> ids, ForwardOptions? options = null)
    {
        using var session = CreateSession(ids.Length);
        return Forward(session, ids, options ?? new ForwardOptions());
    }

    /// <summary>Appends <paramref name="ids"/> to the session's sequence and returns the outputs for those
    /// positions.</summary>
    public ForwardResult Forward(Gpt2Session session, ReadOnlySpan<int> ids, ForwardOptions options)
    {
        var c = Config;
        int T = ids.Length, past = session.Length, E = c.NEmbd;
        if (T == 0) throw new ArgumentException("Forward needs at least one token", nameof(ids));
        if (past + T > session.Capacity)
            throw new ArgumentException($"sequence of {past + T} tokens is longer than the model's n_positions " +
                $"({c.NPositions})" +
                (session.Capacity < c.NPositions ? $" or this session's capacity ({session.Capacity})" : ""));
        foreach (int id in ids)
            if ((uint)id >= (uint)c.VocabSize)
                throw new ArgumentException($"token id {id} is outside the vocabulary (0..{c.VocabSize - 1})");

        // The workspace is sized for the largest T seen; decode steps (T = 1) reuse it without allocating.
        if (session.Work is null || session.Work.Rows < T || (options.AllLogits && session.Work.LogitRows < T))
        {
            session.Work?.Dispose();
            session.Work = new Workspace(Backend, c, T, options.AllLogits);
        }
        var s = session.Work;
        var hidden = options.HiddenStates ? new float[c.NLayer + 1][] : null;
        var attentions = options.Attentions ? new float[c.NLayer][] : null;
        if (options.Hooks is not null && past > 0)
            throw new ArgumentException("a hooked forward pass needs a fresh sequence (no cached positions)");
        using var probs = options.Attentions || options.Hooks is not null
            ? Backend.Allocate((long)c.NHead * T * (past + T)) : null;
        var hooks = options.Hooks is null ? null : new HookSite(Backend, options.Hooks, T, c.NHead, c.HeadDim);
        RunLayers(s, [session], ids, probs, hidden, attentions, hooks);   // s.A = ln_f(blocks(embed(ids)))   [T, E]

        // LM head: logits = x · wteᵀ, for every row or only the last one.      [T or 1, V]
        int rows = options.AllLogits ? T : 1;
        if (options.AllLogits) Backend.MatMul(s.A, _w.Wte, null, s.Logits, T, E, c.VocabSize);
        else
        {
            if (T > 1) Backend.Copy(s.A, (long)(T - 1) * E, s.Proj, 0, E);
            Backend.MatMul(T > 1 ? s.Proj : s.A, _w.Wte, null, s.Logits, 1, E, c.VocabSize);
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
        if (nextLogits.Length < (long)B * V)
            throw new ArgumentException($"room for {nextLogits.Length} logits, {B} sequences need {(long)B * V}",
                nameof(nextLogits));
        for (int b = 0; b < B; b++)
        {
            if (states[b] is not Gpt2Session s || s.Model != this)
                throw new ArgumentException($"sequence {b} is not a session of this model", nameof(states));
            ObjectDisposedException.ThrowIf(s.IsDisposed, s);
            if (s.Length + 1 > s.Capacity)
                throw new ArgumentException($"sequence {b} is full ({s.Capacity} positions)", nameof(states));
            if ((uint)ids[b] >= (uint)V)
                throw new ArgumentException($"token id {ids[b]} is outside the vocabulary (0..{V - 1})", nameof(ids));
            for (int o = 0; o < b; o++)
                if (ReferenceEquals(states[o], s))
                    throw new ArgumentException($"sequences {o} and {b} are the same session", nameof(states));
        }
        for (int b0 = 0; b0 < B; b0 += MaxDecodeBatch)
        {
            int n = Math.Min(MaxDecodeBatch, B - b0);
            DecodeStep(states, b0, n, ids.Slice(b0, n));
            var w = ((Gpt2Session)states[b0]).BatchWork!;
            Backend.Download(w.Logits, 0, nextLogits.Slice(b0 * V, n * V));
        }
    }

    /// <summary>The batched step for sequences b0 .. b0+n−1; the logits stay in the first one's batch
    /// workspace.</summary>
    private void DecodeStep(IReadOnlyList<ILanguageModelState> states, int b0, int n, ReadOnlySpan<int> ids)
    {
        var c = Config;
        var sessions = new Gpt2Session[n];
        for (int b = 0; b < n; b++) sessions[b] = (Gpt2Session)states[b0 + b];
        var owner = sessions[0];
        if (owner.BatchWork is null || owner.BatchWork.Rows < n)
        {
            owner.BatchWork?.Dispose();
            owner.BatchWork = new Workspace(Backend, c, n, allLogits: true);
        }
        var w = owner.BatchWork;
        RunLayers(w, sessions, ids, null, null, null, null);   // w.A = ln_f(blocks(embed(ids)))   [n, E]
        Backend.MatMul(w.A, _w.Wte, null, w.Logits, n, c.NEmbd, c.VocabSize);   // logits = x · wteᵀ   [n, V]
        foreach (var session in sessions) session.Length++;
    }

    /// <summary>
    /// The layer loop, written once, for one sequence of T new tokens (a forward pass, a prefill, a step) or
    /// for n sequences of one new token each (a batched decode step): the new rows of all of them go through
    /// the layer norms and matmuls together — each weight read once per step — and attention runs per
    /// sequence, over its own cache. Leaves ln_f(x) in w.A. Hidden states, attention maps and hooks are for
    /// a single sequence only.
    /// </summary>
    private void RunLayers(Workspace w, IReadOnlyList<Gpt2Session> seqs, ReadOnlySpan<int> ids,
        IDeviceBuffer? probs, float[][]? hidden, float[][]? attentions, HookSite? hooks)
    {
        var c = Config;
        int E = c.NEmbd, n = seqs.Count, T = n == 1 ? ids.Length : 1, N = ids.Length;   // N = all new rows
        // x = wte[ids] + wpe[pos]   [N, E]
        if (n == 1) Backend.Embedding(ids, seqs[0].Length, _w.Wte, _w.Wpe, w.X, E);
        else
            for (int b = 0; b < n; b++)
            {
                Backend.Embedding(ids.Slice(b, 1), seqs[b].Length, _w.Wte, _w.Wpe, w.RowA, E);
                Backend.Copy(w.RowA, 0, w.X, (long)b * E, E);
            }
        if (hidden is not null) hidden[0] = DownloadRows(w.X, (long)N * E);
        if (hooks is not null) HookEmbeddings(hooks, ids);
        for (int l = 0; l < c.NLayer; l++)
        {
            var block = _blocks[l];
            string at = $"blocks.{l}.";
            var residPre = hooks?.Device(at + "hook_resid_pre", w.X, [1, T, E],
                need: hooks.Wants(at + "ln1.hook_normalized"));
            hooks?.Host(at + "ln1.hook_normalized", [1, T, E], () => hooks.Normalized(residPre!, c.LayerNormEpsilon));
            block.QueryKeyValue(Backend, c, w, N);   // qkv = c_attn(ln_1(x))   [N, 3E]
            var (q, k) = hooks?.QueryKeyValue(at + "attn.", w.Qkv, hooks.Wants(at + "attn.hook_attn_scores"))
                ?? ([], []);
            if (n == 1)   // a = causal attention over the cache
                Backend.Attention(w.Qkv, seqs[0].K[l], seqs[0].V[l], w.A, probs, T, seqs[0].Length, c.NHead, c.HeadDim);
            else
                for (int b = 0; b < n; b++)   // a[b] = attention over sequence b's cache
                {
                    Backend.Copy(w.Qkv, (long)b * 3 * E, w.RowQkv, 0, 3 * E);
                    Backend.Attention(w.RowQkv, seqs[b].K[l], seqs[b].V[l], w.RowA, null, 1, seqs[b].Length, c.NHead,
                        c.HeadDim);
                    Backend.Copy(w.RowA, 0, w.A, (long)b * E, E);
                }
            if (attentions is not null) attentions[l] = DownloadRows(probs!, (long)c.NHead * T * (seqs[0].Length + T));
            if (hooks is not null)
            {
                hooks.Host(at + "attn.hook_attn_scores", [1, c.NHead, T, T], () => hooks.Scores(q, k));
                hooks.Host(at + "attn.hook_pattern", [1, c.NHead, T, T],
                    () => DownloadRows(probs!, (long)c.NHead * T * T));
                hooks.Device(at + "attn.hook_z", w.A, [1, T, c.NHead, c.HeadDim]);
                block.ProjectionAndMlpHooked(Backend, c, w, T, hooks, at);   // the same, unfused, each step hooked
            }
            else block.ProjectionAndMlp(Backend, c, w, N);   // x += c_proj(a); x += mlp(ln_2(x))
            if (hidden is not null && l < c.NLayer - 1) hidden[l + 1] = DownloadRows(w.X, (long)N * E);
        }
        if (hooks is not null)
            hooks.Host("ln_final.hook_normalized", [1, T, E],
                () => hooks.Normalized(DownloadRows(w.X, (long)T * E), c.LayerNormEpsilon));
        Backend.LayerNorm(w.X, _w.LnFWeight, _w.LnFBias, w.A, N, E, c.LayerNormEpsilon);  // x = ln_f(x)   [N, E]
        if (hidden is not null) hidden[c.NLayer] = DownloadRows(w.A, (long)N * E);
    }

    /// <summary>hook_embed = wte[ids] (an embedding with a zero position table) and hook_pos_embed =
    /// wpe[0..T).</summary>
    private void HookEmbeddings(HookSite hooks, ReadOnlySpan<int> ids)
    {
        int T = ids.Length, E = Config.NEmbd;
        if (hooks.Wants("hook_embed"))
        {
            using var zeros = Backend.Allocate((long)T * E);
            using var embed = Backend.Allocate((long)T * E);
            Backend.Embedding(ids, 0, _w.Wte, zeros, embed, E);
            hooks.Host("hook_embed", [1, T, E], () => DownloadRows(embed, (long)T * E));
        }
        hooks.Host("hook_pos_embed", [1, T, E], () => DownloadRows(_w.Wpe, (long)T * E));
    }

    private float[] DownloadRows(IDeviceBuffer b, long count)
    {
        var a = new float[count];
        Backend.Download(b, 0, a);
        return a;
    }

    /// <summary>The model's last steps applied to any residual-stream rows [rows, E]: ln_f, then x·wteᵀ → logits
    /// [rows, V]. On a block's output this is the logit lens (what the model would say if it stopped there).</summary>
    public float[] Unembed(float[] residual, int rows)
    {
        var c = Config;
        if (residual.Length != rows * c.NEmbd)
            throw new ArgumentException($"{residual.Length} values are not {rows} rows of {c.NEmbd}");
        using var x = Backend.Upload(residual);
        using var normed = Backend.Allocate((long)rows * c.NEmbd);
        using var logits = Backend.Allocate((long)rows * c.VocabSize);
        // ln_f(x)   [rows, E]
        Backend.LayerNorm(x, _w.LnFWeight, _w.LnFBias, normed, rows, c.NEmbd, c.LayerNormEpsilon);
        Backend.MatMul(normed, _w.Wte, null, logits, rows, c.NEmbd, c.VocabSize);   // · wteᵀ    [rows, V]
        return DownloadRows(logits, (long)rows * c.VocabSize);
    }

    public long ParameterCount => Gpt2Layout.ParameterCount(Config);

    public void Dispose()
    {
        foreach (var b in _w.All()) b.Dispose();      // the blocks' weights too
        Backend.Dispose();
    }
}
