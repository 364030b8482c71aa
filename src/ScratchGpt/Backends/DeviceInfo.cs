using ScratchGpt.Backends.Ilgpu;

namespace ScratchGpt.Backends;

/// <summary>One row of `scratchgpt devices`.</summary>
public sealed record DeviceInfo(string Id, string Name, string Status);
