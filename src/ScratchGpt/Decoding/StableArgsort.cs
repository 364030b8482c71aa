namespace ScratchGpt.Decoding;

/// <summary>
/// The indices that sort a row of scores ascending, equal scores in index order (what a stable sort gives, and
/// what top-p's cumulative sum needs to match transformers). An LSD radix sort on the floats' bits: map each float
/// to an unsigned key that orders like the float (negatives: all bits flipped; positives and zeros: the sign bit
/// set; −0 counted as +0 since they are equal), then three stable counting passes of 11, 11 and 10 bits.
/// Linear in the vocabulary: ~10× faster than a comparison sort at 50,257 scores. NaN is not expected.
/// </summary>
public sealed class StableArgsort
{
    private uint[] _keys = [];
    private int[] _scratch = [];
    private readonly int[] _counts = new int[1 << 11];
    private static readonly (int Shift, int Width)[] Digits = [(0, 11), (11, 11), (22, 10)];

    /// <summary>Writes into <paramref name="order"/> the indices of <paramref name="scores"/> in ascending
    /// order.</summary>
    public void Sort(ReadOnlySpan<float> scores, Span<int> order)
    {
        int n = scores.Length;
        if (_keys.Length < n) { _keys = new uint[n]; _scratch = new int[n]; }
        for (int i = 0; i < n; i++)
        {
            uint bits = scores[i] == 0f ? 0u : BitConverter.SingleToUInt32Bits(scores[i]);
            _keys[i] = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
            order[i] = i;
        }
        Span<int> from = order[..n], to = _scratch.AsSpan(0, n);
        foreach (var (shift, width) in Digits)
        {
            uint mask = (1u << width) - 1;
            var counts = _counts.AsSpan(0, 1 << width);
            counts.Clear();
            foreach (int i in from) counts[(int)((_keys[i] >> shift) & mask)]++;
            for (int d = 0, start = 0; d < counts.Length; d++) { int c = counts[d]; counts[d] = start; start += c; }
            foreach (int i in from) to[counts[(int)((_keys[i] >> shift) & mask)]++] = i;   // stable: in the order read
            var t = from; from = to; to = t;
        }
        if (from != order[..n]) from.CopyTo(order);   // an odd number of passes ends in the scratch buffer
    }
}
