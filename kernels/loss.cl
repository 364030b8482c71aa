// cross_entropy: the loss of one row of logits against its target, and (if backward) its gradient in place.
//   loss[row] = logsumexp(logits[row, :]) - logits[row, target]
//   logits[row, :] <- grad_weight * (softmax(logits[row, :]) - onehot(target))
// logits: [rows, vocab] (one chunk of the batch); targets and loss are indexed from row_offset.
// A negative target (no next token) gives loss 0 and a zero gradient row, like transformers' -100 labels.
// One work-group of CE_THREADS per row; max and sum by tree reductions in local memory.
#define CE_THREADS 256

KERNEL void cross_entropy(GLOBAL float* logits, GLOBAL const int* targets, GLOBAL float* loss, int row_offset,
                          int vocab, float grad_weight, int backward)
{
    LOCAL_ARRAY(float, partial, CE_THREADS);
    int row = GROUP_ID_X, tid = LOCAL_ID_X;
    GLOBAL float* x = logits + row * vocab;
    int target = targets[row_offset + row];
    if (target < 0) {                                   // the whole group takes this branch
        if (backward) for (int i = tid; i < vocab; i += CE_THREADS) x[i] = 0.0f;
        if (tid == 0) loss[row_offset + row] = 0.0f;
        return;
    }
    float target_logit = x[target];

    float m = -INFINITY;
    for (int i = tid; i < vocab; i += CE_THREADS) m = fmax(m, x[i]);
    partial[tid] = m;
    SYNC_THREADS;
    for (int stride = CE_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) partial[tid] = fmax(partial[tid], partial[tid + stride]);
        SYNC_THREADS;
    }
    m = partial[0];
    SYNC_THREADS;

    float s = 0.0f;
    for (int i = tid; i < vocab; i += CE_THREADS) s += exp(x[i] - m);
    partial[tid] = s;
    SYNC_THREADS;
    for (int stride = CE_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) partial[tid] += partial[tid + stride];
        SYNC_THREADS;
    }
    s = partial[0];
    if (tid == 0) loss[row_offset + row] = log(s) - (target_logit - m);
    if (!backward) return;
    for (int i = tid; i < vocab; i += CE_THREADS) x[i] = exp(x[i] - m) / s * grad_weight;
    SYNC_THREADS;
    if (tid == 0) x[target] -= grad_weight;
}
