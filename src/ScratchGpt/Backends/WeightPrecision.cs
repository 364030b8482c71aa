namespace ScratchGpt.Backends;

/// <summary>How a backend stores weight matrices.</summary>
public enum WeightPrecision { Float32, Float16, BFloat16 }
