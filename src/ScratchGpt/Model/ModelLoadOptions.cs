using ScratchGpt.Backends;

namespace ScratchGpt.Model;

/// <summary>How to load a model folder.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>auto | cpu | opencl[:N] | cuda[:N]. auto takes CUDA, then an OpenCL GPU, then the CPU.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>A folder with vocab.json + merges.txt or tokenizer.json; default: the model folder, else the bundled
    /// GPT-2 files.</summary>
    public string? TokenizerDirectory { get; init; }

    /// <summary>Weight storage: null keeps the checkpoint's precision (F16/BF16 stay 16-bit, widened in the
    /// kernels).</summary>
    public WeightPrecision? Precision { get; init; }

    /// <summary>How sessions store their keys and values (float32: exactly transformers' numbers).</summary>
    public KvCachePrecision KvCache { get; init; } = KvCachePrecision.Float32;

    /// <summary>Wraps the backend before the weights go to it (e.g. in a
    /// <see cref="Backends.ProfilingBackend"/>).</summary>
    public Func<IBackend, IBackend>? WrapBackend { get; init; }

    /// <summary>Told what the loader chose (device, fallbacks), one line each.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Told what a user must know about the loaded model (e.g. that it borrows the bundled
    /// tokenizer).</summary>
    public Action<string>? Note { get; init; }
}
