// layernorm: y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta   (biased variance)
// One work-group of LN_THREADS work-items per row; mean and variance by a tree reduction in local memory.
#define LN_THREADS 128

KERNEL void layernorm(GLOBAL const float* x, GLOBAL const float* gamma, GLOBAL const float* beta,
                      GLOBAL float* y, int dim, float eps)
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
}
