/* r5_ctx: what a reconstruction runs on — a back end, its device and stream, and the FFT plan
 * cache (per shape, owned by this context; there is no process-wide cache). One context per
 * worker thread; a context is not shared between threads. */
#ifndef R5_CORE_CTX_H
#define R5_CORE_CTX_H

#include "backend.h"

typedef struct r5_ctx r5_ctx;

/* The back-end registry. Core knows no back end by itself: each back-end library (recon/cpu,
 * gpu/, a test's fake) registers its table with a device count (host back ends: 1), and
 * recon/backends registers the ones this build has on first use of r5_ctx_create. The table is
 * checked (r5_backend_check) and must stay valid for the process's lifetime; registering the
 * same table twice is harmless, another table under a registered name is R5_EINVAL. */
r5_status r5_backend_register(const struct r5_backend *backend, int (*device_count)(void));
/* The registered back end of that name ("gpu" means "cuda"), or NULL. */
const struct r5_backend *r5_backend_find(const char *name);
/* Its usable devices (0 when not registered). */
int r5_backend_devices(const char *name);

/* A context on a registered back end. backend_name: a registered name ("cpu", "cuda", alias
 * "gpu") or "auto" (the first registered device back end that has device `device`, else the
 * first host one, with a log line saying why). device: the device index (ignored on the host). */
r5_status r5_ctx_open(r5_ctx **ctx, const char *backend_name, int device);
/* The same after registering the built-in back ends (CPU, and CUDA when built): defined in
 * recon/backends/backends.c, which is the one place that knows what this build contains. */
r5_status r5_ctx_create(r5_ctx **ctx, const char *backend_name, int device);
void r5_ctx_destroy(r5_ctx *ctx); /* NULL is harmless */

const struct r5_backend *r5_ctx_backend(const r5_ctx *ctx);
void *r5_ctx_state(const r5_ctx *ctx);
/* "cpu" or "cuda" */
const char *r5_ctx_backend_name(const r5_ctx *ctx);
r5_residency r5_ctx_residency(const r5_ctx *ctx);
int r5_ctx_device(const r5_ctx *ctx);
/* What the context can still allocate where it computes, and the total (the back end's
 * mem_info: a device's free memory with its pool's unused reserve; the host's for the CPU). */
r5_status r5_ctx_mem_info(r5_ctx *ctx, size_t *free_bytes, size_t *total_bytes);
/* How many items of item_bytes fit in `share` of what a device context can still allocate
 * (floor, may be 0); `fallback` on a host context or when the free memory is unknown. What the
 * streamed paths size their pieces by. */
long r5_ctx_fit(r5_ctx *ctx, double item_bytes, double share, long fallback);
/* One line describing the back end (device name, memory, threads). */
const char *r5_ctx_describe(const r5_ctx *ctx);

/* Whether the context is retired: its back end reported its device lost (R5_EDEVICE_LOST, a
 * sticky CUDA error or an injected one), after which every call on it fails the same way. Asks
 * the back end (a sync: at once on an idle healthy context) until the answer is yes, then
 * remembers it; the caller's error message is left as it was. The owner destroys a retired
 * context and makes a new one. r5_ctx_retired_reason: the first error ("" while not retired). */
int r5_ctx_retired(r5_ctx *ctx);
const char *r5_ctx_retired_reason(const r5_ctx *ctx);

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
/* Empties the cache (plans destroyed after a sync): memory given back under pressure. */
void r5_ctx_fft_cache_clear(r5_ctx *ctx);
r5_status r5_ctx_fft_plan(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, void **plan);

/* Cached companions of a plan: the centring phase ramps of fft.c (arrays where the context
 * computes, dims = the transformed dims, 1 elsewhere). Made by `make` on first use. */
struct r5_array;
typedef r5_status (*r5_fft_ramp_make)(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags,
				      struct r5_array **pre, struct r5_array **post);
r5_status r5_ctx_fft_ramps(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_fft_ramp_make make,
			   struct r5_array **pre, struct r5_array **post);

#endif
