using ScratchGpt.Backends;
using ScratchGpt.Decoding;

namespace ScratchGpt.Model;

/// <summary>
/// One sequence being processed: its KV cache (per layer, K and V of every position seen so far,
/// [n_head, capacity, head_dim]) and its activation workspace. Appending tokens costs only the new positions.
/// </summary>
public sealed class Gpt2Session : ILanguageModelState
{
    private readonly Gpt2Model _model;
    internal readonly IDeviceBuffer[] K, V;
    internal Workspace? Work;
    /// <summary>Activations of a batched decode step this session leads (see Gpt2Model.AppendEach).</summary>
    internal Workspace? BatchWork;
    internal Gpt2Model Model => _model;
    internal bool IsDisposed => _disposed;
    private bool _disposed;

    public int Capacity { get; }
    public int Length { get; internal set; }

    internal Gpt2Session(Gpt2Model model, int capacity)
    {
        _model = model;
        Capacity = capacity;
        var c = model.Config;
        K = new IDeviceBuffer[c.NLayer];
        V = new IDeviceBuffer[c.NLayer];
        for (int l = 0; l < c.NLayer; l++)
        {
            K[l] = model.Backend.AllocateCache((long)capacity * c.NEmbd, model.KvCache);
            V[l] = model.Backend.AllocateCache((long)capacity * c.NEmbd, model.KvCache);
        }
    }

    private static readonly ForwardOptions DecodeStep = new() { AllLogits = false, LogitsStayOnDevice = true };

    /// <summary>Appends tokens and copies the next-token logits straight from the device buffer into
    /// <paramref name="nextLogits"/>: nothing is allocated per token.</summary>
    public void Append(ReadOnlySpan<int> ids, Span<float> nextLogits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _model.Forward(this, ids, DecodeStep);
        _model.Backend.Download(Work!.Logits, 0, nextLogits[.._model.VocabSize]);
    }

    /// <summary>Appends tokens and returns the argmax of the next-token logits, computed on the device:
    /// one int crosses back instead of vocab_size floats.</summary>
    public int AppendArgmax(ReadOnlySpan<int> ids)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _model.Forward(this, ids, DecodeStep);
        return _model.Backend.Argmax(Work!.Logits, _model.VocabSize);
    }

    /// <summary>Takes over another session's positions (beam search reorders its beams this way). The caches are
    /// head-major [nHead, capacity, headDim], so each head's first Length positions are one block to copy.</summary>
    public void CopyFrom(ILanguageModelState other)
    {
        var o = (Gpt2Session)other;
        if (o.Length > Capacity)
            throw new ArgumentException($"a session of capacity {Capacity} cannot take {o.Length} positions");
        var c = _model.Config;
        long n = (long)o.Length * c.HeadDim;
        for (int l = 0; l < K.Length && n > 0; l++)
            for (int h = 0; h < c.NHead; h++)
            {
                long from = (long)h * o.Capacity * c.HeadDim, to = (long)h * Capacity * c.HeadDim;
                _model.Backend.Copy(o.K[l], from, K[l], to, n);
                _model.Backend.Copy(o.V[l], from, V[l], to, n);
            }
        Length = o.Length;
    }

    public void Reset() => Length = 0;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var b in K) b.Dispose();
        foreach (var b in V) b.Dispose();
        Work?.Dispose();
        BatchWork?.Dispose();
    }
}
