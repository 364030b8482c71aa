// AdamW (decoupled weight decay), one work-item per parameter, as torch.optim.AdamW:
//   g = grad * grad_scale                       (grad_scale < 1 when the global norm is clipped)
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
//   p = p * decay - lr * (m / c1) / (sqrt(v / c2) + eps)
// decay = 1 - lr * weight_decay for matrices, 1 for biases and layernorm weights; c1, c2 = 1 - beta^step.
KERNEL void adamw(GLOBAL float* p, GLOBAL const float* grad, GLOBAL float* m, GLOBAL float* v, int n,
                  float lr, float beta1, float beta2, float eps, float decay, float c1, float c2, float grad_scale)
{
    int i = GLOBAL_ID_X;
    if (i >= n) return;
    float g = grad[i] * grad_scale;
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi; v[i] = vi;
    p[i] = p[i] * decay - lr * (mi / c1) / (sqrt(vi / c2) + eps);
}

// sum_squares: partial[slot * SS_GROUPS + group] = sum of x[i]^2 over the group's strided share of x.
// SS_GROUPS work-groups of SS_THREADS; the host adds the partials (in double) for the global gradient norm.
#define SS_THREADS 256
#define SS_GROUPS 64

KERNEL void sum_squares(GLOBAL const float* x, int n, GLOBAL float* partial, int slot)
{
    LOCAL_ARRAY(float, acc, SS_THREADS);
    int tid = LOCAL_ID_X;
    float s = 0.0f;
    for (int i = GROUP_ID_X * SS_THREADS + tid; i < n; i += SS_GROUPS * SS_THREADS) s += x[i] * x[i];
    acc[tid] = s;
    SYNC_THREADS;
    for (int stride = SS_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) acc[tid] += acc[tid + stride];
        SYNC_THREADS;
    }
    if (tid == 0) partial[slot * SS_GROUPS + GROUP_ID_X] = acc[0];
}
