using System.Text.Json.Nodes;

namespace ScratchGpt.Decoding;

/// <summary>early_stopping of beam search: stop as soon as num_beams hypotheses are done (True), when no
/// better one is reachable by the current length (False), or judged at max_length (Never).</summary>
public enum EarlyStopping { False, True, Never }
