/* rnnkit's native CPU recurrences (float32): a whole sequence of a GRU or SimpleRNN,
 * forward and back-propagation through time, in one call each.
 *
 * Why: for layers of tens of units, ATen's loops spend their time dispatching small tensor
 * ops, not computing. Here each step is one matrix product (MKL's sgemm, the one PyTorch
 * links) and one fused loop over the gates. Batch rows are independent, so the batch is
 * split across threads, each running the whole sequence for its rows with a
 * single-threaded sgemm: the threads never wait for each other.
 *
 * (The LSTM was written the same way and measured: slower than oneDNN's LSTM in inference,
 * level in training, so it stays on oneDNN.)
 *
 * Layouts are ATen's (torch.gru / torch.rnn_tanh): w_hh (k*H, H) row-major, GRU gates
 * r, z, n. The caller passes xp = x W_ih^T for every step, time-major (T, B, k*H), and the
 * bias b_x added to it (a SimpleRNN's two biases summed; the GRU's b_ih, while its b_hh
 * sits inside r * (...)). Equations:
 *
 *   GRU:       r = s(xp_r + b_ir + h W_hr^T + b_hr)      z = s(xp_z + b_iz + h W_hz^T + b_hz)
 *              hn = h W_hn^T + b_hn                      n = tanh(xp_n + b_in + r * hn)
 *              h' = n + z * (h - n)
 *   SimpleRNN: h' = act(xp + b_x + h W_hh^T), act = tanh or relu
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* From MKL inside libtorch_cpu (LP64 interface). */
extern int MKL_Set_Num_Threads_Local(int nthreads); /* mkl.h's mkl_set_num_threads_local */
/* MKL's packed GEMM: the recurrent weights are laid out for the kernel once per call, not per step. */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112, PACKED = 151, B_MATRIX = 162 };
extern size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k);
extern void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha,
                             const float *src, int ld, float *dest);
extern void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float *a, int lda,
                                const float *b, int ldb, float beta, float *c, int ldc);

#ifdef RNNKIT_VECTOR_MATH
/* glibc's libmvec has SIMD versions of these; declaring them lets the gate loops vectorise. */
#pragma omp declare simd notinbranch
extern float expf(float);
#pragma omp declare simd notinbranch
extern float tanhf(float);
#endif

enum { GRU = 0, RNN_TANH = 1, RNN_RELU = 2 };

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* GRU unit j of one row (reset_after): r = sigmoid(x_r + a_r), z = sigmoid(x_z + a_z),
   hn = a_n (h W_hn + b_hn), n = tanh(x_n + r * hn); returns h' = n + z * (h - n). x: the input
   projection without its bias bx, a: h W_hh without its bias bh. */
static inline float gru_unit(const float *x, const float *bx, const float *a, const float *bh, float h, int H,
                             int j, float *r, float *z, float *n, float *hn) {
    *r = sigmoid(x[j] + bx[j] + a[j] + bh[j]);
    *z = sigmoid(x[H + j] + bx[H + j] + a[H + j] + bh[H + j]);
    *hn = a[2 * H + j] + bh[2 * H + j];
    *n = tanhf(x[2 * H + j] + bx[2 * H + j] + *r * *hn);
    return *n + *z * (h - *n);
}

/* B (k, n), or B^T when ``transposed`` (row-major (n, k)), packed for C (m, n) = A (m, k) B. */
static float *pack_b(int m, int n, int k, const float *b, int transposed) {
    float *packed = malloc(cblas_sgemm_pack_get_size(B_MATRIX, m, n, k));
    if (packed) cblas_sgemm_pack(ROW_MAJOR, B_MATRIX, transposed ? TRANS : NO_TRANS, m, n, k, 1.0f, b,
                                 transposed ? k : n, packed);
    return packed;
}

/* Row-major C (m, n) = beta C + A (m, k) B, B packed by pack_b. */
static void mm_packed(int m, int n, int k, const float *a, const float *packed, float beta, float *c) {
    cblas_sgemm_compute(ROW_MAJOR, NO_TRANS, PACKED, m, n, k, a, k, packed, n, beta, c, n);
}

static int gate_count(int kind) { return kind == GRU ? 3 : 1; }

/* What the backward pass reads per step and row besides h: GRU r, z, n, hn. */
static int saved_width(int kind) { return kind == GRU ? 4 : 0; }

typedef struct {
    int kind, T, B, H;
    const float *xp, *w_hh;             /* xp (T, B, kH) */
    const float *b_x, *b_hh;            /* (kH), added to xp, or NULL; (3H), GRU only, or NULL */
    const float *h0;                    /* (B, H) */
    float *hs;                          /* h_t for every step (T, B, H) */
    float *saved;                       /* training only, else NULL: (T, B, saved_width * H) */
    const float *d_hs, *d_h_last;       /* backward in: dL/dh_t (T, B, H), dL/dh_T (B, H), or NULL */
    float *d_xp, *d_hp;                 /* backward out: dL/dxp (T, B, kH); GRU: dL/d(h W_hh^T + b_hh) */
    float *d_h0;                        /* (B, H) */
    int b0, b1;                         /* this worker's rows */
    int status;
} job_t;

#define ROWS(p, t, width) ((p) + ((size_t)(t) * job->B + job->b0) * (size_t)(width))

static void forward_rows(job_t *job) {
    const int T = job->T, H = job->H, G = gate_count(job->kind) * H, nb = job->b1 - job->b0;
    const int S = saved_width(job->kind) * H, kind = job->kind;
    if (nb <= 0) return;
    float *a = malloc(sizeof(float) * (size_t)nb * G), *w = pack_b(nb, G, H, job->w_hh, 1);
    float *bx = calloc(G, sizeof(float)), *bh = calloc(G, sizeof(float)); /* absent biases are zeros */
    if (!a || !w || !bx || !bh) { free(a); free(w); free(bx); free(bh); job->status = 1; return; }
    if (job->b_x) memcpy(bx, job->b_x, sizeof(float) * G);
    if (job->b_hh) memcpy(bh, job->b_hh, sizeof(float) * G);
    for (int t = 0; t < T; ++t) {
        const float *h = t ? ROWS(job->hs, t - 1, H) : job->h0 + (size_t)job->b0 * H;
        const float *xp = ROWS(job->xp, t, G);
        float *out = ROWS(job->hs, t, H);
        float *saved = job->saved ? ROWS(job->saved, t, S) : NULL;
        mm_packed(nb, G, H, h, w, 0.0f, a);
        for (int i = 0; i < nb; ++i) {
            const float *xi = xp + (size_t)i * G, *ai = a + (size_t)i * G, *hi = h + (size_t)i * H;
            float *oi = out + (size_t)i * H, *si = saved ? saved + (size_t)i * S : NULL;
            if (kind == GRU) {
                /* two loops, not one with an ``if (si)`` inside: a conditional store keeps GCC from
                   vectorising the loop (and so from libmvec's SIMD expf) on CPUs without AVX-512 */
                float r, z, n, hn;
                if (si) {
#pragma omp simd private(r, z, n, hn)
                    for (int j = 0; j < H; ++j) {
                        oi[j] = gru_unit(xi, bx, ai, bh, hi[j], H, j, &r, &z, &n, &hn);
                        si[j] = r; si[H + j] = z; si[2 * H + j] = n; si[3 * H + j] = hn;
                    }
                } else {
#pragma omp simd private(r, z, n, hn)
                    for (int j = 0; j < H; ++j) oi[j] = gru_unit(xi, bx, ai, bh, hi[j], H, j, &r, &z, &n, &hn);
                }
            } else if (kind == RNN_TANH) {
#pragma omp simd
                for (int j = 0; j < H; ++j) oi[j] = tanhf(xi[j] + bx[j] + ai[j]);
            } else {
#pragma omp simd
                for (int j = 0; j < H; ++j) oi[j] = fmaxf(xi[j] + bx[j] + ai[j], 0.0f);
            }
        }
    }
    free(a);
    free(w);
    free(bx);
    free(bh);
}

/* Through time backwards, for this worker's rows; dh carries dL/dh_{t-1}:
 *   GRU:   dn = dh (1 - z)   da_n = dn (1 - n^2)   da_r = da_n hn r (1 - r)
 *          da_z = dh (h - n) z (1 - z)
 *          dxp = [da_r, da_z, da_n]   dhp = [da_r, da_z, da_n r]   dh' = dh z + dhp W_hh
 *   SimpleRNN: da = dh act'(h)   dxp = da   dh' = da W_hh
 */
static void backward_rows(job_t *job) {
    const int T = job->T, H = job->H, G = gate_count(job->kind) * H, nb = job->b1 - job->b0;
    const int S = saved_width(job->kind) * H, kind = job->kind;
    if (nb <= 0) return;
    float *w = pack_b(nb, H, G, job->w_hh, 0);
    if (!w) { job->status = 1; return; }
    float *dh = job->d_h0 + (size_t)job->b0 * H;
    if (job->d_h_last) memcpy(dh, job->d_h_last + (size_t)job->b0 * H, sizeof(float) * (size_t)nb * H);
    else memset(dh, 0, sizeof(float) * (size_t)nb * H);
    for (int t = T - 1; t >= 0; --t) {
        const float *h_prev = t ? ROWS(job->hs, t - 1, H) : job->h0 + (size_t)job->b0 * H;
        const float *h = ROWS(job->hs, t, H), *saved = job->saved ? ROWS(job->saved, t, S) : NULL;
        const float *d_out = job->d_hs ? ROWS(job->d_hs, t, H) : NULL;
        float *d_xp = ROWS(job->d_xp, t, G), *d_hp = kind == GRU ? ROWS(job->d_hp, t, G) : d_xp;
        for (int i = 0; i < nb; ++i) {
            const size_t hi = (size_t)i * H, gi = (size_t)i * G;
            const float *si = saved ? saved + (size_t)i * S : NULL, *doi = d_out ? d_out + hi : NULL;
            float *dhi = dh + hi, *dxi = d_xp + gi, *dpi = d_hp + gi;
            if (kind == GRU) {
#pragma omp simd
                for (int j = 0; j < H; ++j) {
                    float r = si[j], z = si[H + j], n = si[2 * H + j], hn = si[3 * H + j];
                    float d = dhi[j] + (doi ? doi[j] : 0.0f);
                    float da_n = d * (1.0f - z) * (1.0f - n * n);
                    float da_r = da_n * hn * r * (1.0f - r);
                    float da_z = d * (h_prev[hi + j] - n) * z * (1.0f - z);
                    dxi[j] = dpi[j] = da_r;
                    dxi[H + j] = dpi[H + j] = da_z;
                    dxi[2 * H + j] = da_n;
                    dpi[2 * H + j] = da_n * r;
                    dhi[j] = d * z;
                }
            } else {
                const float *hj = h + hi;
#pragma omp simd
                for (int j = 0; j < H; ++j) {
                    float d = dhi[j] + (doi ? doi[j] : 0.0f);
                    dxi[j] = kind == RNN_TANH ? d * (1.0f - hj[j] * hj[j]) : (hj[j] > 0.0f ? d : 0.0f);
                }
            }
        }
        mm_packed(nb, H, G, d_hp, w, kind == GRU ? 1.0f : 0.0f, dh);
    }
    free(w);
}

static void *worker(void *arg) {
    job_t *job = arg;
    int previous = MKL_Set_Num_Threads_Local(1);
    if (job->d_xp) backward_rows(job);
    else forward_rows(job);
    MKL_Set_Num_Threads_Local(previous);
    return NULL;
}

/* Run ``job`` over the batch split into ``nthreads`` row blocks; 0 on success. */
static int run_split(job_t *job, int nthreads) {
    enum { MAX_THREADS = 64 };
    job_t jobs[MAX_THREADS];
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
        if (job->d_xp) backward_rows(&jobs[0]);
        else forward_rows(&jobs[0]);
        return jobs[0].status;
    }
    for (int k = 1; k < nthreads; ++k) started[k] = pthread_create(&threads[k], NULL, worker, &jobs[k]) == 0;
    for (int k = 1; k < nthreads; ++k) {
        if (!started[k]) worker(&jobs[k]); /* could not start a thread: do its rows here */
    }
    worker(&jobs[0]);
    int status = jobs[0].status;
    for (int k = 1; k < nthreads; ++k) {
        if (started[k]) pthread_join(threads[k], NULL);
        status |= jobs[k].status;
    }
    return status;
}

int rnnkit_forward(int kind, int T, int B, int H, const float *xp, const float *w_hh, const float *b_x,
                   const float *b_hh, const float *h0, float *hs, float *saved, int nthreads) {
    job_t job = {kind, T, B, H, xp, w_hh, b_x, b_hh, h0, hs, saved};
    return run_split(&job, nthreads);
}

int rnnkit_backward(int kind, int T, int B, int H, const float *w_hh, const float *h0, const float *hs,
                    const float *saved, const float *d_hs, const float *d_h_last, float *d_xp, float *d_hp,
                    float *d_h0, int nthreads) {
    job_t job = {kind, T, B, H, NULL, w_hh, NULL, NULL, h0, (float *)hs, (float *)saved, d_hs, d_h_last, d_xp,
                 d_hp, d_h0};
    return run_split(&job, nthreads);
}
