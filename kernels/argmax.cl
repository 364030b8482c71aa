// argmax of one row of logits: one work-group of AM_THREADS; each work-item scans a strided slice,
// then a tree reduction keeps the larger value (the lower index on ties, as torch.argmax).
// out[0] = the index. Only this one int crosses back to the host for a greedy step.
#define AM_THREADS 256

KERNEL void argmax(GLOBAL const float* x, int n, GLOBAL int* out)
{
    LOCAL_ARRAY(float, best_v, AM_THREADS);
    LOCAL_ARRAY(int, best_i, AM_THREADS);
    int tid = LOCAL_ID_X;
    float bv = -INFINITY; int bi = n;
    for (int i = tid; i < n; i += AM_THREADS)
        if (x[i] > bv || (x[i] == bv && i < bi)) { bv = x[i]; bi = i; }
    best_v[tid] = bv; best_i[tid] = bi;
    SYNC_THREADS;
    for (int stride = AM_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) {
            float ov = best_v[tid + stride]; int oi = best_i[tid + stride];
            if (ov > best_v[tid] || (ov == best_v[tid] && oi < best_i[tid])) { best_v[tid] = ov; best_i[tid] = oi; }
        }
        SYNC_THREADS;
    }
    if (tid == 0) out[0] = best_i[0];
}
