// matmul with bias: y[r, j] = bias[j] + sum_k x[r, k] * w[j, k]
//   x: [rows, in], w: [out, in] (nn.Linear layout), y: [rows, out]; has_bias = 0 skips the bias.

// Prefill variant: TILE x TILE output tiles; both operands staged through local memory in TILE-wide
// slices of k, so each value read from global memory serves TILE multiply-adds.
#define TILE 16

KERNEL void matmul_tiled(GLOBAL const float* x, GLOBAL const float* w, GLOBAL const float* bias, int has_bias,
                         GLOBAL float* y, int rows, int in_dim, int out_dim)
{
    LOCAL_ARRAY(float, xs, TILE * TILE);
    LOCAL_ARRAY(float, ws, TILE * TILE);
    int lj = LOCAL_ID_X, lr = LOCAL_ID_Y;           // x: output column, y: row
    int j = GROUP_ID_X * TILE + lj, r = GROUP_ID_Y * TILE + lr;
    float acc = 0.0f;
    for (int k0 = 0; k0 < in_dim; k0 += TILE) {
        // xs[lr][c] = x[r, k0 + c];  ws[lj][c] = w[j_of_row(lr... )]: each work-item loads one of each.
        int xr = r, xk = k0 + lj;
        xs[lr * TILE + lj] = (xr < rows && xk < in_dim) ? x[xr * in_dim + xk] : 0.0f;
        int wj = GROUP_ID_X * TILE + lr, wk = k0 + lj;
        ws[lr * TILE + lj] = (wj < out_dim && wk < in_dim) ? w[wj * in_dim + wk] : 0.0f;
        SYNC_THREADS;
        for (int c = 0; c < TILE; c++) acc += xs[lr * TILE + c] * ws[lj * TILE + c];
        SYNC_THREADS;
    }
    if (r < rows && j < out_dim) y[r * out_dim + j] = acc + (has_bias ? bias[j] : 0.0f);
}

// Decode variant (rows = 1, bandwidth-bound): one work-group of MV_THREADS per output column j; the
// work-items read w[j, :] with coalesced strides and reduce their partial sums in local memory.
#define MV_THREADS 64

KERNEL void matvec(GLOBAL const float* x, GLOBAL const float* w, GLOBAL const float* bias, int has_bias,
                   GLOBAL float* y, int in_dim, int out_dim)
{
    LOCAL_ARRAY(float, partial, MV_THREADS);
    int j = GROUP_ID_X, tid = LOCAL_ID_X;
    GLOBAL const float* wj = w + j * in_dim;
    float s = 0.0f;
    for (int k = tid; k < in_dim; k += MV_THREADS) s += x[k] * wj[k];
    partial[tid] = s;
    SYNC_THREADS;
    for (int stride = MV_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) partial[tid] += partial[tid + stride];
        SYNC_THREADS;
    }
    if (tid == 0) y[j] = partial[0] + (has_bias ? bias[j] : 0.0f);
}
