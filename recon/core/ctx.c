/* r5_ctx: back end + per-context state + FFT plan cache (ctx.h), and the back-end registry
 * (r5_backend_register, r5_ctx_open): core knows no back end by itself; recon/backends registers
 * the ones this build has. */
#include "ctx.h"

#include <complex.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "dims.h"
#include "log.h"

/* One cache entry per FFT shape: the back end's plan and the centring ramps of fft.c, each made
 * on first use. */
struct fft_entry {
	long dims[R5_DIMS];
	unsigned long flags;
	void *plan;
	r5_array *pre, *post;
	struct fft_entry *next;
};

struct r5_ctx {
	const struct r5_backend *backend;
	void *state;
	int device;
	char description[256];
	struct fft_entry *ffts; /* most recently used first */
	int retired;            /* the back end reported its device lost (r5_ctx_retired) */
	char retired_reason[512];
};

static void entry_free(r5_ctx *ctx, struct fft_entry *e);

r5_status r5_backend_check(const struct r5_backend *b)
{
	if (!b)
		return r5_set_error(R5_ENOTSUP, "back end not built in");
	if (!b->name)
		return r5_set_error(R5_EINTERNAL, "back end without a name");
#define R5_CHECK_SLOT(ret, slot, params) \
	if (!b->slot) \
		return r5_set_error(R5_EINTERNAL, "back end %s: slot %s is empty", b->name, #slot);
	R5_BACKEND_SLOTS(R5_CHECK_SLOT)
#undef R5_CHECK_SLOT
	return R5_OK;
}

/* --- the registry: back ends known to this process, in registration order --- */

#define MAX_BACKENDS 8
static struct registered {
	const struct r5_backend *backend;
	int (*device_count)(void);
} registry[MAX_BACKENDS];
static int n_registered;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

r5_status r5_backend_register(const struct r5_backend *backend, int (*device_count)(void))
{
	R5_TRY(r5_backend_check(backend));
	if (!device_count)
		return r5_set_error(R5_EINVAL, "back end %s registered without a device count", backend->name);
	r5_status s = R5_OK;
	pthread_mutex_lock(&registry_lock);
	int i = 0;
	while (i < n_registered && strcmp(registry[i].backend->name, backend->name) != 0)
		i++;
	if (i < n_registered && registry[i].backend != backend)
		s = r5_set_error(R5_EINVAL, "a different back end named %s is registered already", backend->name);
	else if (i == n_registered && n_registered == MAX_BACKENDS)
		s = r5_set_error(R5_ERANGE, "back end %s: the registry holds %d back ends at most", backend->name,
				 MAX_BACKENDS);
	else if (i == n_registered)
		registry[n_registered++] = (struct registered){backend, device_count};
	pthread_mutex_unlock(&registry_lock);
	return s;
}

/* "gpu" is another name for "cuda" */
static const char *canonical(const char *name)
{
	return strcmp(name, "gpu") == 0 ? "cuda" : name;
}

static const struct registered *find(const char *name)
{
	const struct registered *found = NULL;
	name = canonical(name);
	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < n_registered && !found; i++)
		if (strcmp(registry[i].backend->name, name) == 0)
			found = &registry[i];
	pthread_mutex_unlock(&registry_lock);
	return found; /* entries never move or go once registered */
}

const struct r5_backend *r5_backend_find(const char *name)
{
	const struct registered *r = name ? find(name) : NULL;
	return r ? r->backend : NULL;
}

int r5_backend_devices(const char *name)
{
	const struct registered *r = name ? find(name) : NULL;
	return r ? r->device_count() : 0;
}

/* "auto": the first registered device back end with the device, else the first host one. */
static const struct registered *choose_auto(int device)
{
	const struct registered *host = NULL, *chosen = NULL;
	pthread_mutex_lock(&registry_lock);
	int n = n_registered;
	pthread_mutex_unlock(&registry_lock);
	for (int i = 0; i < n && !chosen; i++) {
		if (registry[i].backend->residency == R5_HOST) {
			if (!host)
				host = &registry[i];
		} else if (registry[i].device_count() > device) {
			chosen = &registry[i];
		} else {
			r5_info("back end: %s has no device %d, looking further", registry[i].backend->name, device);
		}
	}
	if (!chosen && host)
		r5_info("back end: %s (no GPU back end with device %d)", host->backend->name, device);
	return chosen ? chosen : host;
}

r5_status r5_ctx_open(r5_ctx **out, const char *backend_name, int device)
{
	*out = NULL;
	if (!backend_name)
		backend_name = "auto";
	const struct registered *r = strcmp(backend_name, "auto") == 0 ? choose_auto(device) : find(backend_name);
	if (!r) {
		if (strcmp(backend_name, "cuda") == 0 || strcmp(backend_name, "gpu") == 0)
			return r5_set_error(R5_ENOTSUP, "back end '%s' requested but recon5t was built without CUDA",
					    backend_name);
		return r5_set_error(R5_EINVAL, "unknown back end '%s' (cpu, gpu or auto)", backend_name);
	}
	const struct r5_backend *backend = r->backend;
	if (backend->residency == R5_DEVICE && r->device_count() <= device)
		return r5_set_error(R5_EGPU, "back end '%s' requested but CUDA device %d is not available",
				    backend_name, device);
	r5_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return r5_set_error(R5_ENOMEM, "context allocation");
	ctx->backend = backend;
	ctx->device = device;
	r5_status st = backend->state_create(&ctx->state, device);
	if (st != R5_OK) {
		free(ctx);
		return r5_error_context(st, "creating the %s back end", backend->name);
	}
	if (backend->describe(ctx->state, ctx->description, sizeof ctx->description) != R5_OK)
		snprintf(ctx->description, sizeof ctx->description, "%s", backend->name);
	*out = ctx;
	return R5_OK;
}

void r5_ctx_destroy(r5_ctx *ctx)
{
	if (!ctx)
		return;
	struct fft_entry *e = ctx->ffts;
	while (e) {
		struct fft_entry *next = e->next;
		entry_free(ctx, e);
		e = next;
	}
	ctx->backend->state_destroy(ctx->state);
	free(ctx);
}

const struct r5_backend *r5_ctx_backend(const r5_ctx *ctx) { return ctx->backend; }
void *r5_ctx_state(const r5_ctx *ctx) { return ctx->state; }
const char *r5_ctx_backend_name(const r5_ctx *ctx) { return ctx->backend->name; }
r5_residency r5_ctx_residency(const r5_ctx *ctx) { return ctx->backend->residency; }
int r5_ctx_device(const r5_ctx *ctx) { return ctx->device; }

r5_status r5_ctx_mem_info(r5_ctx *ctx, size_t *free_bytes, size_t *total_bytes)
{
	*free_bytes = *total_bytes = 0;
	return ctx->backend->mem_info(ctx->state, free_bytes, total_bytes);
}

long r5_ctx_fit(r5_ctx *ctx, double item_bytes, double share, long fallback)
{
	size_t free_bytes = 0, total = 0;
	if (r5_ctx_residency(ctx) != R5_DEVICE || !(item_bytes > 0))
		return fallback;
	if (r5_ctx_mem_info(ctx, &free_bytes, &total) != R5_OK) {
		r5_clear_error();
		return fallback;
	}
	double fit = share * (double)free_bytes / item_bytes;
	return fit >= (double)LONG_MAX ? LONG_MAX : (long)fit;
}
const char *r5_ctx_describe(const r5_ctx *ctx) { return ctx->description; }

int r5_ctx_retired(r5_ctx *ctx)
{
	if (ctx->retired)
		return 1;
	char saved[1024];
	snprintf(saved, sizeof saved, "%s", r5_last_error());
	if (ctx->backend->sync(ctx->state) == R5_EDEVICE_LOST) {
		ctx->retired = 1;
		snprintf(ctx->retired_reason, sizeof ctx->retired_reason, "%s", r5_last_error());
	}
	r5_set_error(R5_OK, "%s", saved); /* the caller's message stays */
	return ctx->retired;
}

const char *r5_ctx_retired_reason(const r5_ctx *ctx) { return ctx->retired ? ctx->retired_reason : ""; }

static long entry_bytes(const struct fft_entry *e)
{
	long n = 0;
	if (e->pre)
		n += r5_array_size(e->pre) * (long)sizeof(float complex);
	if (e->post)
		n += r5_array_size(e->post) * (long)sizeof(float complex);
	return n;
}

static void entry_free(r5_ctx *ctx, struct fft_entry *e)
{
	if (e->plan) {
		/* the plan may still be queued on the stream */
		if (ctx->backend->sync(ctx->state) != R5_OK && !ctx->retired)
			r5_warn("FFT plan cache: sync before destroying a plan failed: %s", r5_last_error());
		ctx->backend->fft_plan_destroy(ctx->state, e->plan);
	}
	r5_array_free(e->pre);
	r5_array_free(e->post);
	free(e);
}

void r5_ctx_fft_cache_clear(r5_ctx *ctx)
{
	while (ctx->ffts) {
		struct fft_entry *e = ctx->ffts;
		ctx->ffts = e->next;
		entry_free(ctx, e);
	}
}

void r5_ctx_fft_cache_usage(const r5_ctx *ctx, long *entries, long *bytes)
{
	*entries = *bytes = 0;
	for (const struct fft_entry *e = ctx->ffts; e; e = e->next) {
		(*entries)++;
		*bytes += entry_bytes(e);
	}
}

/* Drops least recently used entries (the list is kept most recent first) beyond the bounds;
 * the head, the shape being looked up, always stays. */
static void evict(r5_ctx *ctx)
{
	long entries = 0, bytes = 0;
	struct fft_entry **link = &ctx->ffts;
	while (*link) {
		struct fft_entry *e = *link;
		entries++;
		bytes += entry_bytes(e);
		if (e != ctx->ffts && (entries > R5_CTX_FFT_CACHE_ENTRIES || bytes > R5_CTX_FFT_CACHE_BYTES)) {
			*link = e->next;
			entries--;
			bytes -= entry_bytes(e);
			entry_free(ctx, e);
		} else {
			link = &e->next;
		}
	}
}

static r5_status fft_entry(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, struct fft_entry **out)
{
	for (struct fft_entry **link = &ctx->ffts; *link; link = &(*link)->next) {
		struct fft_entry *e = *link;
		if (e->flags == flags && r5_dims_equal(e->dims, dims)) {
			*link = e->next; /* to the front: most recently used */
			e->next = ctx->ffts;
			ctx->ffts = e;
			*out = e;
			return R5_OK;
		}
	}
	struct fft_entry *e = calloc(1, sizeof *e);
	if (!e)
		return r5_set_error(R5_ENOMEM, "FFT cache entry");
	r5_dims_copy(e->dims, dims);
	e->flags = flags;
	e->next = ctx->ffts;
	ctx->ffts = e;
	evict(ctx);
	*out = e;
	return R5_OK;
}

r5_status r5_ctx_fft_plan(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, void **plan)
{
	struct fft_entry *e = NULL;
	R5_TRY(fft_entry(ctx, dims, flags, &e));
	if (!e->plan)
		R5_TRY(ctx->backend->fft_plan_make(ctx->state, &e->plan, dims, flags));
	*plan = e->plan;
	return R5_OK;
}

r5_status r5_ctx_fft_ramps(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_fft_ramp_make make,
			   r5_array **pre, r5_array **post)
{
	struct fft_entry *e = NULL;
	R5_TRY(fft_entry(ctx, dims, flags, &e));
	if (!e->pre)
		R5_TRY(make(ctx, dims, flags, &e->pre, &e->post));
	*pre = e->pre;
	*post = e->post;
	return R5_OK;
}
