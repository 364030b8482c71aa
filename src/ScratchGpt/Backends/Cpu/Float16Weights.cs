using System.Numerics.Tensors;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// A float16 weight matrix as the CPU backend keeps it: every weight times 2^<see cref="Shift"/>, as a half, in
/// <see cref="HugePageMemory"/>; w = <see cref="Scale"/> · stored, Scale = 2^-Shift.
///
/// Why scaled: the kernels widen halves with integer operations (<see cref="CpuKernels.DotHalfPaired"/>), which turn
/// a subnormal half (0 &lt; |w| &lt; 2^-14) into a subnormal float32, and Intel cores run a multiply or FMA with a
/// subnormal operand through a microcode assist (~100 cycles) unless the thread has denormals-are-zero set, which .NET
/// cannot set (AMD cores take no such penalty). A half's smallest step is 2^-24, so times 2^10 every nonzero weight
/// is at least 2^-14, a normal half: with Shift = 10 no stored half is subnormal. Powers of two change no bits, so
/// the products, the sums (times Scale at the end) and the widened values are exactly those of the unscaled halves.
/// A matrix with some |w| ≥ 64 would overflow at 2^10; it takes the largest shift that fits, and any subnormal
/// halves it still holds are slow on Intel, not wrong.
/// </summary>
public sealed class Float16Weights
{
    /// <summary>The shift that leaves no subnormal half: 2^-24 · 2^10 = 2^-14.</summary>
    public const int FullShift = 10;

    /// <summary>The weights times 2^Shift, row-major.</summary>
    public ReadOnlyMemory<Half> Halves { get; }
    public int Shift { get; }
    /// <summary>2^-Shift: a stored half times this is the weight.</summary>
    public float Scale => MathF.ScaleB(1f, -Shift);

    private Float16Weights(ReadOnlyMemory<Half> halves, int shift) { Halves = halves; Shift = shift; }

    /// <summary>Each value rounded to float16 (as the checkpoint's halves are), then scaled by 2^Shift, exactly: the
    /// rounding happens once, at the weight's own precision.</summary>
    public static Float16Weights From(ReadOnlySpan<float> values)
    {
        // Rounding to a half is monotonic, so the largest half is the largest value rounded.
        float largest = values.IsEmpty ? 0 : Math.Abs((float)(Half)TensorPrimitives.MaxMagnitude(values));
        int shift = FullShift;
        while (shift > 0 && largest * MathF.ScaleB(1f, shift) > (float)Half.MaxValue) shift--;
        float up = MathF.ScaleB(1f, shift);
        var halves = HugePageMemory.Allocate<Half>(values.Length);
        var h = halves.Span;
        // A chunk at a time, so the halves are scaled while they are still in cache.
        Span<float> chunk = new float[Math.Min(h.Length, 1 << 16)];
        for (int i = 0; i < h.Length; i += chunk.Length)
        {
            int n = Math.Min(chunk.Length, h.Length - i);
            var part = h.Slice(i, n);
            TensorPrimitives.ConvertToHalf(values.Slice(i, n), part);
            if (shift == 0) continue;
            var wide = chunk[..n];
            TensorPrimitives.ConvertToSingle(part, wide);
            TensorPrimitives.Multiply(wide, up, wide);   // exact: the half times a power of two that fits
            TensorPrimitives.ConvertToHalf(wide, part);
        }
        return new Float16Weights(halves, shift);
    }

    /// <summary>Rows row0 .. row0+count−1 of <paramref name="cols"/> weights, widened to float32 (exactly the
    /// weights: the scale is folded into the widening's own power of two).</summary>
    public void WidenRows(int row0, int count, int cols, Span<float> dst) =>
        CpuKernels.WidenHalf(Halves.Span.Slice(row0 * cols, count * cols), dst, Scale);
}
