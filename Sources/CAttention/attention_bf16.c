// Fused bf16 attention for one head: S = scale · Q·Kᵀ and O = P·V on AVX-512 BF16 dot products
// (vdpbf16ps: two bf16 products added into a Float32 lane), softmax and accumulation in Float32.
//
// Layouts. vdpbf16ps multiplies pairs of bf16 along the reduction dimension, so each product's right
// operand is packed "pair-interleaved": for Q·Kᵀ (reduction over the head width) K becomes
// kp[pair p][key j] = (k[j][2p], k[j][2p+1]); for P·V (reduction over keys) V becomes
// vp[key pair jp][column c] = (v[2jp][c], v[2jp+1][c]). The left operand (a row of Q or of P) is read a
// pair at a time and broadcast. Register tile: 6 rows × 64 columns = 24 Float32 accumulators.
//
// Online softmax (as flash attention): keys are taken CHUNK at a time; each query row keeps its running
// maximum m and sum l; a new chunk's maximum rescales the row's output and sum by exp(m_old − m_new).
// Nothing of size [Lq, Lk] exists, and one block's scores, probabilities and output stay in L1/L2.

#include "attention_bf16.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))
#define INLINE static inline __attribute__((always_inline))

enum {
    ROWS = 48,      // query rows per block
    CHUNK = 256,    // keys per softmax chunk
    TILE_ROWS = 6,  // rows of a register tile
    TILE_COLS = 64  // columns of a register tile (4 vectors of 16)
};

int tl_attention_bf16_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }
static int padded_keys(int lk) { return (lk + TILE_COLS - 1) / TILE_COLS * TILE_COLS; }

// Scratch layout, in order: kp, vp (packed K and V), q block (bf16), scores, probabilities (bf16),
// output accumulator, running max and sum.
typedef struct {
    uint32_t *kp, *vp, *qb;
    float *s;
    uint16_t *p;
    float *o, *m, *l;
} Work;

static Work carve(void *scratch, int lk, int d) {
    size_t lkp = (size_t)padded_keys(lk);
    char *at = (char *)scratch;
    Work w;
    w.kp = (uint32_t *)at; at += align64(lkp * d * 2);
    w.vp = (uint32_t *)at; at += align64(lkp * d * 2);
    w.qb = (uint32_t *)at; at += align64((size_t)ROWS * d * 2);
    w.s = (float *)at;     at += align64((size_t)ROWS * CHUNK * 4);
    w.p = (uint16_t *)at;  at += align64((size_t)ROWS * CHUNK * 2);
    w.o = (float *)at;     at += align64((size_t)ROWS * d * 4);
    w.m = (float *)at;     at += align64((size_t)ROWS * 4);
    w.l = (float *)at;
    return w;
}

size_t tl_attention_bf16_scratch(int lk, int d) {
    size_t lkp = (size_t)padded_keys(lk);
    return 2 * align64(lkp * d * 2) + align64((size_t)ROWS * d * 2) + align64((size_t)ROWS * CHUNK * 4) +
           align64((size_t)ROWS * CHUNK * 2) + align64((size_t)ROWS * d * 4) + 2 * align64((size_t)ROWS * 4);
}

// Round-to-nearest-even bf16 of one float (the hardware conversion, for scalars).
TARGET INLINE uint16_t bf16(float x) {
    __m128bh r = _mm_cvtneps_pbh(_mm_set_ss(x));
    uint16_t bits;
    memcpy(&bits, &r, 2);
    return bits;
}

TARGET INLINE uint32_t bf16_pair(float lo, float hi) {
    return (uint32_t)bf16(lo) | ((uint32_t)bf16(hi) << 16);
}

// 32 floats → 32 bf16 in order.
TARGET INLINE __m512i bf16x32(const float *x) {
    return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + 16), _mm512_loadu_ps(x));
}

// e^x for x ≤ 0 (scores minus their row maximum), relative error ≈ 2e-7; x below −87 gives 0.
TARGET INLINE __m512 exp_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f), r);
    __m512 y = _mm512_set1_ps(1.0f / 720);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 120));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 24));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 6));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(0.5f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

// Two rows of 16 keys each, interleaved into 16 pairs (row a low, row b high).
TARGET INLINE __m512i interleave_rows(__m512 a, __m512 b) {
    __m512 lo = _mm512_permutex2var_ps(a, _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0), b);
    __m512 hi = _mm512_permutex2var_ps(a, _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8), b);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

// Rows 0 ..< lk of x (keys) as [d/2][lkp]: pairs along the head width, keys along each line (how K
// enters Q·Kᵀ); keys past lk are zero.
TARGET static void pack_width_pairs(const float *x, long stride, int lk, int d, uint32_t *dst) {
    int lkp = padded_keys(lk), pairs = d / 2;
    uint32_t row[pairs] __attribute__((aligned(64)));
    for (int j = 0; j < lkp; j++) {
        if (j < lk)
            for (int c = 0; c < d; c += 32) _mm512_store_si512(row + c / 2, bf16x32(x + (long)j * stride + c));
        else
            memset(row, 0, sizeof row);
        for (int p = 0; p < pairs; p++) dst[(long)p * lkp + j] = row[p];
    }
}

// Rows 0 ..< lk of x as [lkp/2][d]: two consecutive keys interleaved per column (how V enters P·V).
TARGET static void pack_key_pairs(const float *x, long stride, int lk, int d, uint32_t *dst) {
    int lkp = padded_keys(lk);
    for (int jp = 0; jp < lkp / 2; jp++) {
        int j0 = 2 * jp, j1 = 2 * jp + 1;
        uint32_t *out = dst + (long)jp * d;
        if (j1 < lk) {
            const float *r0 = x + (long)j0 * stride, *r1 = x + (long)j1 * stride;
            for (int c = 0; c < d; c += 16)
                _mm512_storeu_si512(out + c, interleave_rows(_mm512_loadu_ps(r0 + c), _mm512_loadu_ps(r1 + c)));
        } else {
            for (int c = 0; c < d; c++) out[c] = j0 < lk ? bf16_pair(x[(long)j0 * stride + c], 0) : 0;
        }
    }
}

// c[r][0 ..< 64] (+)= Σ_p a[r·as + p] · b[p·bs ..< p·bs + 64] for r < R: each a element is a bf16 pair
// broadcast to all lanes, each b element a bf16 pair of the same reduction indices. Every product of the
// forward and the backward pass is this tile over different layouts.
TARGET INLINE void tile(int R, const uint32_t *a, long as, const uint32_t *b, long bs, int pairs,
                        float *c, long cs, int accumulate) {
    __m512 acc[TILE_ROWS][4];
    for (int r = 0; r < R; r++)
        for (int x = 0; x < 4; x++) acc[r][x] = accumulate ? _mm512_loadu_ps(c + r * cs + 16 * x) : _mm512_setzero_ps();
    for (int p = 0; p < pairs; p++) {
        const uint32_t *br = b + (long)p * bs;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(br), b1 = (__m512bh)_mm512_loadu_si512(br + 16);
        __m512bh b2 = (__m512bh)_mm512_loadu_si512(br + 32), b3 = (__m512bh)_mm512_loadu_si512(br + 48);
        for (int r = 0; r < R; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r * as + p]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], x, b2);
            acc[r][3] = _mm512_dpbf16_ps(acc[r][3], x, b3);
        }
    }
    for (int r = 0; r < R; r++)
        for (int x = 0; x < 4; x++) _mm512_storeu_ps(c + r * cs + 16 * x, acc[r][x]);
}

// C[rows][cols] (+)= A[rows][pairs] · B[pairs][cols] with cols a multiple of 64, in register tiles; the
// row count of the last tile is dispatched to a constant so its accumulators stay in registers.
TARGET static void product(int rows, int cols, const uint32_t *a, long as, const uint32_t *b, long bs, int pairs,
                           float *c, long cs, int accumulate) {
    for (int j = 0; j < cols; j += TILE_COLS)
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            const uint32_t *ar = a + r0 * as, *bj = b + j;
            float *cr = c + r0 * cs + j;
            switch (rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS) {
            case 6: tile(6, ar, as, bj, bs, pairs, cr, cs, accumulate); break;
            case 5: tile(5, ar, as, bj, bs, pairs, cr, cs, accumulate); break;
            case 4: tile(4, ar, as, bj, bs, pairs, cr, cs, accumulate); break;
            case 3: tile(3, ar, as, bj, bs, pairs, cr, cs, accumulate); break;
            case 2: tile(2, ar, as, bj, bs, pairs, cr, cs, accumulate); break;
            default: tile(1, ar, as, bj, bs, pairs, cr, cs, accumulate); break;
            }
        }
}

// The largest of s[0 ..< n].
TARGET INLINE float row_max(const float *s, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int full = n / 16 * 16;
    for (int j = 0; j < full; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + j));
    if (n > full) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, (__mmask16)((1u << (n - full)) - 1), s + full));
    return _mm512_reduce_max_ps(mx);
}

// e^(scale·s[j] − m) for the 16 keys from j, zero past key n.
TARGET INLINE __m512 shifted_exp(const float *s, int j, int n, __m512 scale, __m512 m) {
    if (j + 16 <= n) return exp_nonpositive(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), scale, m));
    if (j >= n) return _mm512_setzero_ps();
    __mmask16 valid = (__mmask16)((1u << (n - j)) - 1);
    return _mm512_maskz_mov_ps(valid, exp_nonpositive(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(valid, s + j), scale, m)));
}

// One chunk of keys [j0, j0 + n) for `rows` query rows: raw scores, online softmax, P·V into o.
TARGET static void chunk(Work w, int rows, int lkp, int d, int j0, int n, float scale) {
    int pairs = d / 2, width = (n + TILE_COLS - 1) / TILE_COLS * TILE_COLS;
    product(rows, width, w.qb, pairs, w.kp + j0, lkp, pairs, w.s, CHUNK, 0);
    __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < rows; r++) {
        const float *s = w.s + r * CHUNK;
        uint16_t *p = w.p + r * CHUNK;
        float m_new = fmaxf(w.m[r], scale * row_max(s, n));
        float alpha = expf(w.m[r] - m_new);  // 0 for the first chunk (m = −∞)
        __m512 mv = _mm512_set1_ps(m_new), sum = _mm512_setzero_ps();
        for (int j = 0; j < width; j += 16) {
            __m512 e = shifted_exp(s, j, n, sc, mv);
            sum = _mm512_add_ps(sum, e);
            _mm256_storeu_si256((__m256i *)(p + j), (__m256i)_mm512_cvtneps_pbh(e));
        }
        w.l[r] = w.l[r] * alpha + _mm512_reduce_add_ps(sum);
        w.m[r] = m_new;
        if (alpha != 1.0f) {
            __m512 av = _mm512_set1_ps(alpha);
            float *o = w.o + r * d;
            for (int c = 0; c < d; c += 16) _mm512_storeu_ps(o + c, _mm512_mul_ps(_mm512_loadu_ps(o + c), av));
        }
    }
    for (int c0 = 0; c0 < d; c0 += TILE_COLS)
        product(rows, TILE_COLS, (const uint32_t *)w.p, CHUNK / 2, w.vp + (long)(j0 / 2) * d + c0, d, width / 2,
                w.o + c0, d, 1);
}

TARGET void tl_attention_bf16_forward(const float *q, const float *k, const float *v, float *out,
                                      int lk, int d, long q_stride, long kv_stride, int q_begin, int q_end,
                                      float scale, void *scratch) {
    Work w = carve(scratch, lk, d);
    int lkp = padded_keys(lk), pairs = d / 2;
    pack_width_pairs(k, kv_stride, lk, d, w.kp);
    pack_key_pairs(v, kv_stride, lk, d, w.vp);
    for (int i0 = q_begin; i0 < q_end; i0 += ROWS) {
        int rows = q_end - i0 < ROWS ? q_end - i0 : ROWS;
        for (int r = 0; r < rows; r++) {
            const float *qr = q + (long)(i0 + r) * q_stride;
            for (int c = 0; c < d; c += 32) _mm512_storeu_si512(w.qb + r * pairs + c / 2, bf16x32(qr + c));
            w.m[r] = -INFINITY;
            w.l[r] = 0;
        }
        memset(w.o, 0, (size_t)rows * d * sizeof(float));
        for (int j0 = 0; j0 < lk; j0 += CHUNK) chunk(w, rows, lkp, d, j0, lk - j0 < CHUNK ? lk - j0 : CHUNK, scale);
        for (int r = 0; r < rows; r++) {
            __m512 inv = _mm512_set1_ps(1.0f / w.l[r]);
            float *dst = out + (long)(i0 + r) * q_stride;
            for (int c = 0; c < d; c += 16) _mm512_storeu_ps(dst + c, _mm512_mul_ps(_mm512_loadu_ps(w.o + r * d + c), inv));
        }
    }
}

// ---- Backward ----------------------------------------------------------------------------------------
//
// Per block of BROWS query rows, all keys at once (scores and their gradients for one block stay in
// L2): S = Q·Kᵀ and dP = dO·Vᵀ; P = softmax(scale·S) row by row, D = Σ_j P·dP, dS = P ⊙ (dP − D) · scale;
// then dQ = dS·K for the block, and dVᵀ += dOᵀ·P, dKᵀ += Qᵀ·dS accumulated over blocks for the head.
// The transposed forms keep every product a tile over pair-packed operands: P and dS are written with
// rows paired (two query rows interleaved per key), which is the right operand of dOᵀ·P and Qᵀ·dS.

enum { BROWS = 48 };  // query rows per backward block (even: rows are paired)

typedef struct {
    uint32_t *kp, *kv, *vt;   // K as [d/2][lkp], K as [lkp/2][d], V as [d/2][lkp]
    float *dkt, *dvt;         // dKᵀ, dVᵀ accumulators [d][lkp]
    float *s, *dp;            // scores, dP [BROWS][lkp]
    uint32_t *pi, *dsi;       // P, dS with rows paired [BROWS/2][lkp]
    uint16_t *dsn;            // dS [BROWS][lkp] bf16
    uint32_t *qb, *ob;        // Q, dO block [BROWS][d/2]
    uint32_t *qt, *ot;        // Qᵀ, dOᵀ block with rows paired [d][BROWS/2]
    float *dq;                // dQ block [BROWS][d]
} BackWork;

static BackWork carve_back(void *scratch, int lk, int d) {
    size_t lkp = (size_t)padded_keys(lk), packed = align64(lkp * d * 2), block = align64((size_t)BROWS * lkp * 4);
    char *at = (char *)scratch;
    BackWork w;
    w.kp = (uint32_t *)at; at += packed;
    w.kv = (uint32_t *)at; at += packed;
    w.vt = (uint32_t *)at; at += packed;
    w.dkt = (float *)at; at += 2 * packed;
    w.dvt = (float *)at; at += 2 * packed;
    w.s = (float *)at; at += block;
    w.dp = (float *)at; at += block;
    w.pi = (uint32_t *)at; at += block / 2;
    w.dsi = (uint32_t *)at; at += block / 2;
    w.dsn = (uint16_t *)at; at += block / 2;
    w.qb = (uint32_t *)at; at += align64((size_t)BROWS * d * 2);
    w.ob = (uint32_t *)at; at += align64((size_t)BROWS * d * 2);
    w.qt = (uint32_t *)at; at += align64((size_t)BROWS * d * 2);
    w.ot = (uint32_t *)at; at += align64((size_t)BROWS * d * 2);
    w.dq = (float *)at;
    return w;
}

size_t tl_attention_bf16_backward_scratch(int lk, int d) {
    size_t lkp = (size_t)padded_keys(lk), packed = align64(lkp * d * 2), block = align64((size_t)BROWS * lkp * 4);
    return 7 * packed + 2 * block + 3 * (block / 2) + 4 * align64((size_t)BROWS * d * 2) + align64((size_t)BROWS * d * 4);
}

// rows × d floats (row stride `stride`) into [rows][d/2] pairs along d; rows up to `padded` are zero.
TARGET static void pairs_along_width(const float *x, long stride, int rows, int padded, int d, uint32_t *dst) {
    for (int r = 0; r < padded; r++)
        for (int c = 0; c < d; c += 32) {
            __m512i v = r < rows ? bf16x32(x + (long)r * stride + c) : _mm512_setzero_si512();
            _mm512_storeu_si512(dst + r * (d / 2) + c / 2, v);
        }
}

// The same rows transposed with rows paired: dst[c][rp] = (x[2rp][c], x[2rp+1][c]), rows past `rows` zero.
TARGET static void pairs_across_rows_transposed(const float *x, long stride, int rows, int padded, int d, uint32_t *dst) {
    for (int rp = 0; rp < padded / 2; rp++) {
        const float *r0 = x + (long)(2 * rp) * stride, *r1 = x + (long)(2 * rp + 1) * stride;
        for (int c = 0; c < d; c++) {
            float lo = 2 * rp < rows ? r0[c] : 0, hi = 2 * rp + 1 < rows ? r1[c] : 0;
            dst[c * (padded / 2) + rp] = bf16_pair(lo, hi);
        }
    }
}

// Softmax and its gradient for the block's rows (in place in s and dp as P and dS in Float32), then the
// bf16 forms the products read. Padded rows and keys are zero.
TARGET static void block_gradients(BackWork w, int rows, int padded, int lk, int lkp, float scale) {
    __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < padded; r++) {
        float *s = w.s + (long)r * lkp, *dp = w.dp + (long)r * lkp;
        if (r >= rows) {
            memset(s, 0, (size_t)lkp * 4);
            memset(dp, 0, (size_t)lkp * 4);
            continue;
        }
        __m512 mv = _mm512_set1_ps(scale * row_max(s, lk)), sum = _mm512_setzero_ps();
        for (int j = 0; j < lkp; j += 16) {
            __m512 e = shifted_exp(s, j, lk, sc, mv);
            sum = _mm512_add_ps(sum, e);
            _mm512_storeu_ps(s + j, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum)), dot = _mm512_setzero_ps();
        for (int j = 0; j < lkp; j += 16) {
            __m512 p = _mm512_mul_ps(_mm512_loadu_ps(s + j), inv);
            _mm512_storeu_ps(s + j, p);
            dot = _mm512_fmadd_ps(p, _mm512_loadu_ps(dp + j), dot);
        }
        __m512 dv = _mm512_set1_ps(_mm512_reduce_add_ps(dot));
        for (int j = 0; j < lkp; j += 16) {
            __m512 p = _mm512_loadu_ps(s + j);
            __m512 ds = _mm512_mul_ps(_mm512_mul_ps(p, _mm512_sub_ps(_mm512_loadu_ps(dp + j), dv)), sc);
            _mm512_storeu_ps(dp + j, ds);
            _mm256_storeu_si256((__m256i *)(w.dsn + (long)r * lkp + j), (__m256i)_mm512_cvtneps_pbh(ds));
        }
    }
    for (int rp = 0; rp < padded / 2; rp++) {
        const float *p0 = w.s + (long)(2 * rp) * lkp, *p1 = p0 + lkp;
        const float *d0 = w.dp + (long)(2 * rp) * lkp, *d1 = d0 + lkp;
        for (int j = 0; j < lkp; j += 16) {
            _mm512_storeu_si512(w.pi + (long)rp * lkp + j, interleave_rows(_mm512_loadu_ps(p0 + j), _mm512_loadu_ps(p1 + j)));
            _mm512_storeu_si512(w.dsi + (long)rp * lkp + j, interleave_rows(_mm512_loadu_ps(d0 + j), _mm512_loadu_ps(d1 + j)));
        }
    }
}

// Adds the accumulated [d][lkp] transposed gradient into rows of x (stride `stride`) for the first lk keys.
static void add_transposed(const float *t, int lkp, int lk, int d, float *x, long stride) {
    for (int j = 0; j < lk; j++)
        for (int c = 0; c < d; c++) x[(long)j * stride + c] += t[(long)c * lkp + j];
}

TARGET void tl_attention_bf16_backward(const float *dout, const float *q, const float *k, const float *v,
                                       float *dq, float *dk, float *dv, int lq, int lk, int d,
                                       long q_stride, long kv_stride, float scale, void *scratch) {
    BackWork w = carve_back(scratch, lk, d);
    int lkp = padded_keys(lk), pairs = d / 2;
    // K as for the forward's scores ([d/2][lkp]) and as the right operand of dS·K ([lkp/2][d]); V as for dO·Vᵀ.
    pack_width_pairs(k, kv_stride, lk, d, w.kp);
    pack_key_pairs(k, kv_stride, lk, d, w.kv);
    pack_width_pairs(v, kv_stride, lk, d, w.vt);
    memset(w.dkt, 0, (size_t)lkp * d * 4);
    memset(w.dvt, 0, (size_t)lkp * d * 4);
    for (int i0 = 0; i0 < lq; i0 += BROWS) {
        int rows = lq - i0 < BROWS ? lq - i0 : BROWS, padded = (rows + 1) / 2 * 2;
        const float *qi = q + (long)i0 * q_stride, *oi = dout + (long)i0 * q_stride;
        pairs_along_width(qi, q_stride, rows, padded, d, w.qb);
        pairs_along_width(oi, q_stride, rows, padded, d, w.ob);
        pairs_across_rows_transposed(qi, q_stride, rows, padded, d, w.qt);
        pairs_across_rows_transposed(oi, q_stride, rows, padded, d, w.ot);
        product(padded, lkp, w.qb, pairs, w.kp, lkp, pairs, w.s, lkp, 0);
        product(padded, lkp, w.ob, pairs, w.vt, lkp, pairs, w.dp, lkp, 0);
        block_gradients(w, rows, padded, lk, lkp, scale);
        if (dv) product(d, lkp, w.ot, padded / 2, w.pi, lkp, padded / 2, w.dvt, lkp, 1);
        if (dk) product(d, lkp, w.qt, padded / 2, w.dsi, lkp, padded / 2, w.dkt, lkp, 1);
        if (dq) {
            for (int c0 = 0; c0 < d; c0 += TILE_COLS)
                product(rows, TILE_COLS, (const uint32_t *)w.dsn, lkp / 2, w.kv + c0, d, lkp / 2, w.dq + c0, d, 0);
            for (int r = 0; r < rows; r++) {
                float *dst = dq + (long)(i0 + r) * q_stride;
                for (int c = 0; c < d; c += 16)
                    _mm512_storeu_ps(dst + c, _mm512_add_ps(_mm512_loadu_ps(dst + c), _mm512_loadu_ps(w.dq + r * d + c)));
            }
        }
    }
    if (dk) add_transposed(w.dkt, lkp, lk, d, dk, kv_stride);
    if (dv) add_transposed(w.dvt, lkp, lk, d, dv, kv_stride);
}
