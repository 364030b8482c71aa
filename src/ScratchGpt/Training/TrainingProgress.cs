namespace ScratchGpt.Training;

/// <summary>What the progress bar shows after each optimiser step.</summary>
public sealed record TrainingProgress(int Epoch, long Step, long TotalSteps, double Loss, double LearningRate,
    double GradNorm, double TokensPerSecond, TimeSpan Elapsed);
