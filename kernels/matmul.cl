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

// Prefill variant (rows > 1, compute-bound): each work-group computes a BM x BN = 64 x 64 block of y with
// 16 x 16 work-items, and each work-item keeps a 4 x 4 sub-block in registers (rows ty + 16a, columns tx + 16b).
// x and w are staged through local memory in slices BK = 16 wide, stored k-major (xs[k][row], ws[k][col]) so
// the inner loop reads 4 + 4 values and does 16 multiply-adds: each value fetched from global memory serves
// 64 multiply-adds (a 16 x 16 tile with one output per work-item gets 16). Rows of the k-major arrays are
// padded to 65 floats so the transposing stores do not all land in one memory bank.
#define BM 64
#define BN 64
#define BK 16
#define PADDED 65

// The heart of matmul_tiled and gemm: one BK-wide slice of the product for work-item (tx, ty)'s 4 x 4 register
// block, from the slices staged k-major in local memory: acc[u][v] += sum_kk a[kk][ty + 16u] * b[kk][tx + 16v].
// Four values of each slice per kk give sixteen multiply-adds.
void multiply_slice(LOCAL_PTR const float* a, LOCAL_PTR const float* b, int tx, int ty, float acc[4][4])
{
    for (int kk = 0; kk < BK; kk++) {
        float av[4], bv[4];
        for (int u = 0; u < 4; u++) av[u] = a[kk * PADDED + ty + 16 * u];
        for (int v = 0; v < 4; v++) bv[v] = b[kk * PADDED + tx + 16 * v];
        for (int u = 0; u < 4; u++) for (int v = 0; v < 4; v++) acc[u][v] += av[u] * bv[v];
    }
}

KERNEL void matmul_tiled(GLOBAL const float* x, GLOBAL const float* w, int w_format, GLOBAL const float* bias, int has_bias,
                         GLOBAL float* y, int rows, int in_dim, int out_dim, int epilogue)
{
    LOCAL_ARRAY(float, xs, BK * PADDED);       // xs[k][row] = x[r0 + row, k0 + k]
    LOCAL_ARRAY(float, ws, BK * PADDED);       // ws[k][col] = w[j0 + col, k0 + k]
    int tx = LOCAL_ID_X, ty = LOCAL_ID_Y, tid = ty * 16 + tx;
    int r0 = GROUP_ID_Y * BM, j0 = GROUP_ID_X * BN;
    float acc[4][4];
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = 0.0f;
    for (int k0 = 0; k0 < in_dim; k0 += BK) {
        // 256 work-items load the 64 x 16 slices, 4 values of each: element e is (row e / BK, k e % BK), so
        // consecutive work-items read consecutive addresses of a row.
        for (int i = 0; i < 4; i++) {
            int e = tid + 256 * i, row = e / BK, kk = e % BK, k = k0 + kk;
            xs[kk * PADDED + row] = (r0 + row < rows && k < in_dim) ? x[(r0 + row) * in_dim + k] : 0.0f;
            ws[kk * PADDED + row] = (j0 + row < out_dim && k < in_dim) ? load_weight(w, w_format, (j0 + row) * in_dim + k) : 0.0f;
        }
        SYNC_THREADS;
        multiply_slice(xs, ws, tx, ty, acc);
        SYNC_THREADS;
    }
    for (int a = 0; a < 4; a++) {
        int r = r0 + ty + 16 * a;
        for (int b = 0; b < 4; b++) {
            int j = j0 + tx + 16 * b;
            if (r < rows && j < out_dim) store_output(y, r * out_dim + j, acc[a][b] + (has_bias ? bias[j] : 0.0f), epilogue);
        }
    }
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
// The strides let one kernel serve the three products of a linear layer y = x W^T + b
// (x: [N, in], W: [out, in]):  forward y = x W^T,  dx = dy W,  dW += dy^T x  (see DeviceTrainingModel).
// Blocked as matmul_tiled: 64 x 64 blocks of c, a 4 x 4 register block per work-item, BK-wide slices of A and B
// in local memory. Each c[i, j] still sums k in order 0, 1, 2, ...: a step gives the same numbers on every run.
KERNEL void gemm(GLOBAL const float* a, int a_row, int a_col, GLOBAL const float* b, int b_row, int b_col,
                 GLOBAL float* c, int m, int n, int k, int accumulate)
{
    LOCAL_ARRAY(float, at, BK * PADDED);       // at[kk][row] = A(i0 + row, k0 + kk)
    LOCAL_ARRAY(float, bt, BK * PADDED);       // bt[kk][col] = B(k0 + kk, j0 + col)
    int tx = LOCAL_ID_X, ty = LOCAL_ID_Y, tid = ty * 16 + tx;
    int i0 = GROUP_ID_Y * BM, j0 = GROUP_ID_X * BN;
    float acc[4][4];
    for (int u = 0; u < 4; u++) for (int v = 0; v < 4; v++) acc[u][v] = 0.0f;
    for (int k0 = 0; k0 < k; k0 += BK) {
        for (int l = 0; l < 4; l++) {
            int e = tid + 256 * l;
            int row = e / BK, ka = e % BK;          // A's slice: consecutive work-items along k
            at[ka * PADDED + row] = (i0 + row < m && k0 + ka < k) ? a[(i0 + row) * a_row + (k0 + ka) * a_col] : 0.0f;
            int kb = e / BN, col = e % BN;          // B's slice: consecutive work-items along j
            bt[kb * PADDED + col] = (k0 + kb < k && j0 + col < n) ? b[(k0 + kb) * b_row + (j0 + col) * b_col] : 0.0f;
        }
        SYNC_THREADS;
        multiply_slice(at, bt, tx, ty, acc);
        SYNC_THREADS;
    }
    for (int u = 0; u < 4; u++) {
        int i = i0 + ty + 16 * u;
        for (int v = 0; v < 4; v++) {
            int j = j0 + tx + 16 * v;
            if (i < m && j < n) c[i * n + j] = accumulate ? c[i * n + j] + acc[u][v] : acc[u][v];
        }
    }
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
