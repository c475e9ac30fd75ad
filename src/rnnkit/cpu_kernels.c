/* rnnkit's native CPU recurrences (float32): the GRU's whole sequence, forward and
 * back-propagation through time, in one call.
 *
 * Why: for layers of tens of units, ATen's GRU loop spends its time dispatching eight
 * small tensor ops per step, not computing. Here each step is one matrix product (MKL's
 * sgemm, the one PyTorch links) plus one fused loop over the gates. Batch rows are
 * independent, so the batch is split across threads, each running the whole sequence
 * for its rows with a single-threaded sgemm: no synchronisation between steps.
 *
 * Layout is ATen's (torch.gru): gates r, z, n; w_hh (3H, H) row-major. The caller passes
 * xp = x W_ih^T + b_ih for all steps, time-major (T, B, 3H). Equations (reset after):
 *     r = s(xp_r + h W_hr^T + b_hr)      z = s(xp_z + h W_hz^T + b_hz)
 *     hn = h W_hn^T + b_hn               n = tanh(xp_n + r * hn)
 *     h' = n + z * (h - n)
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* From MKL inside libtorch_cpu (LP64 interface). */
extern void sgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                   const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
                   const float *beta, float *c, const int *ldc);
extern int MKL_Set_Num_Threads_Local(int nthreads); /* mkl.h: mkl_set_num_threads_local */

#ifdef RNNKIT_VECTOR_MATH
/* glibc's libmvec has SIMD versions of these; declaring them lets the gate loops vectorise. */
#pragma omp declare simd notinbranch
extern float expf(float);
#pragma omp declare simd notinbranch
extern float tanhf(float);
#endif

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Row-major C (m, n) = beta C + A (m, k) B^T, B (n, k). */
static void mm_abt(int m, int n, int k, const float *a, const float *b, float beta, float *c) {
    const float one = 1.0f;
    sgemm_("T", "N", &n, &m, &k, &one, b, &k, a, &k, &beta, c, &n);
}

/* Row-major C (m, n) = beta C + A (m, k) B, B (k, n). */
static void mm_ab(int m, int n, int k, const float *a, const float *b, float beta, float *c) {
    const float one = 1.0f;
    sgemm_("N", "N", &n, &m, &k, &one, b, &n, a, &k, &beta, c, &n);
}

typedef struct {
    int T, B, H;
    const float *xp, *w_hh, *b_hh, *h0; /* xp (T, B, 3H); b_hh (3H) or NULL; h0 (B, H) */
    float *hs;                          /* out: h_t for every step (T, B, H) */
    float *saved;                       /* out, training only (else NULL): r, z, n, hn (T, B, 4H) */
    const float *d_hs, *d_last;         /* backward: dL/dh_t (T, B, H) or NULL, dL/dh_T (B, H) or NULL */
    float *d_xp, *d_hp, *d_h0;          /* out: dL/dxp, dL/d(h W_hh^T + b_hh) (T, B, 3H), dL/dh0 (B, H) */
    int b0, b1;                         /* this worker's rows */
    int status;
} gru_job;

static void gru_forward_rows(gru_job *job) {
    const int T = job->T, B = job->B, H = job->H, G = 3 * H, nb = job->b1 - job->b0;
    float *g = malloc(sizeof(float) * (size_t)nb * G);
    if (!g) { job->status = 1; return; }
    for (int t = 0; t < T; ++t) {
        const float *h = t ? job->hs + ((size_t)(t - 1) * B + job->b0) * H : job->h0 + (size_t)job->b0 * H;
        const float *xp = job->xp + ((size_t)t * B + job->b0) * G;
        float *out = job->hs + ((size_t)t * B + job->b0) * H;
        float *saved = job->saved ? job->saved + ((size_t)t * B + job->b0) * 4 * H : NULL;
        for (int i = 0; i < nb; ++i) {
            if (job->b_hh) memcpy(g + (size_t)i * G, job->b_hh, sizeof(float) * G);
        }
        mm_abt(nb, G, H, h, job->w_hh, job->b_hh ? 1.0f : 0.0f, g);
        for (int i = 0; i < nb; ++i) {
            const float *xi = xp + (size_t)i * G, *gi = g + (size_t)i * G, *hi = h + (size_t)i * H;
            float *oi = out + (size_t)i * H, *si = saved ? saved + (size_t)i * 4 * H : NULL;
#pragma omp simd
            for (int j = 0; j < H; ++j) {
                float r = sigmoid(xi[j] + gi[j]);
                float z = sigmoid(xi[H + j] + gi[H + j]);
                float hn = gi[2 * H + j];
                float n = tanhf(xi[2 * H + j] + r * hn);
                oi[j] = n + z * (hi[j] - n);
                if (si) {
                    si[j] = r;
                    si[H + j] = z;
                    si[2 * H + j] = n;
                    si[3 * H + j] = hn;
                }
            }
        }
    }
    free(g);
}

/* Through time backwards, for this worker's rows:
 *     dn = dh (1 - z)          dz = dh (h - n)          da_n = dn (1 - n^2)
 *     da_r = da_n hn r (1 - r)  da_z = dz z (1 - z)
 *     dxp = [da_r, da_z, da_n]  dhp = [da_r, da_z, da_n r]  dh_prev = dh z + dhp W_hh
 */
static void gru_backward_rows(gru_job *job) {
    const int T = job->T, B = job->B, H = job->H, G = 3 * H, nb = job->b1 - job->b0;
    float *dh = job->d_h0 + (size_t)job->b0 * H;
    if (job->d_last) memcpy(dh, job->d_last + (size_t)job->b0 * H, sizeof(float) * (size_t)nb * H);
    else memset(dh, 0, sizeof(float) * (size_t)nb * H);
    for (int t = T - 1; t >= 0; --t) {
        const size_t row = (size_t)t * B + job->b0;
        const float *h = t ? job->hs + (row - B) * H : job->h0 + (size_t)job->b0 * H;
        const float *saved = job->saved + row * 4 * H;
        const float *d_out = job->d_hs ? job->d_hs + row * H : NULL;
        float *d_xp = job->d_xp + row * G, *d_hp = job->d_hp + row * G;
        for (int i = 0; i < nb; ++i) {
            const float *si = saved + (size_t)i * 4 * H, *hi = h + (size_t)i * H;
            const float *doi = d_out ? d_out + (size_t)i * H : NULL;
            float *dhi = dh + (size_t)i * H, *dxi = d_xp + (size_t)i * G, *dpi = d_hp + (size_t)i * G;
#pragma omp simd
            for (int j = 0; j < H; ++j) {
                float r = si[j], z = si[H + j], n = si[2 * H + j], hn = si[3 * H + j];
                float d = dhi[j] + (doi ? doi[j] : 0.0f);
                float da_n = d * (1.0f - z) * (1.0f - n * n);
                float da_r = da_n * hn * r * (1.0f - r);
                float da_z = d * (hi[j] - n) * z * (1.0f - z);
                dxi[j] = da_r;
                dxi[H + j] = da_z;
                dxi[2 * H + j] = da_n;
                dpi[j] = da_r;
                dpi[H + j] = da_z;
                dpi[2 * H + j] = da_n * r;
                dhi[j] = d * z;
            }
        }
        mm_ab(nb, H, G, d_hp, job->w_hh, 1.0f, dh);
    }
}

static void *gru_worker(void *arg) {
    gru_job *job = arg;
    int previous = MKL_Set_Num_Threads_Local(1);
    if (job->d_xp) gru_backward_rows(job);
    else gru_forward_rows(job);
    MKL_Set_Num_Threads_Local(previous);
    return NULL;
}

/* Run ``job`` over the batch split into ``nthreads`` row blocks; 0 on success. */
static int run_split(gru_job *job, int nthreads) {
    enum { MAX_THREADS = 64 };
    gru_job jobs[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (nthreads > job->B) nthreads = job->B;
    if (nthreads < 1) nthreads = 1;
    const int per = (job->B + nthreads - 1) / nthreads;
    for (int k = 0; k < nthreads; ++k) {
        jobs[k] = *job;
        jobs[k].b0 = k * per < job->B ? k * per : job->B;
        jobs[k].b1 = (k + 1) * per < job->B ? (k + 1) * per : job->B;
        jobs[k].status = 0;
    }
    if (nthreads == 1) { /* the calling thread keeps its own MKL threads */
        if (job->d_xp) gru_backward_rows(&jobs[0]);
        else gru_forward_rows(&jobs[0]);
        return jobs[0].status;
    }
    for (int k = 1; k < nthreads; ++k) started[k] = pthread_create(&threads[k], NULL, gru_worker, &jobs[k]) == 0;
    for (int k = 1; k < nthreads; ++k) {
        if (!started[k]) gru_worker(&jobs[k]); /* could not start a thread: do its rows here */
    }
    gru_worker(&jobs[0]);
    int status = jobs[0].status;
    for (int k = 1; k < nthreads; ++k) {
        if (started[k]) pthread_join(threads[k], NULL);
        status |= jobs[k].status;
    }
    return status;
}

int rnnkit_gru_forward(int T, int B, int H, const float *xp, const float *w_hh, const float *b_hh,
                       const float *h0, float *hs, float *saved, int nthreads) {
    gru_job job = {T, B, H, xp, w_hh, b_hh, h0, hs, saved, NULL, NULL, NULL, NULL, NULL, 0, B, 0};
    return run_split(&job, nthreads);
}

int rnnkit_gru_backward(int T, int B, int H, const float *w_hh, const float *h0, const float *hs,
                        const float *saved, const float *d_hs, const float *d_last, float *d_xp, float *d_hp,
                        float *d_h0, int nthreads) {
    gru_job job = {T, B, H, NULL, w_hh, NULL, h0, (float *)hs, (float *)saved, d_hs, d_last, d_xp, d_hp, d_h0,
                   0, B, 0};
    return run_split(&job, nthreads);
}
