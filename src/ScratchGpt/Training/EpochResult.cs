namespace ScratchGpt.Training;

/// <summary>One line of the Trainer-style table.</summary>
public sealed record EpochResult(int Epoch, long Step, double TrainingLoss, double? ValidationLoss);
