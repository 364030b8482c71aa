namespace ScratchGpt.Backends.Cpu;

/// <summary>CPU memory: a float32 array, or for 16-bit weights an array of float16 / bfloat16 bits.</summary>
public sealed class CpuBuffer : IDeviceBuffer
{
    public float[] Data { get; }
    public Half[]? Half16 { get; }
    public ushort[]? BFloat16 { get; }
    public Q8Weights? Q8 { get; }
    public long Length { get; }

    public CpuBuffer(float[] data) { Data = data; Length = data.Length; }
    public CpuBuffer(Half[] data) { Data = []; Half16 = data; Length = data.Length; }
    public CpuBuffer(ushort[] bf16) { Data = []; BFloat16 = bf16; Length = bf16.Length; }
    public CpuBuffer(Q8Weights q8) { Data = []; Q8 = q8; Length = q8.Quants.Length; }

    public void Dispose() { }
}
