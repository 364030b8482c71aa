// matmul with bias: y[r, j] = bias[j] + sum_k x[r, k] * w[j, k]
//   x: [rows, in], w: [out, in] (nn.Linear layout, stored as w_format: weights.cl), y: [rows, out];
//   has_bias = 0 skips the bias. The epilogue fuses the block's next step into the same launch:
#define EPILOGUE_STORE 0     // y = r
#define EPILOGUE_GELU 1      // y = gelu_new(r)           (the MLP's c_fc and its activation)
#define EPILOGUE_ADD 2       // y += r                    (a projection and its residual connection)

void store_output(GLOBAL float* y, int i, float r, int epilogue)
{
    if (epilogue == EPILOGUE_GELU) r = gelu_new(r);
    else if (epilogue == EPILOGUE_ADD) r = y[i] + r;
    y[i] = r;
}

// Prefill variant: TILE x TILE output tiles; both operands staged through local memory in TILE-wide
// slices of k, so each value read from global memory serves TILE multiply-adds.
#define TILE 16

KERNEL void matmul_tiled(GLOBAL const float* x, GLOBAL const float* w, int w_format, GLOBAL const float* bias, int has_bias,
                         GLOBAL float* y, int rows, int in_dim, int out_dim, int epilogue)
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
        ws[lr * TILE + lj] = (wj < out_dim && wk < in_dim) ? load_weight(w, w_format, wj * in_dim + wk) : 0.0f;
        SYNC_THREADS;
        for (int c = 0; c < TILE; c++) acc += xs[lr * TILE + c] * ws[lj * TILE + c];
        SYNC_THREADS;
    }
    if (r < rows && j < out_dim) store_output(y, r * out_dim + j, acc + (has_bias ? bias[j] : 0.0f), epilogue);
}

// Decode variant (rows = 1, bandwidth-bound): one work-group of MV_THREADS per output column j; the
// work-items read w[j, :] with coalesced strides and reduce their partial sums in local memory.
#define MV_THREADS 64

KERNEL void matvec(GLOBAL const float* x, GLOBAL const float* w, int w_format, GLOBAL const float* bias, int has_bias,
                   GLOBAL float* y, int in_dim, int out_dim, int epilogue)
{
    LOCAL_ARRAY(float, partial, MV_THREADS);
    int j = GROUP_ID_X, tid = LOCAL_ID_X;
    float s = 0.0f;
    for (int k = tid; k < in_dim; k += MV_THREADS) s += x[k] * load_weight(w, w_format, j * in_dim + k);
    partial[tid] = s;
    SYNC_THREADS;
    for (int stride = MV_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) partial[tid] += partial[tid + stride];
        SYNC_THREADS;
    }
    if (tid == 0) store_output(y, j, partial[0] + (has_bias ? bias[j] : 0.0f), epilogue);
}

// gemm, for training: c[i, j] = (accumulate ? c[i, j] : 0) + sum_k A(i, k) * B(k, j), c: [m, n]
//   A(i, k) = a[i * a_row + k * a_col],  B(k, j) = b[k * b_row + j * b_col]
// The strides let one tiled kernel serve the three products of a linear layer y = x W^T + b
// (x: [N, in], W: [out, in]):  forward y = x W^T,  dx = dy W,  dW += dy^T x  (see DeviceTrainingModel).
KERNEL void gemm(GLOBAL const float* a, int a_row, int a_col, GLOBAL const float* b, int b_row, int b_col,
                 GLOBAL float* c, int m, int n, int k, int accumulate)
{
    LOCAL_ARRAY(float, at, TILE * TILE);
    LOCAL_ARRAY(float, bt, TILE * TILE);
    int lj = LOCAL_ID_X, li = LOCAL_ID_Y;
    int j = GROUP_ID_X * TILE + lj, i = GROUP_ID_Y * TILE + li;
    float acc = 0.0f;
    for (int k0 = 0; k0 < k; k0 += TILE) {
        int ka = k0 + lj, kb = k0 + li;       // at[li][lj] = A(i, k0 + lj);  bt[li][lj] = B(k0 + li, j)
        at[li * TILE + lj] = (i < m && ka < k) ? a[i * a_row + ka * a_col] : 0.0f;
        bt[li * TILE + lj] = (kb < k && j < n) ? b[kb * b_row + j * b_col] : 0.0f;
        SYNC_THREADS;
        for (int t = 0; t < TILE; t++) acc += at[li * TILE + t] * bt[t * TILE + lj];
        SYNC_THREADS;
    }
    if (i < m && j < n) c[i * n + j] = accumulate ? c[i * n + j] + acc : acc;
}

// column_sums: db[j] += sum_r dy[r, j]   (a bias's gradient; one work-item per column, rows in order)
KERNEL void column_sums(GLOBAL const float* dy, GLOBAL float* db, int rows, int cols)
{
    int j = GLOBAL_ID_X;
    if (j >= cols) return;
    float s = 0.0f;
    for (int r = 0; r < rows; r++) s += dy[r * cols + j];
    db[j] += s;
}
