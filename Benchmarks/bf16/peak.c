// The bf16 peak of oneDNN on this machine, against OpenBLAS's sgemm: the yardstick for the bf16 engine's
// GFLOP/s in BENCHMARKS.md. Large, well-shaped products only (the best a kernel does here).
//   Benchmarks/bf16/run.sh
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "oneDNN status %d, line %d\n", s_, __LINE__); exit(1); } } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void *filled(size_t bytes) { void *p = aligned_alloc(64, (bytes + 63) / 64 * 64); memset(p, 0x3c, bytes); return p; }

// Runs a primitive until 2 s have passed (after one warm-up call); returns seconds per call.
static double timed(dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args) {
    CHECK(dnnl_primitive_execute(p, stream, nargs, args)); dnnl_stream_wait(stream);
    int calls = 0; double t0 = now();
    while (now() - t0 < 2.0) { CHECK(dnnl_primitive_execute(p, stream, nargs, args)); dnnl_stream_wait(stream); calls++; }
    return (now() - t0) / calls;
}

static dnnl_memory_t memory(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m; CHECK(dnnl_memory_create(&m, md, engine, filled(dnnl_memory_desc_get_size(md)))); return m;
}

static void matmul(int m, int k, int n) {
    dnnl_memory_desc_t a, b, c; dnnl_dims_t da = {m, k}, db = {k, n}, dc = {m, n};
    CHECK(dnnl_memory_desc_init_by_tag(&a, 2, da, dnnl_bf16, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&b, 2, db, dnnl_bf16, dnnl_ba));  // a [out, in] weight read as its transpose
    CHECK(dnnl_memory_desc_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t d; CHECK(dnnl_matmul_desc_init(&d, &a, &b, NULL, &c));
    dnnl_primitive_desc_t pd; CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, engine, NULL));
    const char *impl; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    dnnl_primitive_t p; CHECK(dnnl_primitive_create(&p, pd));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, memory(&a)}, {DNNL_ARG_WEIGHTS, memory(&b)}, {DNNL_ARG_DST, memory(&c)}};
    double t = timed(p, 3, args);
    printf("bf16 matmul %5d x %5d x %5d (%s): %6.1f GFLOP/s\n", m, k, n, impl, 2.0 * m * k * n / t / 1e9);
}

static void conv(int batch, int c, int o, int hw) {
    dnnl_memory_desc_t s, w, d; dnnl_dims_t ds = {batch, c, hw, hw}, dw = {o, c, 3, 3}, dd = {batch, o, hw, hw};
    CHECK(dnnl_memory_desc_init_by_tag(&s, 4, ds, dnnl_bf16, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&w, 4, dw, dnnl_bf16, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&d, 4, dd, dnnl_f32, dnnl_nhwc));
    dnnl_dims_t strides = {1, 1}, pad = {1, 1};
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &s, &w, NULL, &d, strides, pad, pad));
    dnnl_primitive_desc_t pd; CHECK(dnnl_primitive_desc_create(&pd, &cd, NULL, engine, NULL));
    const char *impl; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    dnnl_primitive_t p; CHECK(dnnl_primitive_create(&p, pd));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, memory(&s)}, {DNNL_ARG_WEIGHTS, memory(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0))},
                               {DNNL_ARG_DST, memory(&d)}};
    double t = timed(p, 3, args);
    printf("bf16 conv 3x3 %d x %4d -> %4d at %3d^2 (%s): %6.1f GFLOP/s\n", batch, c, o, hw, impl, 2.0 * batch * c * o * 9 * hw * hw / t / 1e9);
}

static void sgemm(int m, int k, int n) {
    float *a = filled((size_t)m * k * 4), *b = filled((size_t)k * n * 4), *c = filled((size_t)m * n * 4);
    memset(a, 0, (size_t)m * k * 4); memset(b, 0, (size_t)k * n * 4);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
    int calls = 0; double t0 = now();
    while (now() - t0 < 2.0) { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n); calls++; }
    printf("OpenBLAS sgemm %5d x %5d x %5d: %6.1f GFLOP/s\n", m, k, n, 2.0 * m * k * n * calls / (now() - t0) / 1e9);
}

int main(void) {
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    matmul(4096, 1280, 1280);  // SDXL's 1024 px attention projections at level 2
    matmul(1024, 5120, 1280);  // feed-forward out
    matmul(2048, 1280, 10240); // GEGLU's input projection
    conv(2, 640, 640, 64);
    conv(2, 320, 320, 128);
    sgemm(4096, 1280, 1280);
    sgemm(2048, 1280, 10240);
    return 0;
}
