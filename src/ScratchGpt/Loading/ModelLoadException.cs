namespace ScratchGpt.Loading;

/// <summary>
/// Raised for any problem with a checkpoint, config or tokenizer file: missing, truncated,
/// malformed, or not a GPT-2. The message is one line that names the file and what is wrong,
/// so a CLI can print it as-is.
/// </summary>
public sealed class ModelLoadException : Exception
{
    public ModelLoadException(string message) : base(message) { }
    public ModelLoadException(string message, Exception inner) : base(message, inner) { }
}
