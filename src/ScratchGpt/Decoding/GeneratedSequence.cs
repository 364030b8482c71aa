namespace ScratchGpt.Decoding;

/// <summary>One returned row: the prompt and generated ids, the generated part alone, and beam search's
/// length-normalised score.</summary>
public sealed record GeneratedSequence(int[] Ids, int[] NewIds, double? SequenceScore = null);
