// layernorm: y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta   (biased variance)
// One work-group of LN_THREADS work-items per row; mean and variance by a tree reduction in local memory.
// With save_stats, mean_out[row] and rstd_out[row] = 1/sqrt(var + eps) are kept for the backward pass.
#define LN_THREADS 128

KERNEL void layernorm(GLOBAL const float* x, GLOBAL const float* gamma, GLOBAL const float* beta,
                      GLOBAL float* y, GLOBAL float* mean_out, GLOBAL float* rstd_out, int save_stats, int dim, float eps)
{
    LOCAL_ARRAY(float, partial, LN_THREADS);
    int row = GROUP_ID_X, tid = LOCAL_ID_X;
    GLOBAL const float* xr = x + row * dim;

    float s = 0.0f;
    for (int i = tid; i < dim; i += LN_THREADS) s += xr[i];
    partial[tid] = s;
    SYNC_THREADS;
    for (int stride = LN_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) partial[tid] += partial[tid + stride];
        SYNC_THREADS;
    }
    float mean = partial[0] / dim;
    SYNC_THREADS;

    float v = 0.0f;
    for (int i = tid; i < dim; i += LN_THREADS) { float d = xr[i] - mean; v += d * d; }
    partial[tid] = v;
    SYNC_THREADS;
    for (int stride = LN_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) partial[tid] += partial[tid + stride];
        SYNC_THREADS;
    }
    float rstd = 1.0f / sqrt(partial[0] / dim + eps);
    for (int i = tid; i < dim; i += LN_THREADS) y[row * dim + i] = (xr[i] - mean) * rstd * gamma[i] + beta[i];
    if (save_stats && tid == 0) { mean_out[row] = mean; rstd_out[row] = rstd; }
}

// Sums a value per work-item over the work-group (all LN_THREADS of them must call it).
// (A macro rather than a function: OpenCL would need the local array's address space spelled in its signature.)
#define GROUP_SUM(partial, value, result) do {                          \
        partial[tid] = (value);                                         \
        SYNC_THREADS;                                                   \
        for (int stride_ = LN_THREADS / 2; stride_ > 0; stride_ /= 2) { \
            if (tid < stride_) partial[tid] += partial[tid + stride_];  \
            SYNC_THREADS;                                               \
        }                                                               \
        result = partial[0];                                            \
        SYNC_THREADS;                                                   \
    } while (0)

// layernorm_backward: dx for one row (one work-group per row), from dy and the saved mean and rstd:
//   x_hat = (x - mean) * rstd,  g = dy * gamma,  dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))
// accumulate = 1 adds dx to what is there (the residual stream's gradient), 0 overwrites.
KERNEL void layernorm_backward(GLOBAL const float* dy, GLOBAL const float* x, GLOBAL const float* gamma,
                               GLOBAL const float* mean, GLOBAL const float* rstd, GLOBAL float* dx,
                               int dim, int accumulate)
{
    LOCAL_ARRAY(float, partial, LN_THREADS);
    int row = GROUP_ID_X, tid = LOCAL_ID_X;
    GLOBAL const float* dyr = dy + row * dim;
    GLOBAL const float* xr = x + row * dim;
    float mu = mean[row], s = rstd[row];
    float sg = 0.0f, sgx = 0.0f;
    for (int i = tid; i < dim; i += LN_THREADS) {
        float g = dyr[i] * gamma[i];
        sg += g;
        sgx += g * (xr[i] - mu) * s;
    }
    float mean_g, mean_gx;
    GROUP_SUM(partial, sg, mean_g);
    GROUP_SUM(partial, sgx, mean_gx);
    mean_g /= dim; mean_gx /= dim;
    for (int i = tid; i < dim; i += LN_THREADS) {
        float v = s * (dyr[i] * gamma[i] - mean_g - (xr[i] - mu) * s * mean_gx);
        dx[row * dim + i] = accumulate ? dx[row * dim + i] + v : v;
    }
}

// layernorm_param_grads: dgamma[j] += sum_r dy[r, j] * x_hat[r, j],  dbeta[j] += sum_r dy[r, j].
// One work-item per column, summing the rows in order (deterministic, no atomics).
KERNEL void layernorm_param_grads(GLOBAL const float* dy, GLOBAL const float* x, GLOBAL const float* mean,
                                  GLOBAL const float* rstd, GLOBAL float* dgamma, GLOBAL float* dbeta, int rows, int dim)
{
    int j = GLOBAL_ID_X;
    if (j >= dim) return;
    float g = 0.0f, b = 0.0f;
    for (int r = 0; r < rows; r++) {
        float d = dy[r * dim + j];
        g += d * (x[r * dim + j] - mean[r]) * rstd[r];
        b += d;
    }
    dgamma[j] += g;
    dbeta[j] += b;
}
