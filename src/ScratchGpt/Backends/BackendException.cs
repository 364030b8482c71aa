using ScratchGpt.Backends.Cpu;
using ScratchGpt.Backends.Ilgpu;
using ScratchGpt.Backends.Reference;

namespace ScratchGpt.Backends;

/// <summary>A device could not be opened or a runtime call failed; the message names the device and the
/// reason.</summary>
public sealed class BackendException : Exception
{
    public BackendException(string message) : base(message) { }
    public BackendException(string message, Exception inner) : base(message, inner) { }
}
