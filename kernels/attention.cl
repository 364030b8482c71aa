// Causal self-attention over a KV cache.
//   qkv: [rows, 3E] (q | k | v per row), k_cache / v_cache: [n_positions, E], y: [rows, E], E = n_head * head_dim.
//   Row r is absolute position p = past + r and attends to positions 0..p.

// kv_store: copy the new rows' k and v into the cache at positions past .. past + rows - 1.
KERNEL void kv_store(GLOBAL const float* qkv, GLOBAL float* k_cache, GLOBAL float* v_cache, int rows, int past, int E)
{
    int g = GLOBAL_ID_X;
    if (g >= rows * E) return;
    int r = g / E, i = g % E;
    k_cache[(past + r) * E + i] = qkv[r * 3 * E + E + i];
    v_cache[(past + r) * E + i] = qkv[r * 3 * E + 2 * E + i];
}

// attention: one work-item per (row, head). Flash-style online softmax: a running max m and sum l,
// rescaling the accumulated output whenever m grows, so scores are never stored. If want_probs, a
// second pass writes softmax weights to probs [n_head, rows, past + rows] (future positions = 0).
#define MAX_HEAD_DIM 128

KERNEL void attention(GLOBAL const float* qkv, GLOBAL const float* k_cache, GLOBAL const float* v_cache,
                      GLOBAL float* y, GLOBAL float* probs, int want_probs,
                      int rows, int past, int n_head, int head_dim)
{
    int g = GLOBAL_ID_X;
    if (g >= rows * n_head) return;
    int r = g / n_head, h = g % n_head;
    int E = n_head * head_dim, p = past + r, total = past + rows;
    GLOBAL const float* q = qkv + r * 3 * E + h * head_dim;
    float scale = sqrt((float)head_dim);

    float acc[MAX_HEAD_DIM];
    for (int d = 0; d < head_dim; d++) acc[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int t = 0; t <= p; t++) {
        GLOBAL const float* k = k_cache + t * E + h * head_dim;
        float s = 0.0f;
        for (int d = 0; d < head_dim; d++) s += q[d] * k[d];
        s /= scale;
        float m_new = fmax(m, s);
        float correction = exp(m - m_new), w = exp(s - m_new);
        GLOBAL const float* v = v_cache + t * E + h * head_dim;
        for (int d = 0; d < head_dim; d++) acc[d] = acc[d] * correction + w * v[d];
        l = l * correction + w;
        m = m_new;
    }
    for (int d = 0; d < head_dim; d++) y[r * E + h * head_dim + d] = acc[d] / l;

    if (want_probs) {
        GLOBAL float* pr = probs + (h * rows + r) * total;
        for (int t = 0; t < total; t++) {
            float w = 0.0f;
            if (t <= p) {
                GLOBAL const float* k = k_cache + t * E + h * head_dim;
                float s = 0.0f;
                for (int d = 0; d < head_dim; d++) s += q[d] * k[d];
                w = exp(s / scale - m) / l;
            }
            pr[t] = w;
        }
    }
}
