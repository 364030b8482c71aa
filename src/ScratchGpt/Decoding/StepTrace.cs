namespace ScratchGpt.Decoding;

/// <summary>One decoding step for the step table: the ids so far and the top candidates with their
/// probabilities.</summary>
public sealed record StepTrace(int[] InputIds, (int Id, float Prob)[] Choices, int ChosenId);
