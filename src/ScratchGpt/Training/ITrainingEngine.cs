namespace ScratchGpt.Training;

/// <summary>
/// Where a training step's math runs. The <see cref="Trainer"/> drives one step as
///
///     ZeroGradients → AddGradients (once per micro-batch) → ClipGradients → Update
///
/// and asks for <see cref="Loss"/> on the validation split. <see cref="CpuTrainingEngine"/> keeps everything
/// in host arrays; <see cref="DeviceTrainingModel"/> keeps weights, gradients, Adam moments and activations on
/// an OpenCL or CUDA device and brings back only the losses and the gradient norm.
/// </summary>
public interface ITrainingEngine : IDisposable
{
    /// <summary>The backend and device, as the CLI prints it ("cpu — 2 cores", "opencl — …").</summary>
    string Device { get; }

    void ZeroGradients();

    /// <summary>Mean cross-entropy of a batch of <paramref name="batch"/> × <paramref name="seq"/> tokens; adds its
    /// gradients, scaled by <paramref name="gradScale"/>, to the accumulated ones. Dropout masks from
    /// <paramref name="dropoutSeed"/>.</summary>
    double AddGradients(int[] ids, int[] targets, int batch, int seq, float gradScale, int dropoutSeed);

    /// <summary>Global L2 norm of the accumulated gradients (returned), scaled down to <paramref name="maxNorm"/> when
    /// above it (0: no clipping).</summary>
    double ClipGradients(double maxNorm);

    /// <summary>One AdamW step with the accumulated (clipped) gradients; advances the optimiser's step count.</summary>
    void Update(float learningRate);

    /// <summary>Mean cross-entropy of a batch, no dropout, no gradients.</summary>
    double Loss(int[] ids, int[] targets, int batch, int seq);

    /// <summary>The accumulated gradients, laid out like <see cref="Gpt2Parameters.Values"/> (for inspection and
    /// tests).</summary>
    void ReadGradients(float[] into);

    /// <summary>Makes the host's <see cref="Gpt2Parameters.Values"/> and <see cref="AdamW.M"/>/<see cref="AdamW.V"/>
    /// current (before saving).</summary>
    void CopyToHost();

    /// <summary>Takes the host's parameters and Adam moments (after restoring a checkpoint).</summary>
    void CopyFromHost();
}
