// Element-wise kernels. One work-item per element; x, y are flat float arrays of n elements.

// embedding: x[t, i] = wte[ids[t], i] + wpe[start + t % seq, i]    (x: [rows, dim], one work-item per element)
// seq = rows for one sequence; a training batch of B sequences of seq tokens restarts the positions each seq rows.
// wte is stored as wte_format (weights.cl).
KERNEL void embedding(GLOBAL const int* ids, int start, int seq, GLOBAL const float* wte, int wte_format, GLOBAL const float* wpe,
                      GLOBAL float* x, int rows, int dim)
{
    int g = GLOBAL_ID_X;
    if (g >= rows * dim) return;
    int t = g / dim, i = g % dim;
    x[g] = load_weight(wte, wte_format, ids[t] * dim + i) + wpe[(start + t % seq) * dim + i];
}

// embedding_backward: each row's gradient goes to its token's row of wte and its position's row of wpe:
//   dwte[ids[t], i] += dx[t, i],  dwpe[t % seq, i] += dx[t, i]
// One work-item per column i, walking the rows in order: a token that repeats adds into the same row
// without atomics, and the sum is the same on every run.
KERNEL void embedding_backward(GLOBAL const int* ids, GLOBAL const float* dx, GLOBAL float* dwte, GLOBAL float* dwpe,
                               int rows, int seq, int dim)
{
    int i = GLOBAL_ID_X;
    if (i >= dim) return;
    for (int t = 0; t < rows; t++) {
        float d = dx[t * dim + i];
        dwte[ids[t] * dim + i] += d;
        dwpe[(t % seq) * dim + i] += d;
    }
}

// gelu_new(v) = 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3)))   (also a matmul epilogue: matmul.cl)
float gelu_new(float v)
{
    return 0.5f * v * (1.0f + tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

// gelu_new in place
KERNEL void gelu(GLOBAL float* x, int n)
{
    int g = GLOBAL_ID_X;
    if (g >= n) return;
    x[g] = gelu_new(x[g]);
}

// gelu_backward in place: d = d * gelu_new'(x), with u = sqrt(2/pi) (x + 0.044715 x^3), t = tanh(u):
//   gelu_new'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
KERNEL void gelu_backward(GLOBAL const float* x, GLOBAL float* d, int n)
{
    int g = GLOBAL_ID_X;
    if (g >= n) return;
    float v = x[g];
    float t = tanh(0.7978845608028654f * (v + 0.044715f * v * v * v));
    d[g] *= 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * v * v);
}

// element-wise product in place: x *= y   (dropout: y is the mask, 0 or 1/(1 - p))
KERNEL void mul_inplace(GLOBAL float* x, GLOBAL const float* y, int n)
{
    int g = GLOBAL_ID_X;
    if (g < n) x[g] *= y[g];
}

// residual add in place: x += y
KERNEL void add_inplace(GLOBAL float* x, GLOBAL const float* y, int n)
{
    int g = GLOBAL_ID_X;
    if (g < n) x[g] += y[g];
}

// copy n floats: dst[dst_off + i] = src[src_off + i]
KERNEL void copy_floats(GLOBAL const float* src, int src_off, GLOBAL float* dst, int dst_off, int n)
{
    int g = GLOBAL_ID_X;
    if (g < n) dst[dst_off + g] = src[src_off + g];
}
