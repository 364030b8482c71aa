namespace ScratchGpt.Training;

/// <summary>Training on the CPU: <see cref="Gpt2TrainingModel"/>'s forward and backward, gradients in a host array,
/// <see cref="AdamW"/>.</summary>
public sealed class CpuTrainingEngine(Gpt2Parameters parameters, AdamW optimizer,
    (float Embd, float Attn, float Resid) dropout) : ITrainingEngine
{
    private readonly Gpt2TrainingModel _model = new(parameters) { Dropout = dropout };
    private readonly float[] _grads = new float[parameters.Count];

    public string Device => $"cpu — {Environment.ProcessorCount} cores";

    public void ZeroGradients() => Array.Clear(_grads);

    public double AddGradients(int[] ids, int[] targets, int batch, int seq, float gradScale, int dropoutSeed)
    {
        _model.DropoutSeed = dropoutSeed;
        return _model.LossAndGradients(ids, targets, batch, seq, _grads, gradScale);
    }

    public double ClipGradients(double maxNorm) => AdamW.ClipGradientNorm(_grads, maxNorm);

    public void Update(float learningRate) => optimizer.Update(_grads, learningRate);

    public double Loss(int[] ids, int[] targets, int batch, int seq) => _model.Loss(ids, targets, batch, seq);

    public void ReadGradients(float[] into) => _grads.CopyTo(into, 0);

    public void CopyToHost() { }

    public void CopyFromHost() { }

    public void Dispose() { }
}
