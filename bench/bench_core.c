/* bench_core: throughput of the numerical core on the CPU and (when present) the GPU, through
 * the public library API only.
 *
 *   op | size | backend | ms | GB/s | % of bound
 *
 * (zgemm rows: the GB/s column is G complex multiply-adds per second.)
 * ms is the median of several runs after a warm-up, each bracketed by the back end's sync and
 * a monotonic clock. GB/s counts the fewest bytes the operation must move (each input read
 * once, each output written once; an FFT reads and writes its array once), and "% of bound" is
 * that rate over the measured memory bandwidth of the same back end: a large device-to-device
 * copy on the GPU, a large memcpy on the CPU (bytes read + bytes written). For the
 * reconstructions the bytes are k-space in + images out, and the time includes the host<->device
 * transfers and every stage, so their percentage says how far a whole job is from one pass over
 * its data.
 *
 * Usage: bench_core [--cpu-only | --gpu-only] [--quick]
 * --quick uses smaller sizes (CI smoke run). Phantom scans are written to $TMPDIR (or /tmp) once
 * and reused across runs. The CPU part stays under about a minute on two cores. */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "phantoms/phantom.h"
#include "recon/backends/backends.h"
#include "recon/core/array.h"
#include "recon/core/ctx.h"
#include "recon/core/dims.h"
#include "recon/core/fft.h"
#include "recon/core/log.h"
#include "recon/io/scan.h"
#include "recon/pipeline/pipeline.h"

struct bench {
	r5_ctx *ctx;
	const char *backend;
	double peak_gbs;
	int runs;
	int quick;
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static r5_status sync_ctx(r5_ctx *ctx) { return r5_ctx_backend(ctx)->sync(r5_ctx_state(ctx)); }

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef r5_status (*bench_fn)(r5_ctx *ctx, void *arg);

/* Median seconds of `runs` runs after one warm-up; negative on failure (message printed). */
static double time_median(struct bench *b, int runs, bench_fn fn, void *arg)
{
	double times[64];
	if (runs > 64)
		runs = 64;
	for (int r = -1; r < runs; r++) {
		if (sync_ctx(b->ctx) != R5_OK)
			return -1;
		double t0 = now_s();
		r5_status st = fn(b->ctx, arg);
		if (st == R5_OK)
			st = sync_ctx(b->ctx);
		if (st != R5_OK) {
			fprintf(stderr, "bench_core: %s: %s\n", b->backend, r5_last_error());
			return -1;
		}
		if (r >= 0)
			times[r] = now_s() - t0;
	}
	qsort(times, (size_t)runs, sizeof times[0], cmp_double);
	return times[runs / 2];
}

static void row(struct bench *b, const char *op, const char *size, double seconds, double bytes)
{
	if (seconds < 0) {
		printf("%-24s | %-18s | %-7s | %9s | %8s | %s\n", op, size, b->backend, "failed", "-", "-");
		return;
	}
	double gbs = bytes / seconds / 1e9;
	printf("%-24s | %-18s | %-7s | %9.3f | %8.1f | %5.1f%%\n", op, size, b->backend, seconds * 1e3, gbs,
	       b->peak_gbs > 0 ? 100.0 * gbs / b->peak_gbs : 0.0);
	fflush(stdout);
}

static void dims4(long dims[R5_DIMS], long x, long y, long z, long c)
{
	r5_dims_ones(dims);
	dims[0] = x, dims[1] = y, dims[2] = z, dims[3] = c;
}

/* Work array filled with deterministic non-zero values (never time on zeros). */
static r5_status random_work(r5_ctx *ctx, const long dims[R5_DIMS], unsigned seed, r5_array **out)
{
	r5_array *host = NULL;
	R5_TRY(r5_array_alloc_host(dims, &host));
	unsigned s = seed * 2654435761u + 1;
	for (long i = 0; i < r5_array_size(host); i++) {
		s = s * 1664525u + 1013904223u;
		float re = (float)(s >> 8) / 16777216.0f - 0.5f;
		s = s * 1664525u + 1013904223u;
		float im = (float)(s >> 8) / 16777216.0f - 0.5f;
		host->data[i] = CMPLXF(re, im);
	}
	r5_status st = r5_array_to_work(ctx, host, out);
	r5_array_free(host);
	return st;
}

/* --- memory bandwidth: one large copy, where the back end computes --- */

struct copy_arg {
	r5_array *dst, *src;
};

static r5_status do_copy(r5_ctx *ctx, void *arg)
{
	struct copy_arg *a = arg;
	return r5_array_copy(ctx, a->dst, a->src);
}

static void measure_peak(struct bench *b)
{
	long dims[R5_DIMS];
	dims4(dims, b->quick ? 1L << 22 : 1L << 26, 1, 1, 1); /* 32 MiB / 512 MiB */
	struct copy_arg a = {0};
	if (random_work(b->ctx, dims, 1, &a.src) == R5_OK && r5_array_alloc_work(b->ctx, dims, &a.dst) == R5_OK) {
		double bytes = 2.0 * (double)r5_array_size(a.src) * sizeof(float complex);
		double t = time_median(b, b->runs, do_copy, &a);
		b->peak_gbs = t > 0 ? bytes / t / 1e9 : 0;
		row(b, "bound: large copy", b->quick ? "32 MiB" : "512 MiB", t, bytes);
	} else {
		fprintf(stderr, "bench_core: %s bandwidth: %s\n", b->backend, r5_last_error());
	}
	r5_array_free(a.src);
	r5_array_free(a.dst);
}

/* --- operations --- */

struct fft_arg {
	r5_array *x;
	unsigned long flags;
};

static r5_status do_fft(r5_ctx *ctx, void *arg)
{
	struct fft_arg *a = arg;
	return r5_fft(ctx, a->flags, a->x, a->x);
}

static void bench_fft(struct bench *b, const char *op, const char *size, const long dims[R5_DIMS],
		      unsigned long flags, int runs)
{
	struct fft_arg a = {NULL, flags};
	double t = -1;
	if (random_work(b->ctx, dims, 2, &a.x) == R5_OK)
		t = time_median(b, runs, do_fft, &a);
	else
		fprintf(stderr, "bench_core: %s: %s\n", op, r5_last_error());
	row(b, op, size, t, a.x ? 2.0 * (double)r5_array_size(a.x) * sizeof(float complex) : 0);
	r5_array_free(a.x);
}

struct zmul_arg {
	r5_array *out, *img, *maps;
};

static r5_status do_zmul(r5_ctx *ctx, void *arg)
{
	struct zmul_arg *a = arg;
	return r5_zmul(ctx, a->out, a->img, a->maps, 0);
}

static void bench_zmul(struct bench *b)
{
	long dims[R5_DIMS], img_dims[R5_DIMS];
	long n = b->quick ? 128 : 256;
	dims4(dims, n, n, 1, 32);
	dims4(img_dims, n, n, 1, 1);
	struct zmul_arg a = {0};
	double t = -1, bytes = 0;
	if (random_work(b->ctx, img_dims, 3, &a.img) == R5_OK && random_work(b->ctx, dims, 4, &a.maps) == R5_OK &&
	    r5_array_alloc_work(b->ctx, dims, &a.out) == R5_OK) {
		t = time_median(b, b->runs, do_zmul, &a);
		bytes = (2.0 * (double)r5_array_size(a.out) + (double)r5_array_size(a.img)) * sizeof(float complex);
	}
	row(b, "zmul coil expansion", b->quick ? "128x128 x 32" : "256x256 x 32", t, bytes);
	r5_array_free(a.out);
	r5_array_free(a.img);
	r5_array_free(a.maps);
}

struct dot_arg {
	r5_array *x, *y;
};

static r5_status do_dot(r5_ctx *ctx, void *arg)
{
	struct dot_arg *a = arg;
	double complex result;
	return r5_zdot(ctx, a->x, a->y, &result);
}

static void bench_zdot(struct bench *b)
{
	long dims[R5_DIMS];
	dims4(dims, b->quick ? 1L << 20 : 1L << 24, 1, 1, 1);
	struct dot_arg a = {0};
	double t = -1;
	if (random_work(b->ctx, dims, 5, &a.x) == R5_OK && random_work(b->ctx, dims, 6, &a.y) == R5_OK)
		t = time_median(b, b->runs, do_dot, &a);
	row(b, "zdot", b->quick ? "1M" : "16M", t, 2.0 * (double)(dims[0]) * sizeof(float complex));
	r5_array_free(a.x);
	r5_array_free(a.y);
}

/* --- dense linear algebra: zgemm at the shapes its callers use, and the per-pixel
 * eigenproblems of ESPIRiT; the GB/s column is G complex multiply-adds per second here (the
 * operation is compute-bound), "% of bound" is then meaningless and printed as 0 --- */

struct gemm_arg {
	int trans_a;
	long m, n, k;
	r5_array *a, *b, *c;
};

static r5_status do_gemm(r5_ctx *ctx, void *arg)
{
	struct gemm_arg *g = arg;
	return r5_zgemm(ctx, g->trans_a, g->m, g->n, g->k, 1.0f, g->a->data, g->trans_a ? g->k : g->m, g->b->data, g->k,
			0.0f, g->c->data, g->m);
}

static void bench_zgemm(struct bench *b, const char *op, int trans_a, long m, long n, long k)
{
	long da[R5_DIMS], db[R5_DIMS], dc[R5_DIMS];
	dims4(da, m * k, 1, 1, 1);
	dims4(db, k * n, 1, 1, 1);
	dims4(dc, m * n, 1, 1, 1);
	struct gemm_arg g = {trans_a, m, n, k, NULL, NULL, NULL};
	double t = -1;
	if (random_work(b->ctx, da, 7, &g.a) == R5_OK && random_work(b->ctx, db, 8, &g.b) == R5_OK &&
	    r5_array_alloc_work(b->ctx, dc, &g.c) == R5_OK)
		t = time_median(b, b->runs, do_gemm, &g);
	char size[32];
	snprintf(size, sizeof size, "%ldx%ldx%ld%s", m, n, k, trans_a ? " A^H" : "");
	double peak = b->peak_gbs;
	b->peak_gbs = 0;
	row(b, op, size, t, (double)m * n * k); /* "GB/s" = G MAC/s */
	b->peak_gbs = peak;
	r5_array_free(g.a);
	r5_array_free(g.b);
	r5_array_free(g.c);
}

struct eig_arg {
	long batch;
	int n, k;
	r5_array *src, *work, *evals;
};

static r5_status do_eig(r5_ctx *ctx, void *arg)
{
	struct eig_arg *e = arg;
	R5_TRY(r5_array_copy(ctx, e->work, e->src));
	return r5_zheev_top_batched(ctx, e->batch, e->n, e->k, e->work->data, (float *)e->evals->data);
}

/* ESPIRiT-like Hermitian PSD matrices (one dominant direction plus a little of everything). */
static r5_status espirit_like_matrices(r5_ctx *ctx, long batch, int n, r5_array **out)
{
	long dims[R5_DIMS];
	dims4(dims, (long)n * n, batch, 1, 1);
	r5_array *host = NULL;
	R5_TRY(r5_array_alloc_host(dims, &host));
	unsigned s = 12345;
	for (long p = 0; p < batch; p++) {
		float complex v[64], w[64];
		for (int i = 0; i < n; i++) {
			s = s * 1664525u + 1013904223u;
			v[i] = CMPLXF((float)(s >> 8) / 16777216.0f - 0.5f, (float)((s >> 4) & 1023) / 1024.0f - 0.5f);
			s = s * 1664525u + 1013904223u;
			w[i] = 0.1f * CMPLXF((float)(s >> 8) / 16777216.0f - 0.5f, (float)((s >> 4) & 1023) / 1024.0f - 0.5f);
		}
		for (int c = 0; c < n; c++)
			for (int r = 0; r < n; r++)
				host->data[p * n * n + r + c * n] = v[r] * conjf(v[c]) + w[r] * conjf(w[c]) + (r == c ? 0.01f : 0);
	}
	r5_status st = r5_array_to_work(ctx, host, out);
	r5_array_free(host);
	return st;
}

static void bench_eig(struct bench *b, long batch, int n, int k)
{
	long de[R5_DIMS];
	dims4(de, (batch * n + 1) / 2, 1, 1, 1);
	struct eig_arg e = {batch, n, k, NULL, NULL, NULL};
	double t = -1;
	if (espirit_like_matrices(b->ctx, batch, n, &e.src) == R5_OK &&
	    r5_array_alloc_work(b->ctx, e.src->dims, &e.work) == R5_OK && r5_array_alloc_work(b->ctx, de, &e.evals) == R5_OK)
		t = time_median(b, b->runs, do_eig, &e);
	char size[32];
	snprintf(size, sizeof size, "%ld x %dx%d k=%d", batch, n, n, k);
	row(b, "zheev_top (espirit)", size, t, 2.0 * (double)batch * n * n * sizeof(float complex));
	r5_array_free(e.src);
	r5_array_free(e.work);
	r5_array_free(e.evals);
}

/* --- reconstructions of phantom scans --- */

struct recon_arg {
	const r5_scan *scan;
	r5_recon_params params;
};

static r5_status do_recon(r5_ctx *ctx, void *arg)
{
	struct recon_arg *a = arg;
	r5_image_set *images = NULL;
	r5_status st = r5_recon_run(ctx, a->scan, &a->params, NULL, &images);
	r5_image_set_free(images);
	return st;
}

/* The phantom file for these parameters, written once into $TMPDIR. */
static r5_status phantom_scan(const struct r5_phantom_params *p, r5_scan **scan)
{
	const char *tmp = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof path, "%s/r5_bench_%s_%dx%dx%d_%dc.h5", tmp && *tmp ? tmp : "/tmp",
		 r5_phantom_kind_name(p->kind), p->matrix[0], p->matrix[1], p->matrix[2], p->n_coils);
	if (access(path, R_OK) != 0)
		R5_TRY(r5_phantom_write(p, path, NULL));
	return r5_scan_read_ismrmrd(path, NULL, NULL, scan);
}

static void bench_recon(struct bench *b, const char *op, const struct r5_phantom_params *p, int runs)
{
	char size[32];
	snprintf(size, sizeof size, "%dx%dx%d x %d", p->matrix[0], p->matrix[1], p->matrix[2], p->n_coils);
	r5_scan *scan = NULL;
	struct recon_arg a = {NULL, r5_recon_defaults};
	double t = -1, bytes = 0;
	if (phantom_scan(p, &scan) == R5_OK && r5_recon_params_set(&a.params, "pipeline", "cartesian") == R5_OK) {
		a.scan = scan;
		t = time_median(b, runs, do_recon, &a);
		double images = (double)p->matrix[0] * p->matrix[1] * p->matrix[2];
		bytes = ((double)r5_array_size(scan->kspace) + images) * sizeof(float complex);
	} else {
		fprintf(stderr, "bench_core: %s: %s\n", op, r5_last_error());
	}
	row(b, op, size, t, bytes);
	r5_scan_free(scan);
}

static void bench_backend(struct bench *b)
{
	long d2[R5_DIMS], d3[R5_DIMS];
	int cpu = strcmp(b->backend, "cpu") == 0;
	int big_runs = cpu ? 3 : b->runs;
	long n2 = b->quick ? 128 : 256, n3 = b->quick ? 64 : 128;
	char s2[32], s3[32];
	snprintf(s2, sizeof s2, "%ldx%ld x 32", n2, n2);
	snprintf(s3, sizeof s3, "%ld^3 x 8", n3);
	dims4(d2, n2, n2, 1, 32);
	dims4(d3, n3, n3, n3, 8);
	measure_peak(b);
	bench_fft(b, "fft 2D centred", s2, d2, R5_FLAG(0) | R5_FLAG(1), b->runs);
	bench_fft(b, "fft 3D centred", s3, d3, R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(2), big_runs);
	bench_zmul(b);
	bench_zdot(b);
	/* zgemm: square; ESPIRiT's P = V V^H block (n = 6^3 x 8 kernels, ~500 kept); the calibration
	 * Gram A^H A of coil compression / noise (tall-skinny); GRAPPA's A^H T; coil compression's
	 * [voxels x C] x [C x N] mixing */
	long q = b->quick ? 4 : 1;
	bench_zgemm(b, "zgemm square", 0, 256 / q, 256 / q, 256 / q);
	bench_zgemm(b, "zgemm espirit P", 0, 1728 / q, 64, 500 / q);
	bench_zgemm(b, "zgemm gram A^H A", 1, 32, 32, 8L * 24 * 24 * 24 / (4 * q));
	bench_zgemm(b, "zgemm grappa A^H T", 1, 288, 16, 4000 / q);
	bench_zgemm(b, "zgemm cc mixing", 0, 100000 / q, 8, 32);
	bench_eig(b, b->quick ? 16384 : 131072, 8, 1);
	bench_eig(b, b->quick ? 512 : 4096, 32, 2);
	struct r5_phantom_params p2 = r5_phantom_defaults_2d, p3 = r5_phantom_defaults_3d;
	p2.matrix[0] = p2.matrix[1] = (int)n2;
	p2.n_coils = 32;
	p3.matrix[0] = p3.matrix[1] = p3.matrix[2] = (int)n3;
	p3.n_coils = 8;
	bench_recon(b, "recon cartesian 2D", &p2, big_runs);
	bench_recon(b, "recon cartesian 3D", &p3, cpu ? 1 : b->runs);
}

int main(int argc, char **argv)
{
	int want_cpu = 1, want_gpu = 1, quick = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cpu-only"))
			want_gpu = 0;
		else if (!strcmp(argv[i], "--gpu-only"))
			want_cpu = 0;
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else {
			fprintf(stderr, "usage: bench_core [--cpu-only | --gpu-only] [--quick]\n");
			return 2;
		}
	}
	r5_log_set_level(R5_LOG_WARN);
	printf("%-24s | %-18s | %-7s | %9s | %8s | %s\n", "op", "size", "backend", "ms", "GB/s", "% of bound");
	printf("-------------------------+--------------------+---------+-----------+----------+-----------\n");
	const char *names[2] = {"cpu", "gpu"};
	int wanted[2] = {want_cpu, want_gpu && r5_cuda_device_count() > 0};
	for (int k = 0; k < 2; k++) {
		if (!wanted[k])
			continue;
		struct bench b = {NULL, k ? "cuda" : "cpu", 0, k ? 20 : 5, quick};
		if (r5_ctx_create(&b.ctx, names[k], 0) != R5_OK) {
			fprintf(stderr, "bench_core: %s: %s\n", names[k], r5_last_error());
			continue;
		}
		fprintf(stderr, "bench_core: %s\n", r5_ctx_describe(b.ctx));
		bench_backend(&b);
		r5_ctx_destroy(b.ctx);
	}
	if (want_gpu && !wanted[1])
		printf("(no CUDA device: GPU rows skipped)\n");
	return 0;
}
