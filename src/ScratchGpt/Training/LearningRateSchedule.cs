namespace ScratchGpt.Training;

/// <summary>
/// Linear warm-up from 0 to the peak rate over the first steps, then cosine decay to
/// <see cref="MinRatio"/> × peak at the last step (the schedule of GPT-2-style training, e.g. nanoGPT).
/// </summary>
public sealed record LearningRateSchedule(double Peak, long WarmupSteps, long TotalSteps, double MinRatio = 0.1)
{
    public double At(long step)
    {
        if (step < WarmupSteps) return Peak * (step + 1) / WarmupSteps;
        if (TotalSteps <= WarmupSteps) return Peak;
        double progress = Math.Clamp((double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps - 1), 0, 1);
        double min = Peak * MinRatio;
        return min + 0.5 * (Peak - min) * (1 + Math.Cos(Math.PI * progress));
    }
}
