// Element-wise kernels. One work-item per element; x, y are flat float arrays of n elements.

// embedding: x[t, i] = wte[ids[t], i] + wpe[start + t, i]    (x: [T, dim], one work-item per element)
KERNEL void embedding(GLOBAL const int* ids, int start, GLOBAL const float* wte, GLOBAL const float* wpe,
                      GLOBAL float* x, int rows, int dim)
{
    int g = GLOBAL_ID_X;
    if (g >= rows * dim) return;
    int t = g / dim, i = g % dim;
    x[g] = wte[ids[t] * dim + i] + wpe[(start + t) * dim + i];
}

// gelu_new in place: x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
KERNEL void gelu(GLOBAL float* x, int n)
{
    int g = GLOBAL_ID_X;
    if (g >= n) return;
    float v = x[g];
    x[g] = 0.5f * v * (1.0f + tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
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
