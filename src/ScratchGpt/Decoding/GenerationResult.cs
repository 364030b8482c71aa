namespace ScratchGpt.Decoding;

/// <summary>One returned row: the prompt and generated ids, the generated part alone, and beam search's length-normalised score.</summary>
public sealed record GeneratedSequence(int[] Ids, int[] NewIds, double? SequenceScore = null);

/// <summary>One decoding step for the step table: the ids so far and the top candidates with their probabilities.</summary>
public sealed record StepTrace(int[] InputIds, (int Id, float Prob)[] Choices, int ChosenId);

/// <summary>What generate() returns: one or more rows and the number of decoding steps performed.
/// <paramref name="Stopped"/>: cancelled before the end; the rows hold what was generated until then.</summary>
public sealed record GenerationResult(int[] PromptIds, IReadOnlyList<GeneratedSequence> Sequences, int NumSteps,
    IReadOnlyList<StepTrace> Trace, bool Stopped = false);
