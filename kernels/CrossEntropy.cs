using ILGPU;
using ILGPU.Algorithms;

namespace ScratchGpt.Kernels;

/// <summary>
/// The loss of one row of logits against its target, and (backward ≠ 0) its gradient in place:
///   loss[row] = logsumexp(logits[row, :]) − logits[row, target]
///   logits[row, :] ← gradWeight · (softmax(logits[row, :]) − onehot(target))
/// logits [rows, vocab] is one chunk of the batch; targets and loss are indexed from rowOffset. A negative target
/// (no next token) gives loss 0 and a zero gradient row, like transformers' −100 labels.
/// A group of <see cref="Threads"/> per row (grid-stride over the rows); max and sum by <see cref="GroupReduce"/>.
/// </summary>
public static class CrossEntropy
{
    public const int Threads = 256;

    public static void Forward(ArrayView<float> logits, ArrayView<int> targets, ArrayView<float> loss, int rows,
        int rowOffset, int vocab, float gradWeight, int backward)
    {
        var scratch = SharedMemory.Allocate<float>(Threads);
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
            Row(logits, targets, loss, rowOffset, vocab, gradWeight, backward, row, scratch);
    }

    private static void Row(ArrayView<float> logits, ArrayView<int> targets, ArrayView<float> loss, int rowOffset,
        int vocab, float gradWeight, int backward, int row, ArrayView<float> scratch)
    {
        int tid = Group.IdxX;
        long x = (long)row * vocab;
        int target = targets[rowOffset + row];
        if (target < 0)   // the whole group takes this branch
        {
            if (backward != 0) for (int i = tid; i < vocab; i += Threads) logits[x + i] = 0f;
            if (tid == 0) loss[rowOffset + row] = 0f;
            return;
        }
        float targetLogit = logits[x + target];
        float m = float.NegativeInfinity;
        for (int i = tid; i < vocab; i += Threads) m = XMath.Max(m, logits[x + i]);
        m = GroupReduce.Max(scratch, m, Threads);
        float s = 0f;
        for (int i = tid; i < vocab; i += Threads) s += XMath.Exp(logits[x + i] - m);
        s = GroupReduce.Sum(scratch, s, Threads);
        if (tid == 0) loss[rowOffset + row] = XMath.Log(s) - (targetLogit - m);
        if (backward == 0) return;   // uniform across the group
        for (int i = tid; i < vocab; i += Threads) logits[x + i] = XMath.Exp(logits[x + i] - m) / s * gradWeight;
        Group.Barrier();
        if (tid == 0) logits[x + target] -= gradWeight;
        Group.Barrier();
    }
}
