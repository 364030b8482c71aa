// Causal self-attention over a KV cache.
//   qkv: [rows, 3E] (q | k | v per row), y: [rows, E], E = n_head * head_dim.
//   k_cache / v_cache: [n_head, capacity, head_dim], head-major, so that one head's keys (and values) are one
//   contiguous block: a decode step reads it front to back instead of one 256-byte piece per position.
//   Row r is absolute position p = past + r and attends to positions 0..p.

// kv_store: copy the new rows' k and v into the cache at positions past .. past + rows - 1.
KERNEL void kv_store(GLOBAL const float* qkv, GLOBAL float* k_cache, GLOBAL float* v_cache,
                     int rows, int past, int n_head, int head_dim, int capacity)
{
    int g = GLOBAL_ID_X, E = n_head * head_dim;
    if (g >= rows * E) return;
    int r = g / E, i = g % E, h = i / head_dim, d = i % head_dim;
    int at = (h * capacity + past + r) * head_dim + d;     // cache[h, past + r, d]
    k_cache[at] = qkv[r * 3 * E + E + i];
    v_cache[at] = qkv[r * 3 * E + 2 * E + i];
}

// attention: one work-group of ATT_THREADS per (row, head), walking the positions 0..p in chunks of
// ATT_THREADS with an online softmax (a running max m and sum l; the output so far is rescaled by
// exp(m_old - m_new) whenever m grows), so no score array of the sequence's length is needed:
//   1. work-item i scores position t0 + i:            s = q . k_t / sqrt(head_dim)
//   2. every work-item reads the chunk's scores:       m_new = max(m, s...), w_t = exp(s_t - m_new)
//   3. work-item i owns output dims i, i + ATT_THREADS: acc_d = acc_d * exp(m - m_new) + sum_t w_t v_t[d]
//      (consecutive work-items read consecutive values of a row of v: coalesced)
// If want_probs, a last pass writes the softmax weights to probs [n_head, rows, past + rows] (future = 0).
#define ATT_THREADS 64
#define MAX_HEAD_DIM 128

KERNEL void attention(GLOBAL const float* qkv, GLOBAL const float* k_cache, GLOBAL const float* v_cache,
                      GLOBAL float* y, GLOBAL float* probs, int want_probs,
                      int rows, int past, int n_head, int head_dim, int capacity)
{
    LOCAL_ARRAY(float, q, MAX_HEAD_DIM);       // this row's query for head h
    LOCAL_ARRAY(float, w, ATT_THREADS);        // the chunk's scores, then their weights
    int g = GROUP_ID_X, tid = LOCAL_ID_X;
    int r = g / n_head, h = g % n_head;
    int E = n_head * head_dim, p = past + r, total = past + rows;
    GLOBAL const float* k_h = k_cache + h * capacity * head_dim;   // [capacity, head_dim]
    GLOBAL const float* v_h = v_cache + h * capacity * head_dim;
    float scale = sqrt((float)head_dim);
    for (int d = tid; d < head_dim; d += ATT_THREADS) q[d] = qkv[r * 3 * E + h * head_dim + d];
    SYNC_THREADS;

    float acc[MAX_HEAD_DIM / ATT_THREADS];
    for (int i = 0; i < MAX_HEAD_DIM / ATT_THREADS; i++) acc[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int t0 = 0; t0 <= p; t0 += ATT_THREADS) {
        int n = p + 1 - t0 < ATT_THREADS ? p + 1 - t0 : ATT_THREADS;
        if (tid < n) {
            GLOBAL const float* k = k_h + (t0 + tid) * head_dim;
            float s = 0.0f;
            for (int d = 0; d < head_dim; d++) s += q[d] * k[d];
            w[tid] = s / scale;
        }
        SYNC_THREADS;
        float m_new = m;
        for (int t = 0; t < n; t++) m_new = fmax(m_new, w[t]);
        float correction = exp(m - m_new);     // 0 on the first chunk (m = -inf)
        SYNC_THREADS;                          // all have read the scores before they become weights
        if (tid < n) w[tid] = exp(w[tid] - m_new);
        SYNC_THREADS;
        l *= correction;
        for (int t = 0; t < n; t++) l += w[t];
        for (int i = 0; i < MAX_HEAD_DIM / ATT_THREADS; i++) {
            int d = tid + i * ATT_THREADS;
            if (d < head_dim) {
                float a = acc[i] * correction;
                for (int t = 0; t < n; t++) a += w[t] * v_h[(t0 + t) * head_dim + d];
                acc[i] = a;
            }
        }
        m = m_new;
        SYNC_THREADS;                          // all are done with w before the next chunk's scores
    }
    for (int i = 0; i < MAX_HEAD_DIM / ATT_THREADS; i++) {
        int d = tid + i * ATT_THREADS;
        if (d < head_dim) y[r * E + h * head_dim + d] = acc[i] / l;
    }

    if (want_probs) {
        GLOBAL float* pr = probs + (h * rows + r) * total;
        for (int t = tid; t < total; t += ATT_THREADS) {
            float weight = 0.0f;
            if (t <= p) {
                GLOBAL const float* k = k_h + t * head_dim;
                float s = 0.0f;
                for (int d = 0; d < head_dim; d++) s += q[d] * k[d];
                weight = exp(s / scale - m) / l;
            }
            pr[t] = weight;
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
