using System.Text.Json.Nodes;

namespace ScratchGpt.Decoding;

/// <summary>An invalid generation parameter; the message names it, its value and the allowed range.</summary>
public sealed class GenerationConfigException(string message) : ArgumentException(message);
