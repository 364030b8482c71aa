using ScratchGpt.Backends;
using ScratchGpt.Decoding;

namespace ScratchGpt.Model;

/// <summary>
/// One sequence being processed: its KV cache (per layer, K and V of every position seen so far,
/// [capacity, n_embd]) and its activation workspace. Appending tokens costs only the new positions.
/// </summary>
public sealed class Gpt2Session : ILanguageModelState
{
    private readonly Gpt2Model _model;
    internal readonly IDeviceBuffer[] K, V;
    internal Workspace? Work;
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
            K[l] = model.Backend.Allocate((long)capacity * c.NEmbd);
            V[l] = model.Backend.Allocate((long)capacity * c.NEmbd);
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

    public void CopyFrom(ILanguageModelState other)
    {
        var o = (Gpt2Session)other;
        long n = (long)o.Length * _model.Config.NEmbd;
        for (int l = 0; l < K.Length; l++)
        {
            if (n > 0) { _model.Backend.Copy(o.K[l], 0, K[l], 0, n); _model.Backend.Copy(o.V[l], 0, V[l], 0, n); }
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
    }
}
