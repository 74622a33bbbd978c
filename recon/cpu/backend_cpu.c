/* The CPU back end: state, memory and the slot table. Host memory is where the CPU computes.
 * Its slots live beside it: cpu_vec.c (element-wise and strided OpenMP loops over the shared
 * per-element math, complex_math.h), cpu_fft.c (FFTW3 single precision, multithreaded, and the
 * one planner lock), cpu_linalg.c (zgemm and the batched Hermitian eigensolver, eig_math.h).
 *
 * FFTW's planner is process-wide and not thread-safe, and fftwf_make_planner_thread_safe()
 * cannot be relied on: in the OpenMP build we link (libfftw3f_omp 3.3.10, Debian 12) the hook
 * it installs, fftwf_threads_register_planner_hooks, is an empty function, so two threads
 * planning at once (recon5td's completion-queue threads and workers) corrupted the heap
 * (tests/unit/test_fft_threads.c). cpu_fft.c therefore serialises every planner call itself. */
#include <complex.h>
#include <fftw3.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_cpu.h"
#include "cpu_backend.h"

r5_status r5_cpu_state_create(void **state, int device)
{
	r5_cpu_fft_init();
	struct cpu_state *s = calloc(1, sizeof *s);
	if (!s)
		return r5_set_error(R5_ENOMEM, "cpu back end state");
	s->threads = omp_get_max_threads();
	*state = s;
	return R5_OK;
}

void r5_cpu_state_destroy(void *state) { free(state); }

r5_status r5_cpu_describe(void *state, char *text, size_t size)
{
	struct cpu_state *s = state;
	snprintf(text, size, "cpu: FFTW %s, %d OpenMP threads", fftwf_version, s->threads);
	return R5_OK;
}

/* --- memory (the CPU computes on host memory) --- */

r5_status r5_cpu_alloc(void *state, void **ptr, size_t bytes)
{
	*ptr = aligned_alloc(64, (bytes + 63) / 64 * 64);
	if (!*ptr)
		return r5_set_error(R5_ENOMEM, "host allocation of %.1f MiB failed", bytes / 1048576.0);
	return R5_OK;
}

void r5_cpu_free(void *state, void *ptr) { free(ptr); }

r5_status r5_cpu_copy(void *state, void *dst, const void *src, size_t bytes)
{
	if (dst != src)
		memmove(dst, src, bytes);
	return R5_OK;
}

r5_status r5_cpu_sync(void *state) { return R5_OK; }

r5_status r5_cpu_mem_info(void *state, size_t *free_bytes, size_t *total_bytes)
{
	(void)state;
	long page = sysconf(_SC_PAGESIZE), avail = sysconf(_SC_AVPHYS_PAGES), total = sysconf(_SC_PHYS_PAGES);
	if (page <= 0 || avail < 0 || total <= 0)
		return r5_set_error(R5_EINVAL, "cpu: the host's memory size is unknown");
	*free_bytes = (size_t)avail * (size_t)page;
	*total_bytes = (size_t)total * (size_t)page;
	return R5_OK;
}

/* The table, generated from the slot list (backend.h): every slot is cpu_<slot>. Host memory is
 * where the CPU computes, so moving data in or out is a copy. */
#define r5_cpu_upload r5_cpu_copy
#define r5_cpu_download r5_cpu_copy
#define R5_CPU_SLOT(ret, slot, params) .slot = r5_cpu_##slot,
static const struct r5_backend cpu_backend = {
	.name = "cpu",
	.residency = R5_HOST,
	R5_BACKEND_SLOTS(R5_CPU_SLOT)
};
#undef R5_CPU_SLOT

const struct r5_backend *r5_backend_cpu(void)
{
	return &cpu_backend;
}
