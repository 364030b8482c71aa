namespace ScratchGpt.Training;

/// <summary>The settings of a training run, named as the Hugging Face Trainer names them where it has them.</summary>
public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 1;
    public double LearningRate { get; init; } = 2e-5;
    public float WeightDecay { get; init; } = 0.01f;
    /// <summary>Sequences per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Tokens per sequence (T); at most n_positions.</summary>
    public int BlockSize { get; init; } = 128;
    /// <summary>Micro-batches whose gradients are summed before each optimiser step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Warm-up steps; null means 5% of all steps.</summary>
    public long? WarmupSteps { get; init; }
    public double MinLearningRateRatio { get; init; } = 0.1;
    public double MaxGradNorm { get; init; } = 1.0;
    public double EvalSplit { get; init; } = 0.1;
    /// <summary>Stop after this many optimiser steps (null: run all epochs).</summary>
    public long? MaxSteps { get; init; }
    public int Seed { get; init; } = 42;
    /// <summary>Dropout probability for the embeddings, attention and residual branches; null takes the
    /// model config's embd_pdrop / attn_pdrop / resid_pdrop (transformers' default 0.1), as the Trainer does.</summary>
    public float? Dropout { get; init; }
    /// <summary>dtype of the saved model.safetensors: f32, f16 or bf16 (the resume checkpoint is always f32).</summary>
    public string SaveDType { get; init; } = "f32";

    public void Validate()
    {
        static void Check(bool ok, string message) { if (!ok) throw new ArgumentException(message); }
        Check(Epochs >= 1, $"--epochs must be at least 1, got {Epochs}");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), $"--lr must be a positive number, got {LearningRate}");
        Check(WeightDecay >= 0 && float.IsFinite(WeightDecay), $"--weight-decay must be ≥ 0, got {WeightDecay}");
        Check(BatchSize >= 1, $"--batch-size must be at least 1, got {BatchSize}");
        Check(BlockSize >= 1, $"--block-size must be at least 1, got {BlockSize}");
        Check(GradientAccumulationSteps >= 1, $"--grad-accum must be at least 1, got {GradientAccumulationSteps}");
        Check(WarmupSteps is null or >= 0, $"--warmup-steps must be ≥ 0, got {WarmupSteps}");
        Check(MaxGradNorm >= 0, $"--max-grad-norm must be ≥ 0 (0 turns clipping off), got {MaxGradNorm}");
        Check(EvalSplit is >= 0 and < 1, $"--eval-split must be in [0, 1), got {EvalSplit}");
        Check(MaxSteps is null or >= 1, $"--max-steps must be at least 1, got {MaxSteps}");
        Check(Dropout is null or (>= 0 and < 1), $"--dropout must be in [0, 1), got {Dropout}");
        Check(SaveDType is "f32" or "f16" or "bf16", $"--save-dtype must be f32, f16 or bf16, got '{SaveDType}'");
    }
}
