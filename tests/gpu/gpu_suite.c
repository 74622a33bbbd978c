/* GPU parity suite (r5_gpu_suite, ctest label gpu): every slot of the CUDA back end against the
 * CPU back end on fresh random inputs, then the generic centred FFT and the Cartesian pipeline
 * on a CPU context and a GPU context.
 *
 * Before anything needs a device it checks what can be checked without one: the C and C++
 * declarations of struct r5_backend agree (gpu/cuda_abi.h restates backend.h for nvcc), the CUDA
 * table has no empty slot, and asking for a GPU context without a device fails with a message.
 * Without a device it then prints "SKIP: no CUDA device" and exits 77.
 *
 * Method (../.library/device/METHOD.md): inputs are random (seed from time, printed; set
 * R5_GPU_SEED to repeat a run), outputs are poisoned with NaN before each run and every element
 * the CPU wrote must be written by the GPU (and none other), NaN never passes, and the error is
 * ||gpu - cpu|| / ||cpu|| against a stated tolerance (1e-5; 1e-4 for FFTs over more than 2^20
 * elements and for the eigen-decomposition). One table row per check, then "N passed, N failed". */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "recon/backends/backends.h"
#include "recon/core/array.h"
#include "recon/core/backend.h"
#include "recon/core/ctx.h"
#include "recon/core/dims.h"
#include "recon/core/fft.h"
#include "recon/core/log.h"

#include "gpu_suite.h"

/* exported by gpu/backend_cuda.cu (see gpu/cuda_abi.h) */
int r5_cuda_abi_layout(size_t layout[7]);

struct suite g_suite;

/* --- random numbers (xorshift64*) --- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

void suite_seed(uint64_t seed) { rng_state = seed ? seed : 0x9E3779B97F4A7C15ULL; }

double suite_uniform(void) /* [-1, 1) */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	uint64_t r = rng_state * 2685821657736338717ULL;
	return (double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

float complex suite_crand(void)
{
	float re = (float)suite_uniform(), im = (float)suite_uniform();
	return CMPLXF(re, im);
}

/* --- reporting --- */

void suite_row(const char *op, const char *shape, double rel, double max_abs, double tol, int ok, const char *note)
{
	int pass = ok && rel <= tol && !isnan(rel) && !isnan(max_abs);
	printf("%-22s | %-30s | %9.2e | %9.2e | %s%s%s\n", op, shape, rel, max_abs, pass ? "PASS" : "FAIL",
	       note && *note ? "  " : "", note ? note : "");
	fflush(stdout);
	if (pass)
		g_suite.passed++;
	else
		g_suite.failed++;
}

void suite_fail(const char *op, const char *shape, const char *why)
{
	printf("%-22s | %-30s | %9s | %9s | FAIL  %s\n", op, shape, "-", "-", why);
	fflush(stdout);
	g_suite.failed++;
}

/* Compares n complex values. Elements NaN in cpu are "not written" and must be NaN in gpu too
 * (and vice versa); with `full`, every element must have been written. */
void suite_compare(const char *op, const char *shape, const float complex *cpu, const float complex *gpu, long n,
		   int full, double tol)
{
	double num = 0, den = 0, max_abs = 0;
	long mismatch = 0, unwritten = 0;
	for (long i = 0; i < n; i++) {
		int c_nan = isnan(crealf(cpu[i])) || isnan(cimagf(cpu[i]));
		int g_nan = isnan(crealf(gpu[i])) || isnan(cimagf(gpu[i]));
		if (c_nan != g_nan) {
			mismatch++;
			continue;
		}
		if (c_nan) {
			unwritten++;
			continue;
		}
		double dr = (double)crealf(gpu[i]) - crealf(cpu[i]), di = (double)cimagf(gpu[i]) - cimagf(cpu[i]);
		double d2 = dr * dr + di * di;
		num += d2;
		den += (double)crealf(cpu[i]) * crealf(cpu[i]) + (double)cimagf(cpu[i]) * cimagf(cpu[i]);
		if (sqrt(d2) > max_abs)
			max_abs = sqrt(d2);
	}
	double rel = den > 0 ? sqrt(num / den) : sqrt(num);
	char note[96] = "";
	int ok = 1;
	if (mismatch) {
		snprintf(note, sizeof note, "%ld elements written by only one back end (NaN poison)", mismatch);
		ok = 0;
	} else if (full && unwritten) {
		snprintf(note, sizeof note, "%ld elements never written", unwritten);
		ok = 0;
	}
	suite_row(op, shape, rel, max_abs, tol, ok, note);
}

/* --- device buffers through the GPU context's back end --- */

float complex *dev_alloc(struct pair *p, long n)
{
	void *ptr = NULL;
	if (p->gb->alloc(p->gs, &ptr, (size_t)n * sizeof(float complex)) != R5_OK)
		return NULL;
	return ptr;
}

void dev_free(struct pair *p, float complex *ptr) { p->gb->free(p->gs, ptr); }

r5_status dev_put(struct pair *p, float complex *dst, const float complex *src, long n)
{
	return p->gb->upload(p->gs, dst, src, (size_t)n * sizeof(float complex));
}

r5_status dev_get(struct pair *p, float complex *dst, const float complex *src, long n)
{
	R5_TRY(p->gb->sync(p->gs));
	return p->gb->download(p->gs, dst, src, (size_t)n * sizeof(float complex));
}

float complex *host_fill(long n, int init)
{
	float complex *h = malloc(sizeof(float complex) * (size_t)(n > 0 ? n : 1));
	if (!h)
		return NULL;
	for (long i = 0; i < n; i++)
		h[i] = init == INIT_NAN ? CMPLXF(NAN, NAN) : suite_crand();
	return h;
}

/* Runs job on both back ends: buffers initialised identically (random or NaN), the CPU on host
 * copies, the GPU on device copies; then compares buffer j->out (and the scalar, if any). */
void suite_run_job(struct pair *p, const struct job *j)
{
	float complex *host[JOB_MAX_BUFS] = {0}, *cpu[JOB_MAX_BUFS] = {0}, *dev[JOB_MAX_BUFS] = {0};
	float complex *gpu_out = NULL;
	double complex cpu_scalar = 0, gpu_scalar = 0;
	const char *why = NULL;
	for (int b = 0; b < j->n_bufs && !why; b++) {
		host[b] = host_fill(j->len[b], j->init[b]);
		cpu[b] = malloc(sizeof(float complex) * (size_t)(j->len[b] > 0 ? j->len[b] : 1));
		dev[b] = dev_alloc(p, j->len[b]);
		if (!host[b] || !cpu[b] || !dev[b])
			why = "allocation failed";
		else if (dev_put(p, dev[b], host[b], j->len[b]) != R5_OK)
			why = r5_last_error();
		else
			memcpy(cpu[b], host[b], sizeof(float complex) * (size_t)j->len[b]);
	}
	if (!why && j->run(p->cb, p->cs, cpu, j, &cpu_scalar) != R5_OK)
		why = r5_last_error();
	if (!why && j->run(p->gb, p->gs, dev, j, &gpu_scalar) != R5_OK)
		why = r5_last_error();
	long out_len = j->len[j->out];
	if (!why && !(gpu_out = malloc(sizeof(float complex) * (size_t)(out_len > 0 ? out_len : 1))))
		why = "allocation failed";
	if (!why && dev_get(p, gpu_out, dev[j->out], out_len) != R5_OK)
		why = r5_last_error();
	if (why) {
		suite_fail(j->op, j->shape, why);
	} else if (j->scalar) {
		double d = cabs(gpu_scalar - cpu_scalar), ref = cabs(cpu_scalar);
		suite_row(j->op, j->shape, ref > 0 ? d / ref : d, d, j->tol, !isnan(creal(gpu_scalar)), "");
	} else {
		suite_compare(j->op, j->shape, cpu[j->out], gpu_out, out_len, j->full, j->tol);
	}
	for (int b = 0; b < j->n_bufs; b++) {
		free(host[b]);
		free(cpu[b]);
		if (dev[b])
			dev_free(p, dev[b]);
	}
	free(gpu_out);
}

/* --- checks that need no device --- */

static int check_without_device(void)
{
	int bad = 0;
	size_t layout[7];
	r5_cuda_abi_layout(layout);
	const size_t expect[7] = {sizeof(struct r5_backend), offsetof(struct r5_backend, zfill),
				  offsetof(struct r5_backend, zdot), offsetof(struct r5_backend, zmul_md),
				  offsetof(struct r5_backend, fft_exec), offsetof(struct r5_backend, zgemm),
				  offsetof(struct r5_backend, zheev_batched)};
	for (int i = 0; i < 7; i++) {
		if (layout[i] != expect[i]) {
			printf("FAIL: gpu/cuda_abi.h and recon/core/backend.h disagree (layout item %d: %zu vs %zu)\n", i,
			       layout[i], expect[i]);
			bad = 1;
		}
	}
	if (r5_backend_check(r5_backend_cuda()) != R5_OK) {
		printf("FAIL: CUDA back-end table: %s\n", r5_last_error());
		bad = 1;
	}
	if (strcmp(r5_backend_cuda()->name, "cuda") != 0 || r5_backend_cuda()->residency != R5_DEVICE) {
		printf("FAIL: CUDA back end is not named cuda / not device-resident\n");
		bad = 1;
	}
	if (!suite_fft_layout_check())
		bad = 1;
	int count = r5_cuda_device_count();
	r5_ctx *ctx = NULL;
	r5_status st = r5_ctx_create(&ctx, "gpu", count); /* one past the last device */
	if (st == R5_OK || ctx || strlen(r5_last_error()) == 0) {
		printf("FAIL: a GPU context on absent device %d did not fail with a message\n", count);
		bad = 1;
	}
	r5_ctx_destroy(ctx);
	return bad;
}

int main(void)
{
	r5_log_set_level(R5_LOG_WARN);
	const char *env = getenv("R5_GPU_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	printf("seed %llu (R5_GPU_SEED=%llu repeats this run)\n", (unsigned long long)seed, (unsigned long long)seed);
	suite_seed(seed);
	if (check_without_device()) {
		printf("FAIL: checks without a device\n");
		return 1;
	}
	/* R5_GPU_SUITE_SELFTEST=1: both sides on the CPU back end, to check the suite itself on a
	 * machine without a GPU (every row must pass with error 0). */
	const char *selftest = getenv("R5_GPU_SUITE_SELFTEST");
	g_suite.selftest = selftest && *selftest && strcmp(selftest, "0") != 0;
	if (r5_cuda_device_count() == 0 && !g_suite.selftest) {
		printf("SKIP: no CUDA device (back-end table and ABI layout checked)\n");
		return 77;
	}
	struct pair p = {0};
	if (r5_ctx_create(&p.cpu, "cpu", 0) != R5_OK || r5_ctx_create(&p.gpu, g_suite.selftest ? "cpu" : "gpu", 0) != R5_OK) {
		printf("FAIL: context creation: %s\n", r5_last_error());
		r5_ctx_destroy(p.cpu);
		return 1;
	}
	p.cb = r5_ctx_backend(p.cpu);
	p.cs = r5_ctx_state(p.cpu);
	p.gb = r5_ctx_backend(p.gpu);
	p.gs = r5_ctx_state(p.gpu);
	printf("cpu: %s\ngpu: %s\n\n", r5_ctx_describe(p.cpu), r5_ctx_describe(p.gpu));
	printf("%-22s | %-30s | %9s | %9s | %s\n", "op", "shape", "rel err", "max abs", "result");
	printf("-----------------------+--------------------------------+-----------+-----------+-------\n");

	suite_elementwise(&p);
	suite_strided(&p);
	suite_fft(&p);
	suite_linalg(&p);
	suite_generic(&p);
	suite_linops(&p);
	suite_wavelet(&p);
	suite_nufft(&p);

	r5_ctx_destroy(p.gpu);
	r5_ctx_destroy(p.cpu);
	printf("\n%d passed, %d failed\n", g_suite.passed, g_suite.failed);
	return g_suite.failed ? 1 : 0;
}
