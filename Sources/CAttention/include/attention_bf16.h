#ifndef CATTENTION_BF16_H
#define CATTENTION_BF16_H

#include <stddef.h>

/// Fused scaled-dot-product attention for one head with bf16 products (AVX-512 BF16) and Float32
/// softmax, accumulation and output. Scores are made and consumed a block of keys at a time with an
/// online softmax, so no [Lq, Lk] matrix is ever stored. See docs/precision.md.

/// Whether this processor has the instructions the kernels use (AVX-512 F/BW/VL and BF16).
int tl_attention_bf16_supported(void);

/// Bytes of work space one call of the functions below needs for `lk` keys and head width `d`.
size_t tl_attention_bf16_scratch(int lk, int d);

/// out[i, :] = softmax(scale · q[i, :] · kᵀ) · v for query rows q_begin ..< q_end of one head.
/// q, k, v, out point at the head's first column; rows are `q_stride` / `kv_stride` floats apart.
/// `d` must be a multiple of 64 (64 in every SDXL attention). `scratch` has
/// tl_attention_bf16_scratch(lk, d) bytes, 64-byte aligned.
void tl_attention_bf16_forward(const float *q, const float *k, const float *v, float *out,
                               int lk, int d, long q_stride, long kv_stride, int q_begin, int q_end,
                               float scale, void *scratch);

/// Bytes of work space for tl_attention_bf16_backward with `lk` keys and head width `d`.
size_t tl_attention_bf16_backward_scratch(int lk, int d);

/// Accumulates the gradients of one head: dq += ∂/∂q, dk += ∂/∂k, dv += ∂/∂v of Σ dout ⊙ out for
/// out = softmax(scale · q·kᵀ)·v over all lq query rows (each of dq, dk, dv may be NULL to skip it).
/// Same layouts and head width rule as the forward; `scratch` has tl_attention_bf16_backward_scratch bytes.
void tl_attention_bf16_backward(const float *dout, const float *q, const float *k, const float *v,
                                float *dq, float *dk, float *dv, int lq, int lk, int d,
                                long q_stride, long kv_stride, float scale, void *scratch);

#endif
