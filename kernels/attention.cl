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

// ---- training: whole sequences, no cache -----------------------------------------------------------
//   qkv: [B * T, 3E], y: [B * T, E], probs (kept for the backward): [B, H, T, T], future positions 0.
//   mask (attention dropout, if has_mask): [B, H, T, T] of 0 or 1/(1 - p), scaling the weights that mix v.
// One work-item per (sequence, head, position t); the softmax row is written straight into probs.

KERNEL void attention_train(GLOBAL const float* qkv, GLOBAL float* y, GLOBAL float* probs,
                            GLOBAL const float* mask, int has_mask, int batch, int seq, int n_head, int head_dim)
{
    int g = GLOBAL_ID_X;
    if (g >= batch * n_head * seq) return;
    int t = g % seq, bh = g / seq, b = bh / n_head, h = bh % n_head;
    int E = n_head * head_dim;
    float scale = 1.0f / sqrt((float)head_dim);
    GLOBAL const float* q = qkv + (b * seq + t) * 3 * E + h * head_dim;
    GLOBAL float* p = probs + (bh * seq + t) * seq;
    float m = -INFINITY;
    for (int u = 0; u <= t; u++) {
        GLOBAL const float* k = qkv + (b * seq + u) * 3 * E + E + h * head_dim;
        float s = 0.0f;
        for (int d = 0; d < head_dim; d++) s += q[d] * k[d];
        p[u] = s * scale;
        m = fmax(m, p[u]);
    }
    float l = 0.0f;
    for (int u = 0; u <= t; u++) { p[u] = exp(p[u] - m); l += p[u]; }
    for (int u = 0; u <= t; u++) p[u] /= l;
    for (int u = t + 1; u < seq; u++) p[u] = 0.0f;
    GLOBAL const float* keep = mask + (bh * seq + t) * seq;
    for (int d = 0; d < head_dim; d++) {
        float acc = 0.0f;
        for (int u = 0; u <= t; u++)
            acc += p[u] * (has_mask ? keep[u] : 1.0f) * qkv[(b * seq + u) * 3 * E + 2 * E + h * head_dim + d];
        y[(b * seq + t) * E + h * head_dim + d] = acc;
    }
}

// attention_backward_query: for query position t (one work-item per (sequence, head, t)), with dp = dy_t . v_u:
//   ds[t, u] = p[t, u] (dp[t, u] - sum_u' p[t, u'] dp[t, u']) / sqrt(D)   (softmax's Jacobian; kept in dscores)
//   dq_t = sum_u ds[t, u] k_u
// With dropout, dp is scaled by the mask (the weights were). Writes dqkv's q columns.
KERNEL void attention_backward_query(GLOBAL const float* qkv, GLOBAL const float* probs, GLOBAL const float* mask, int has_mask,
                                     GLOBAL const float* dy, GLOBAL float* dscores, GLOBAL float* dqkv,
                                     int batch, int seq, int n_head, int head_dim)
{
    int g = GLOBAL_ID_X;
    if (g >= batch * n_head * seq) return;
    int t = g % seq, bh = g / seq, b = bh / n_head, h = bh % n_head;
    int E = n_head * head_dim;
    float scale = 1.0f / sqrt((float)head_dim);
    GLOBAL const float* p = probs + (bh * seq + t) * seq;
    GLOBAL const float* keep = mask + (bh * seq + t) * seq;
    GLOBAL const float* dyt = dy + (b * seq + t) * E + h * head_dim;
    GLOBAL float* ds = dscores + (bh * seq + t) * seq;
    float weighted = 0.0f;
    for (int u = 0; u <= t; u++) {
        GLOBAL const float* v = qkv + (b * seq + u) * 3 * E + 2 * E + h * head_dim;
        float dp = 0.0f;
        for (int d = 0; d < head_dim; d++) dp += dyt[d] * v[d];
        if (has_mask) dp *= keep[u];
        ds[u] = dp;
        weighted += p[u] * dp;
    }
    for (int u = 0; u <= t; u++) ds[u] = p[u] * (ds[u] - weighted) * scale;
    for (int d = 0; d < head_dim; d++) {
        float acc = 0.0f;
        for (int u = 0; u <= t; u++) acc += ds[u] * qkv[(b * seq + u) * 3 * E + E + h * head_dim + d];
        dqkv[(b * seq + t) * 3 * E + h * head_dim + d] = acc;
    }
}

// attention_backward_key_value: for key position u (one work-item per (sequence, head, u)), over the
// queries t >= u that saw it:  dk_u = sum_t ds[t, u] q_t,  dv_u = sum_t p[t, u] m[t, u] dy_t.
// Run after attention_backward_query (it reads dscores). Writes dqkv's k and v columns.
KERNEL void attention_backward_key_value(GLOBAL const float* qkv, GLOBAL const float* probs, GLOBAL const float* mask, int has_mask,
                                         GLOBAL const float* dy, GLOBAL const float* dscores, GLOBAL float* dqkv,
                                         int batch, int seq, int n_head, int head_dim)
{
    int g = GLOBAL_ID_X;
    if (g >= batch * n_head * seq) return;
    int u = g % seq, bh = g / seq, b = bh / n_head, h = bh % n_head;
    int E = n_head * head_dim;
    for (int d = 0; d < head_dim; d++) {
        float dk = 0.0f, dv = 0.0f;
        for (int t = u; t < seq; t++) {
            int pt = (bh * seq + t) * seq + u;
            dk += dscores[pt] * qkv[(b * seq + t) * 3 * E + h * head_dim + d];
            dv += probs[pt] * (has_mask ? mask[pt] : 1.0f) * dy[(b * seq + t) * E + h * head_dim + d];
        }
        dqkv[(b * seq + u) * 3 * E + E + h * head_dim + d] = dk;
        dqkv[(b * seq + u) * 3 * E + 2 * E + h * head_dim + d] = dv;
    }
}
