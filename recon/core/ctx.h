/* r5_ctx: what a reconstruction runs on — a back end, its device and stream, and the FFT plan
 * cache (per shape, owned by this context; there is no process-wide cache). One context per
 * worker thread; a context is not shared between threads. */
#ifndef R5_CORE_CTX_H
#define R5_CORE_CTX_H

#include "backend.h"

typedef struct r5_ctx r5_ctx;

/* backend_name: "cpu", "gpu" (alias "cuda") or "auto" (GPU when one is present, else CPU with a
 * log line saying why). device: CUDA device index (ignored by the CPU). */
r5_status r5_ctx_create(r5_ctx **ctx, const char *backend_name, int device);
void r5_ctx_destroy(r5_ctx *ctx); /* NULL is harmless */

const struct r5_backend *r5_ctx_backend(const r5_ctx *ctx);
void *r5_ctx_state(const r5_ctx *ctx);
/* "cpu" or "cuda" */
const char *r5_ctx_backend_name(const r5_ctx *ctx);
r5_residency r5_ctx_residency(const r5_ctx *ctx);
int r5_ctx_device(const r5_ctx *ctx);
/* One line describing the back end (device name, memory, threads). */
const char *r5_ctx_describe(const r5_ctx *ctx);

/* FFT plan cache, used by fft.c: returns a plan for (dims, flags), making it on first use.
 * The cache is bounded, least recently used first out: at most R5_CTX_FFT_CACHE_ENTRIES shapes
 * and R5_CTX_FFT_CACHE_BYTES of ramps (the shape in use is always kept), so that a server
 * reconstructing many matrix sizes plateaus instead of growing. An evicted plan is destroyed
 * after the back end is synchronised (its stream may still use it). The pointers returned stay
 * valid until the next lookup of another shape. */
#define R5_CTX_FFT_CACHE_ENTRIES 16
#define R5_CTX_FFT_CACHE_BYTES (128L << 20)
/* Shapes cached now and the bytes their ramps hold (tests, Capabilities). */
void r5_ctx_fft_cache_usage(const r5_ctx *ctx, long *entries, long *bytes);
r5_status r5_ctx_fft_plan(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, void **plan);

/* Cached companions of a plan: the centring phase ramps of fft.c (arrays where the context
 * computes, dims = the transformed dims, 1 elsewhere). Made by `make` on first use. */
struct r5_array;
typedef r5_status (*r5_fft_ramp_make)(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags,
				      struct r5_array **pre, struct r5_array **post);
r5_status r5_ctx_fft_ramps(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_fft_ramp_make make,
			   struct r5_array **pre, struct r5_array **post);

#endif
