/* "cpu-device" (backend_cpu_device.h): the CPU back end behind guarded "device" memory. The
 * table and the slot wrappers are generated from the slot list (recon/core/backend_slots.h), as
 * backend_fault.c's; each slot has one line below saying which of its pointers are device memory
 * (DEV: translated from the handed-out address to the shadow the CPU computes on, refused when
 * it is no device allocation of this state) and which are host memory (HOST: refused when it is
 * one). A slot added to the list without its line does not compile here.
 *
 * Allocations: one memfd each, mapped PROT_NONE where the caller sees it and read-write as the
 * shadow, the data placed at the mapping's end (64-byte aligned). A sorted table of the live
 * allocations per state (behind the state's lock) answers which allocation an address lies in. */
#define _GNU_SOURCE
#include "backend_cpu_device.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/nufft_math.h"
#include "backend_cpu.h"

#define MAX_DEVICES 8

struct block {
	uintptr_t user;  /* the address handed out (no access) */
	char *map, *shadow; /* the two mappings, both `mapped` bytes */
	size_t bytes, mapped; /* the data's (rounded to 64) and the mappings' sizes (the shadow has a
			       * guard page more) */
	size_t asked;
};

struct sim_state {
	void *cpu; /* the CPU back end's state */
	int device;
	pthread_mutex_t lock;
	struct block *blocks; /* sorted by user */
	size_t n, cap;
	size_t held, limit; /* bytes asked by the live allocations; cap (0: none) */
};

#define CPU r5_backend_cpu()

int r5_cpu_device_count(void)
{
	const char *v = getenv("R5_CPU_DEVICE");
	if (!v || !*v)
		return 0;
	char *end = NULL;
	long n = strtol(v, &end, 10);
	if (*end || n < 1)
		return 1;
	return n > MAX_DEVICES ? MAX_DEVICES : (int)n;
}

size_t r5_cpu_device_bytes_held(void *state)
{
	struct sim_state *s = state;
	pthread_mutex_lock(&s->lock);
	size_t held = s->held;
	pthread_mutex_unlock(&s->lock);
	return held;
}

/* --- the allocation table --- */

/* Index of the block holding address p, or -1; with past_end, an address one past a block's end
 * counts as the block's (an empty view there; a host address there is the next mapping's). */
static long find_block(const struct sim_state *s, uintptr_t p, int past_end)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->blocks[mid].user <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	const struct block *b = &s->blocks[lo - 1];
	return p < b->user + b->bytes || (past_end && p == b->user + b->bytes) ? (long)(lo - 1) : -1;
}

/* The shadow address of device pointer p for slot `slot`'s argument `arg` (NULL stays NULL). */
static void *device_addr(struct sim_state *s, const char *slot, const char *arg, const void *p, r5_status *st)
{
	if (!p)
		return NULL;
	pthread_mutex_lock(&s->lock);
	long i = find_block(s, (uintptr_t)p, 1);
	void *shadow = i < 0 ? NULL : s->blocks[i].shadow + (s->blocks[i].mapped - s->blocks[i].bytes) +
					       ((uintptr_t)p - s->blocks[i].user);
	pthread_mutex_unlock(&s->lock);
	if (i < 0)
		*st = r5_set_error(R5_EINVAL,
				   "cpu-device: slot %s got %s = %p, which is not device memory of this context (a host "
				   "pointer where the device computes?)",
				   slot, arg, p);
	return shadow;
}

/* R5_OK when p (a host pointer of slot `slot`'s argument `arg`) is no device allocation. */
static r5_status host_addr(struct sim_state *s, const char *slot, const char *arg, const void *p)
{
	pthread_mutex_lock(&s->lock);
	long i = p ? find_block(s, (uintptr_t)p, 0) : -1;
	pthread_mutex_unlock(&s->lock);
	if (i >= 0)
		return r5_set_error(R5_EINVAL, "cpu-device: slot %s got %s = %p, device memory where host memory belongs",
				    slot, arg, p);
	return R5_OK;
}

static void unmap(const struct block *b)
{
	munmap(b->map, b->mapped);
	munmap(b->shadow, b->mapped + (size_t)sysconf(_SC_PAGESIZE));
}

static r5_status out_of_memory(struct sim_state *s, size_t bytes)
{
	size_t held = r5_cpu_device_bytes_held(s);
	return r5_set_error(R5_ENOMEM,
			    "cpu-device: out of device memory: %.1f MiB asked on device %d; this context holds %.1f MiB, "
			    "the device has %.1f of %.1f MiB free",
			    bytes / 1048576.0, s->device, held / 1048576.0,
			    (held < s->limit ? s->limit - held : 0) / 1048576.0, s->limit / 1048576.0);
}

static r5_status sim_alloc(void *state, void **ptr, size_t bytes)
{
	struct sim_state *s = state;
	*ptr = NULL;
	long page = sysconf(_SC_PAGESIZE);
	size_t rounded = (bytes + 63) / 64 * 64, mapped = (rounded + (size_t)page - 1) / (size_t)page * (size_t)page;
	if (mapped == 0)
		mapped = (size_t)page;
	if (s->limit && r5_cpu_device_bytes_held(s) + bytes > s->limit) /* before mapping: the usual refusal */
		return out_of_memory(s, bytes);
	int fd = memfd_create("r5-cpu-device", MFD_CLOEXEC);
	if (fd < 0)
		return r5_set_error(R5_ENOMEM, "cpu-device: memfd_create for %.1f MiB: %s", bytes / 1048576.0,
				    strerror(errno));
	/* the shadow is followed by a page of no access (reserved with it), so a slot running past
	 * the allocation's end faults instead of writing into whatever is mapped next */
	char *map = MAP_FAILED, *shadow = MAP_FAILED;
	if (ftruncate(fd, (off_t)mapped) == 0) {
		map = mmap(NULL, mapped, PROT_NONE, MAP_SHARED, fd, 0);
		shadow = mmap(NULL, mapped + (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (shadow != MAP_FAILED &&
		    mmap(shadow, mapped, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
			munmap(shadow, mapped + (size_t)page);
			shadow = MAP_FAILED;
		}
	}
	int saved = errno;
	close(fd);
	if (map == MAP_FAILED || shadow == MAP_FAILED) {
		if (map != MAP_FAILED)
			munmap(map, mapped);
		if (shadow != MAP_FAILED)
			munmap(shadow, mapped + (size_t)page);
		return r5_set_error(R5_ENOMEM, "cpu-device: mapping %.1f MiB: %s", bytes / 1048576.0, strerror(saved));
	}
	/* uninitialised device memory reads as NaN (all bits set) */
	memset(shadow + (mapped - rounded), 0xff, rounded);
	struct block b = {.user = (uintptr_t)(map + (mapped - rounded)), .map = map, .shadow = shadow,
			  .bytes = rounded, .mapped = mapped, .asked = bytes};
	pthread_mutex_lock(&s->lock);
	r5_status st = s->limit && s->held + bytes > s->limit ? R5_ENOMEM : R5_OK; /* another thread came first */
	if (st == R5_OK && s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct block *grown = realloc(s->blocks, cap * sizeof *grown);
		if (grown) {
			s->blocks = grown;
			s->cap = cap;
		} else {
			st = R5_ENOMEM;
		}
	}
	if (st == R5_OK) {
		size_t at = 0;
		while (at < s->n && s->blocks[at].user < b.user)
			at++;
		memmove(&s->blocks[at + 1], &s->blocks[at], (s->n - at) * sizeof b);
		s->blocks[at] = b;
		s->n++;
		s->held += bytes;
	}
	pthread_mutex_unlock(&s->lock);
	if (st != R5_OK) {
		unmap(&b);
		return s->limit && r5_cpu_device_bytes_held(s) + bytes > s->limit ? out_of_memory(s, bytes)
										 : r5_set_error(R5_ENOMEM, "cpu-device: allocation table");
	}
	*ptr = (void *)b.user;
	return R5_OK;
}

static void sim_free(void *state, void *ptr)
{
	struct sim_state *s = state;
	if (!ptr)
		return;
	pthread_mutex_lock(&s->lock);
	long i = find_block(s, (uintptr_t)ptr, 0);
	int ok = i >= 0 && s->blocks[i].user == (uintptr_t)ptr;
	struct block b = ok ? s->blocks[i] : (struct block){0};
	if (ok) {
		memmove(&s->blocks[i], &s->blocks[i + 1], (s->n - (size_t)i - 1) * sizeof b);
		s->n--;
		s->held -= b.asked;
	}
	pthread_mutex_unlock(&s->lock);
	if (!ok) {
		/* as a CUDA free of a foreign pointer: a bug in the caller, not a condition to carry on from */
		r5_error("cpu-device: free of %p, which is no allocation of this context", ptr);
		abort();
	}
	unmap(&b);
}

/* R5_CPU_DEVICE_MIB less what is held; without a cap, the host's (the CPU back end's answer). */
static r5_status sim_mem_info(void *state, size_t *free_bytes, size_t *total_bytes)
{
	struct sim_state *s = state;
	if (!s->limit)
		return CPU->mem_info(s->cpu, free_bytes, total_bytes);
	size_t held = r5_cpu_device_bytes_held(s);
	*free_bytes = held < s->limit ? s->limit - held : 0;
	*total_bytes = s->limit;
	return R5_OK;
}

/* --- the slots --- */

/* In a slot body: D(p) makes device pointer p the shadow address, H(p) checks host pointer p. */
#define BEGIN(name)                          \
	struct sim_state *s = state;         \
	const char *slot_ = #name;           \
	r5_status st_ = R5_OK;               \
	(void)slot_;                         \
	(void)st_;
#define D(p)                                                                       \
	do {                                                                       \
		p = (__typeof__(p))device_addr(s, slot_, #p, (const void *)(p), &st_); \
		if (st_ != R5_OK)                                                  \
			return st_;                                                \
	} while (0)
#define H(p) R5_TRY(host_addr(s, slot_, #p, (const void *)(p)))
#define CALL(name, ...) return CPU->name(s->cpu, __VA_ARGS__);
#define OWN ;

#define BODY_state_create OWN
#define BODY_state_destroy OWN
#define BODY_describe OWN
#define BODY_alloc OWN
#define BODY_free OWN
#define BODY_upload {BEGIN(upload) D(dst); H(host_src); CALL(copy, dst, host_src, bytes)}
#define BODY_download {BEGIN(download) H(host_dst); D(src); CALL(copy, host_dst, src, bytes)}
#define BODY_copy {BEGIN(copy) D(dst); D(src); CALL(copy, dst, src, bytes)}
#define BODY_sync {struct sim_state *s = state; return CPU->sync(s->cpu);}
#define BODY_mem_info OWN
#define BODY_zfill {BEGIN(zfill) D(x); CALL(zfill, n, x, value)}
#define BODY_zscale {BEGIN(zscale) D(x); CALL(zscale, n, x, alpha)}
#define BODY_zaxpby {BEGIN(zaxpby) D(x); D(y); CALL(zaxpby, n, alpha, x, beta, y)}
#define BODY_zunary {BEGIN(zunary) D(out); D(in); CALL(zunary, op, n, out, in)}
#define BODY_zsoftthresh {BEGIN(zsoftthresh) D(out); D(in); CALL(zsoftthresh, n, lambda, out, in)}
#define BODY_zclamp {BEGIN(zclamp) D(out); D(in); CALL(zclamp, n, lo, hi, out, in)}
#define BODY_zdot {BEGIN(zdot) D(x); D(y); H(result); CALL(zdot, n, x, y, result)}
#define BODY_znorm2sq {BEGIN(znorm2sq) D(x); H(result); CALL(znorm2sq, n, x, result)}
#define BODY_zmul_md {BEGIN(zmul_md) D(out); D(in1); D(in2); CALL(zmul_md, dims, out_str, out, in1_str, in1, in2_str, in2, flags)}
#define BODY_zcopy_md {BEGIN(zcopy_md) D(out); D(in); CALL(zcopy_md, dims, out_str, out, in_str, in)}
#define BODY_zcircshift {BEGIN(zcircshift) D(out); D(in); CALL(zcircshift, dims, shifts, out, in)}
#define BODY_zaxpby_md {BEGIN(zaxpby_md) D(x); D(y); CALL(zaxpby_md, dims, alpha, x_str, x, beta, y_str, y)}
#define BODY_zreduce_md {BEGIN(zreduce_md) D(out); D(in); CALL(zreduce_md, op, dims, out_str, out, in_str, in)}
#define BODY_fft_plan_make {struct sim_state *s = state; return CPU->fft_plan_make(s->cpu, plan, dims, flags);}
#define BODY_fft_exec {BEGIN(fft_exec) D(out); D(in); CALL(fft_exec, plan, out, in, inverse)}
#define BODY_fft_plan_destroy {struct sim_state *s = state; CPU->fft_plan_destroy(s->cpu, plan);}
#define BODY_zgemm {BEGIN(zgemm) D(a); D(b); D(c); CALL(zgemm, trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)}
#define BODY_zheev_batched {BEGIN(zheev_batched) D(matrices); D(eigenvalues); CALL(zheev_batched, batch, n, matrices, eigenvalues)}
#define BODY_zheev_top_batched {BEGIN(zheev_top_batched) D(matrices); D(eigenvalues); CALL(zheev_top_batched, batch, n, k, matrices, eigenvalues)}
#define BODY_zwavelet_step {BEGIN(zwavelet_step) D(out); D(in); CALL(zwavelet_step, kind, inverse, dim, dims, str, out, in)}
#define BODY_nufft_spread {BEGIN(nufft_spread) struct r5_nufft_points pts; R5_TRY(device_points(s, slot_, points, &pts)); D(samples); D(grid); CALL(nufft_spread, geom, &pts, samples, grid)}
#define BODY_nufft_interp {BEGIN(nufft_interp) struct r5_nufft_points pts; R5_TRY(device_points(s, slot_, points, &pts)); D(grid); D(samples); CALL(nufft_interp, geom, &pts, grid, samples)}
#define BODY_nufft_deapod {BEGIN(nufft_deapod) D(corr); D(image); D(grid); CALL(nufft_deapod, geom, corr, image, grid, to_grid)}
#define BODY_nufft_toep_place {BEGIN(nufft_toep_place) D(image); D(grid); CALL(nufft_toep_place, geom, coils, image, grid, place)}

/* The point tables (a host struct of device pointers, as the CUDA kernels take it by value). */
static r5_status device_points(struct sim_state *s, const char *slot_, const struct r5_nufft_points *points,
			       struct r5_nufft_points *out)
{
	r5_status st_ = R5_OK;
	R5_TRY(host_addr(s, slot_, "points", points));
	*out = *points;
	D(out->order);
	D(out->start);
	D(out->offset);
	D(out->sub_first);
	D(out->sub_bin);
	return R5_OK;
}

#define R5_SIM_DEFINE(ret, slot, params) static ret sim_##slot params BODY_##slot
R5_BACKEND_SLOTS(R5_SIM_DEFINE)
#undef R5_SIM_DEFINE

static r5_status sim_state_create(void **state, int device)
{
	*state = NULL;
	if (device < 0 || device >= r5_cpu_device_count())
		return r5_set_error(R5_EGPU, "cpu-device: no device %d (R5_CPU_DEVICE gives %d)", device,
				    r5_cpu_device_count());
	struct sim_state *s = calloc(1, sizeof *s);
	if (!s)
		return r5_set_error(R5_ENOMEM, "cpu-device back end state");
	const char *mib = getenv("R5_CPU_DEVICE_MIB");
	if (mib && *mib) {
		char *end = NULL;
		double v = strtod(mib, &end);
		if (*end || !(v > 0) || !isfinite(v)) {
			free(s);
			return r5_set_error(R5_EINVAL, "R5_CPU_DEVICE_MIB=%s is not a positive number of MiB", mib);
		}
		s->limit = (size_t)(v * 1048576.0);
	}
	s->device = device;
	pthread_mutex_init(&s->lock, NULL);
	r5_status st = CPU->state_create(&s->cpu, 0);
	if (st != R5_OK) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return st;
	}
	*state = s;
	return R5_OK;
}

static void sim_state_destroy(void *state)
{
	struct sim_state *s = state;
	if (!s)
		return;
	if (s->n)
		r5_warn("cpu-device: %zu allocation(s) (%.1f MiB) still live when the context ends", s->n,
			s->held / 1048576.0);
	for (size_t i = 0; i < s->n; i++)
		unmap(&s->blocks[i]);
	free(s->blocks);
	CPU->state_destroy(s->cpu);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static r5_status sim_describe(void *state, char *text, size_t text_size)
{
	struct sim_state *s = state;
	char inner[200];
	R5_TRY(CPU->describe(s->cpu, inner, sizeof inner));
	if (s->limit)
		snprintf(text, text_size, "cpu-device %d (guarded memory, %.0f MiB) over %s", s->device,
			 s->limit / 1048576.0, inner);
	else
		snprintf(text, text_size, "cpu-device %d (guarded memory) over %s", s->device, inner);
	return R5_OK;
}

#define R5_SIM_SLOT(ret, slot, params) .slot = sim_##slot,
static const struct r5_backend sim_backend = {
	.name = "cpu-device",
	.residency = R5_DEVICE,
	R5_BACKEND_SLOTS(R5_SIM_SLOT)
};
#undef R5_SIM_SLOT

const struct r5_backend *r5_backend_cpu_device(void)
{
	return &sim_backend;
}
