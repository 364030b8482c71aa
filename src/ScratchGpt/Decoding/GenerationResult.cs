namespace ScratchGpt.Decoding;

/// <summary>What generate() returns: one or more rows and the number of decoding steps performed.
/// <paramref name="Stopped"/>: cancelled before the end; the rows hold what was generated until then.</summary>
public sealed record GenerationResult(int[] PromptIds, IReadOnlyList<GeneratedSequence> Sequences, int NumSteps,
    IReadOnlyList<StepTrace> Trace, bool Stopped = false);
