using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// The decode dot products of the quantized formats, Σ_b dw[b] · dx[b] · (block b's integer sum), written once for
/// both formats: a format gives its block product (<see cref="IBlockProduct"/>: one block of weights times the input's
/// Q8_0 block, an exact integer sum, as float lanes), and <see cref="Sum512{T}"/> / <see cref="Sum256{T}"/> scale
/// and add the blocks eight at a time. The JIT compiles each format's loop separately (a struct type argument), so
/// the block product is inlined, not called.
/// </summary>
internal static unsafe class QuantizedBlocks
{
    public interface IBlockProduct
    {
        /// <summary>Bytes of weights per block of 32.</summary>
        static abstract int Bytes { get; }
        /// <summary>Whether the block sums carry an offset to subtract, Σ_b dw[b] · c[b] (Q4_0's codes are q − 8 off
        /// their values); the JIT drops the offset's code for a format without.</summary>
        static abstract bool HasOffset { get; }
        /// <summary>Block b's sum in eight float lanes.</summary>
        static abstract Vector256<float> One(byte* w, sbyte* x, int b);
        /// <summary>Blocks b and b + 1's sums in eight float lanes each (AVX-512).</summary>
        static abstract Vector512<float> Two(byte* w, sbyte* x, int b);
    }

    /// <summary>
    /// Q8_0 weights: Σ qw · qx over 32 signed bytes. x86 (without VNNI) has no signed × signed byte multiply:
    /// vpmaddubsw multiplies unsigned by signed bytes and adds neighbouring products into 16-bit lanes, so |qw| is
    /// the unsigned side and qx takes qw's sign, and no pair overflows (2 · 128 · 127 &lt; 2^15); vpmaddwd by ones
    /// then sums the pairs into 32-bit lanes. AVX-512 has no vpsignb: there the sign comes from a masked negation.
    /// </summary>
    public readonly struct Q8 : IBlockProduct
    {
        public static int Bytes => Loading.Q8_0.BlockSize;
        public static bool HasOffset => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> One(byte* w, sbyte* x, int b)
        {
            var qw = Avx.LoadVector256((sbyte*)w + b * Bytes);
            var qx = Avx.LoadVector256(x + b * Loading.Q8_0.BlockSize);
            var pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(qw), Avx2.Sign(qx, qw));   // 16 × (|w|·x·sign w, twice)
            return Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1)));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Two(byte* w, sbyte* x, int b)
        {
            var qw = Vector512.Load((sbyte*)w + b * Bytes);
            var qx = Vector512.Load(x + b * Loading.Q8_0.BlockSize);
            var signed = Vector512.ConditionalSelect(Vector512.LessThan(qw, Vector512<sbyte>.Zero), -qx, qx);
            var pairs = Avx512BW.MultiplyAddAdjacent(Vector512.Abs(qw).AsByte(), signed);   // |w|·x·sign w, in pairs
            return Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1)));
        }
    }

    /// <summary>
    /// Q4_0 weights: Σ q · qx over 32 four-bit codes (0 … 15; the weight is dw · (q − 8), the − 8 is taken out by the
    /// caller). The codes are unsigned, so they go straight into vpmaddubsw (no pair overflows: 2 · 15 · 127 &lt;
    /// 2^15). A block's 16 bytes hold values 0–15 in their low halves and 16–31 in their high halves.
    /// </summary>
    public readonly struct Q4 : IBlockProduct
    {
        public static int Bytes => Loading.Q4_0.BlockSize / 2;
        public static bool HasOffset => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> One(byte* w, sbyte* x, int b)
        {
            // the 16 bytes in both halves (a broadcast load), the upper half shifted 4 bits down, then each byte's low
            // four bits: codes 0–15, then 16–31 (a 64-bit shift moves the next byte's bits into the top four, masked)
            var both = Avx2.BroadcastVector128ToVector256(w + b * Bytes).AsUInt64();
            var q = Avx2.ShiftRightLogicalVariable(both, Vector256.Create(0ul, 0, 4, 4)).AsByte()
                & Vector256.Create((byte)0x0F);
            var qx = Avx.LoadVector256(x + b * Loading.Q4_0.BlockSize);
            var pairs = Avx2.MultiplyAddAdjacent(q, qx);
            return Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1)));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Two(byte* w, sbyte* x, int b)
        {
            // blocks b and b + 1 (16 bytes each) as [b | b | b + 1 | b + 1], every other quarter shifted 4 bits
            // down, then each byte's low four bits: each block's codes in order, as in One
            var packed = Vector256.Load(w + b * Bytes).ToVector512Unsafe().AsUInt64();
            var twice = Avx512F.Shuffle4x128(packed, packed, 0b01_01_00_00);
            var q = Avx512F.ShiftRightLogicalVariable(twice, Vector512.Create(0ul, 0, 4, 4, 0, 0, 4, 4)).AsByte()
                & Vector512.Create((byte)0x0F);
            var qx = Vector512.Load(x + b * Loading.Q4_0.BlockSize);
            var pairs = Avx512BW.MultiplyAddAdjacent(q, qx);
            return Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1)));
        }
    }

    /// <summary>How many weight rows a sum below takes at once: one, or two (a and b) against the same input, the
    /// two side by side so that their weights stream from memory together (see <see cref="ColumnPairs"/>). The JIT
    /// drops b's code for <see cref="OneRow"/>, so a's operations are the same either way.</summary>
    public interface IRows
    {
        static abstract bool Two { get; }
    }

    public readonly struct OneRow : IRows { public static bool Two => false; }

    public readonly struct TwoRows : IRows { public static bool Two => true; }

    /// <summary>Σ_b dw[b] · (dx[b] · T's block product − c[b]) (c only where T has an offset), with 512-bit
    /// vectors: each vector holds two blocks, so the eight blocks' scale products are broadcast two at a time (block
    /// 2i to the low eight lanes, 2i + 1 to the high eight). The weights' scales dw are float32 or float16
    /// (<see cref="EightScales{TScale}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum512<T, TScale>(byte* wp, TScale* wd, sbyte* xp, float* xd, float* c, int blocks)
        where T : IBlockProduct where TScale : unmanaged
    {
        Sum512<T, OneRow, TScale>(wp, wd, null, null, xp, xd, c, blocks, out float sum, out _);
        return sum;
    }

    /// <summary><see cref="Sum512{T, TScale}"/> for weight rows a (wa, da) and, with <see cref="TwoRows"/>, b (wb,
    /// db), each in its own accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Sum512<T, TRows, TScale>(byte* wa, TScale* da, byte* wb, TScale* db, sbyte* xp, float* xd,
        float* c, int blocks, out float sa, out float sb)
        where T : IBlockProduct where TRows : IRows where TScale : unmanaged
    {
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default;   // two accumulators a row
        Vector256<float> offsetsA = default, offsetsB = default;
        var pair0 = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        var pair1 = pair0 + Vector512.Create(2);
        var pair2 = pair0 + Vector512.Create(4);
        var pair3 = pair0 + Vector512.Create(6);
        int b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            PrefetchEightBlocks<T, TRows>(wa, wb, b);
            var dx8 = Avx.LoadVector256(xd + b);
            var dw8 = EightScales(da + b);
            if (T.HasOffset) offsetsA = Fma.MultiplyAdd(dw8, Avx.LoadVector256(c + b), offsetsA);
            var s = Avx.Multiply(dw8, dx8).ToVector512Unsafe();
            a0 = Avx512F.FusedMultiplyAdd(T.Two(wa, xp, b), Avx512F.PermuteVar16x32(s, pair0), a0);
            a1 = Avx512F.FusedMultiplyAdd(T.Two(wa, xp, b + 2), Avx512F.PermuteVar16x32(s, pair1), a1);
            a0 = Avx512F.FusedMultiplyAdd(T.Two(wa, xp, b + 4), Avx512F.PermuteVar16x32(s, pair2), a0);
            a1 = Avx512F.FusedMultiplyAdd(T.Two(wa, xp, b + 6), Avx512F.PermuteVar16x32(s, pair3), a1);
            if (!TRows.Two) continue;
            dw8 = EightScales(db + b);
            if (T.HasOffset) offsetsB = Fma.MultiplyAdd(dw8, Avx.LoadVector256(c + b), offsetsB);
            s = Avx.Multiply(dw8, dx8).ToVector512Unsafe();
            b0 = Avx512F.FusedMultiplyAdd(T.Two(wb, xp, b), Avx512F.PermuteVar16x32(s, pair0), b0);
            b1 = Avx512F.FusedMultiplyAdd(T.Two(wb, xp, b + 2), Avx512F.PermuteVar16x32(s, pair1), b1);
            b0 = Avx512F.FusedMultiplyAdd(T.Two(wb, xp, b + 4), Avx512F.PermuteVar16x32(s, pair2), b0);
            b1 = Avx512F.FusedMultiplyAdd(T.Two(wb, xp, b + 6), Avx512F.PermuteVar16x32(s, pair3), b1);
        }
        // each row's sixteen lanes folded to eight, less its offsets, then the blocks short of eight, 256 bits wide
        var a8 = a0.GetLower() + a0.GetUpper() + (a1.GetLower() + a1.GetUpper()) - offsetsA;
        var b8 = TRows.Two ? b0.GetLower() + b0.GetUpper() + (b1.GetLower() + b1.GetUpper()) - offsetsB : a8;
        int full = b;
        for (; b < blocks; b++)
        {
            a8 = Fma.MultiplyAdd(T.One(wa, xp, b), Vector256.Create(OneScale(da + b) * xd[b]), a8);
            if (TRows.Two) b8 = Fma.MultiplyAdd(T.One(wb, xp, b), Vector256.Create(OneScale(db + b) * xd[b]), b8);
        }
        Finish<T, TRows, TScale>(a8, b8, da, db, c, full, blocks, out sa, out sb);
    }

    /// <summary><see cref="Sum512{T, TScale}"/> with 256-bit vectors, one block per instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum256<T, TScale>(byte* wp, TScale* wd, sbyte* xp, float* xd, float* c, int blocks)
        where T : IBlockProduct where TScale : unmanaged
    {
        Sum256<T, OneRow, TScale>(wp, wd, null, null, xp, xd, c, blocks, out float sum, out _);
        return sum;
    }

    /// <summary><see cref="Sum256{T, TScale}"/> for weight rows a and, with <see cref="TwoRows"/>, b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Sum256<T, TRows, TScale>(byte* wa, TScale* da, byte* wb, TScale* db, sbyte* xp, float* xd,
        float* c, int blocks, out float sa, out float sb)
        where T : IBlockProduct where TRows : IRows where TScale : unmanaged
    {
        Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default;
        Vector256<float> offsetsA = default, offsetsB = default;
        int b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            PrefetchEightBlocks<T, TRows>(wa, wb, b);
            // the eight blocks' dw · dx in one vector; a permute broadcasts each one to every lane
            var dx8 = Avx.LoadVector256(xd + b);
            var dw8 = EightScales(da + b);
            if (T.HasOffset) offsetsA = Fma.MultiplyAdd(dw8, Avx.LoadVector256(c + b), offsetsA);
            var s = Avx.Multiply(dw8, dx8);
            a0 = Fma.MultiplyAdd(T.One(wa, xp, b), Avx2.PermuteVar8x32(s, Vector256.Create(0)), a0);
            a1 = Fma.MultiplyAdd(T.One(wa, xp, b + 1), Avx2.PermuteVar8x32(s, Vector256.Create(1)), a1);
            a0 = Fma.MultiplyAdd(T.One(wa, xp, b + 2), Avx2.PermuteVar8x32(s, Vector256.Create(2)), a0);
            a1 = Fma.MultiplyAdd(T.One(wa, xp, b + 3), Avx2.PermuteVar8x32(s, Vector256.Create(3)), a1);
            a0 = Fma.MultiplyAdd(T.One(wa, xp, b + 4), Avx2.PermuteVar8x32(s, Vector256.Create(4)), a0);
            a1 = Fma.MultiplyAdd(T.One(wa, xp, b + 5), Avx2.PermuteVar8x32(s, Vector256.Create(5)), a1);
            a0 = Fma.MultiplyAdd(T.One(wa, xp, b + 6), Avx2.PermuteVar8x32(s, Vector256.Create(6)), a0);
            a1 = Fma.MultiplyAdd(T.One(wa, xp, b + 7), Avx2.PermuteVar8x32(s, Vector256.Create(7)), a1);
            if (!TRows.Two) continue;
            dw8 = EightScales(db + b);
            if (T.HasOffset) offsetsB = Fma.MultiplyAdd(dw8, Avx.LoadVector256(c + b), offsetsB);
            s = Avx.Multiply(dw8, dx8);
            b0 = Fma.MultiplyAdd(T.One(wb, xp, b), Avx2.PermuteVar8x32(s, Vector256.Create(0)), b0);
            b1 = Fma.MultiplyAdd(T.One(wb, xp, b + 1), Avx2.PermuteVar8x32(s, Vector256.Create(1)), b1);
            b0 = Fma.MultiplyAdd(T.One(wb, xp, b + 2), Avx2.PermuteVar8x32(s, Vector256.Create(2)), b0);
            b1 = Fma.MultiplyAdd(T.One(wb, xp, b + 3), Avx2.PermuteVar8x32(s, Vector256.Create(3)), b1);
            b0 = Fma.MultiplyAdd(T.One(wb, xp, b + 4), Avx2.PermuteVar8x32(s, Vector256.Create(4)), b0);
            b1 = Fma.MultiplyAdd(T.One(wb, xp, b + 5), Avx2.PermuteVar8x32(s, Vector256.Create(5)), b1);
            b0 = Fma.MultiplyAdd(T.One(wb, xp, b + 6), Avx2.PermuteVar8x32(s, Vector256.Create(6)), b0);
            b1 = Fma.MultiplyAdd(T.One(wb, xp, b + 7), Avx2.PermuteVar8x32(s, Vector256.Create(7)), b1);
        }
        int full = b;
        for (; b < blocks; b++)   // fewer than eight left: each scale broadcast on its own
        {
            a0 = Fma.MultiplyAdd(T.One(wa, xp, b), Vector256.Create(OneScale(da + b) * xd[b]), a0);
            if (TRows.Two) b0 = Fma.MultiplyAdd(T.One(wb, xp, b), Vector256.Create(OneScale(db + b) * xd[b]), b0);
        }
        var a8 = a0 + a1 - offsetsA;
        Finish<T, TRows, TScale>(a8, TRows.Two ? b0 + b1 - offsetsB : a8, da, db, c, full, blocks, out sa, out sb);
    }

    /// <summary>Rows a and b (<see cref="TwoRows"/>) with the widest vectors this CPU has; false where it has neither
    /// AVX-512 nor AVX2 (the caller then takes the rows one at a time).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TrySumTwoRows<T, TScale>(byte* wa, TScale* da, byte* wb, TScale* db, sbyte* xp, float* xd,
        float* c, int blocks, out float sa, out float sb)
        where T : IBlockProduct where TScale : unmanaged
    {
        if (Avx512BW.IsSupported)
        {
            Sum512<T, TwoRows, TScale>(wa, da, wb, db, xp, xd, c, blocks, out sa, out sb);
            return true;
        }
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            Sum256<T, TwoRows, TScale>(wa, da, wb, db, xp, xd, c, blocks, out sa, out sb);
            return true;
        }
        (sa, sb) = (0f, 0f);
        return false;
    }

    /// <summary>The weights of blocks b … b + 7, <see cref="WeightPrefetch.Distance"/> ahead, of row a and (with
    /// <see cref="TwoRows"/>) row b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchEightBlocks<T, TRows>(byte* wa, byte* wb, int b)
        where T : IBlockProduct where TRows : IRows
    {
        for (int line = 0; line < 8 * T.Bytes; line += 64)
        {
            WeightPrefetch.Ahead(wa + b * T.Bytes + line);
            if (TRows.Two) WeightPrefetch.Ahead(wb + b * T.Bytes + line);
        }
    }

    /// <summary>Eight blocks' weight scales from <paramref name="d"/> as float32: loaded, or, where they are float16
    /// (Q8_0 with AVX-512, <see cref="Q8Weights"/>), widened (<see cref="WidenScales"/>). The JIT keeps only the
    /// branch of the type it compiles for.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> EightScales<TScale>(TScale* d) where TScale : unmanaged =>
        typeof(TScale) == typeof(Half) ? WidenScales((ushort*)d) : Avx.LoadVector256((float*)d);

    /// <summary>One block's weight scale as float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float OneScale<TScale>(TScale* d) where TScale : unmanaged =>
        typeof(TScale) == typeof(Half) ? (float)*(Half*)d : *(float*)d;

    /// <summary>
    /// Eight float16 values as float32, exactly, in integer steps (.NET cannot emit vcvtph2ps). A half is sign ·
    /// 2^(e − 15) · 1.m (5-bit e, 10-bit m): moving e and m up 13 bits puts them in a float32's places, and
    /// adding 112 to the exponent (127 − 15) rebiases it; e = 31 (infinity, NaN) takes another 112, to 255. A
    /// subnormal half (e = 0) is m · 2^-24: m converted, times 2^-24, a normal float32 — no float32 subnormal is
    /// ever an operand, which costs a microcode assist per instruction (docs/benchmarks.md, session 16).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> WidenScales(ushort* p)
    {
        var h = Avx2.ConvertToVector256Int32(p);   // zero-extended to 32 bits
        var magnitude = h & Vector256.Create(0x7FFF);
        var sign = (h & Vector256.Create(0x8000)) << 16;
        var rebias = Vector256.Create(112 << 23);
        var normal = (magnitude << 13) + rebias
            + (Vector256.GreaterThan(magnitude, Vector256.Create(0x7BFF)) & rebias);
        var subnormal = Vector256.ConvertToSingle(magnitude) * Vector256.Create(1f / (1 << 24));
        var isSubnormal = Vector256.LessThan(magnitude, Vector256.Create(0x400)).AsSingle();
        return Vector256.ConditionalSelect(isSubnormal, subnormal, normal.AsSingle()) | sign.AsSingle();
    }

    /// <summary>
    /// Rows a's and b's sums from their eight lanes each (row a's twice for <see cref="OneRow"/>), the offsets of the
    /// blocks short of eight (where T has them) taken off at the end. Both rows are reduced together, a's lanes as
    /// a's alone would be (so a row gets the same bits with or without a partner): two horizontal adds pair the lanes
    /// within each 128-bit half, [a0+a1, a2+a3, b0+b1, b2+b3 | …] and then [a0…a3, b0…b3, … | a4…a7, b4…b7, …], and
    /// the halves' sum holds a and b. One short reduction instead of one per row matters at GPT-2's widths: a row of
    /// 768 weights is only three passes of the eight-block loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish<T, TRows, TScale>(Vector256<float> a8, Vector256<float> b8, TScale* da, TScale* db,
        float* c, int full, int blocks, out float sa, out float sb)
        where T : IBlockProduct where TRows : IRows where TScale : unmanaged
    {
        var pairs = Avx.HorizontalAdd(a8, b8);
        pairs = Avx.HorizontalAdd(pairs, pairs);
        var both = pairs.GetLower() + pairs.GetUpper();
        sa = both.ToScalar();
        sb = TRows.Two ? both.GetElement(1) : 0f;
        if (!T.HasOffset) return;
        for (int b = full; b < blocks; b++)
        {
            sa -= OneScale(da + b) * c[b];
            if (TRows.Two) sb -= OneScale(db + b) * c[b];
        }
    }
}
