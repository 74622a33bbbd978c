/* bench_grid: frame-level gridding (recon/pipeline/grid.h) on the CPU — the work a real-time
 * frame costs: r5_grid_frame (ramp weights, set points, adjoint NUFFT, rss) of one golden-angle
 * frame, 2D 256^2, 8 coils, 21 spokes of 512 samples (2x oversampled readout), a new trajectory
 * each frame (the plan reused). Per NUFFT setting (oversampling, kernel width): median and p99
 * wall ms over the frames, and CPU ms (all threads) per frame. Then the real radial set
 * (../shared/data/gpunufft-radial-cardiac: 25 spokes x 256 samples, 12 coils, 256^2) when it is
 * there: one frame, best of 5.
 *
 * Usage: bench_grid [FRAMES] [DATA_DIR]   (FRAMES default 60; DATA_DIR default
 * ../shared/data/gpunufft-radial-cardiac relative to the working directory, or $R5_SHARED/data/...) */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recon/core/array.h"
#include "recon/core/ctx.h"
#include "recon/io/cfl.h"
#include "recon/pipeline/grid.h"

#define NX 256
#define COILS 8
#define SPOKES 21
#define READ 512

static double wall(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void golden_frame(long frame, float *k)
{
	const double psi = 3.14159265358979323846 / ((1.0 + sqrt(5.0)) / 2.0);
	for (long s = 0; s < SPOKES; s++) {
		double a = (double)(frame * SPOKES + s) * psi;
		for (long i = 0; i < READ; i++) {
			double r = (double)(i - READ / 2) * (double)NX / (double)READ;
			k[3 * (i + READ * s)] = (float)(r * cos(a));
			k[3 * (i + READ * s) + 1] = (float)(r * sin(a));
			k[3 * (i + READ * s) + 2] = 0.0f;
		}
	}
}

static int run_setting(r5_ctx *ctx, double sigma, int width, long frames)
{
	long idims[R5_DIMS], sdims[R5_DIMS], odims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		idims[d] = sdims[d] = odims[d] = 1;
	idims[0] = idims[1] = odims[0] = odims[1] = NX;
	idims[3] = COILS;
	sdims[1] = READ, sdims[2] = SPOKES, sdims[3] = COILS;
	r5_nufft_opts o = r5_nufft_defaults;
	o.oversampling = sigma;
	o.width = width;
	r5_grid_plan *plan = NULL;
	r5_array *y = NULL, *img = NULL;
	float *k = malloc(sizeof(float) * 3 * READ * SPOKES);
	double *ms = malloc(sizeof(double) * (size_t)frames);
	if (!k || !ms || r5_grid_plan_make(ctx, idims, &o, &plan) != R5_OK || r5_array_alloc_host(sdims, &y) != R5_OK ||
	    r5_array_alloc_host(odims, &img) != R5_OK) {
		fprintf(stderr, "bench_grid: %s\n", r5_last_error());
		return 1;
	}
	for (long j = 0; j < r5_array_size(y); j++)
		y->data[j] = (float)((j * 7919) % 1000) / 1000.0f - 0.5f + I * 0.1f;
	double c0 = 0;
	for (long f = -2; f < frames; f++) { /* two warm-up frames (FFT plans, first allocations) */
		golden_frame(f + 2, k);
		if (f == 0)
			c0 = cpu();
		double t = wall();
		if (r5_grid_frame(ctx, plan, READ * SPOKES, k, NULL, y, NULL, NULL, img) != R5_OK) {
			fprintf(stderr, "bench_grid: %s\n", r5_last_error());
			return 1;
		}
		if (f >= 0)
			ms[f] = 1e3 * (wall() - t);
	}
	double cpu_ms = 1e3 * (cpu() - c0) / (double)frames;
	qsort(ms, (size_t)frames, sizeof *ms, cmp);
	long p99 = (long)ceil(0.99 * (double)frames) - 1;
	printf("  sigma %.2f  width %2d  %8.1f %8.1f %8.1f\n", sigma, width, ms[frames / 2], ms[p99 < 0 ? 0 : p99], cpu_ms);
	free(k);
	free(ms);
	r5_array_free(y);
	r5_array_free(img);
	r5_grid_plan_destroy(plan);
	return 0;
}

static int real_set(r5_ctx *ctx, const char *dir)
{
	char kp[1100], tp[1100];
	snprintf(kp, sizeof kp, "%s/ksp.cfl", dir);
	snprintf(tp, sizeof tp, "%s/traj.cfl", dir);
	r5_array *ksp = NULL, *traj = NULL, *img = NULL;
	if (r5_cfl_read(kp, &ksp) != R5_OK || r5_cfl_read(tp, &traj) != R5_OK) {
		printf("real radial set: SKIP (%s)\n", r5_last_error());
		r5_array_free(ksp);
		return 0;
	}
	long idims[R5_DIMS], odims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		idims[d] = odims[d] = 1;
	idims[0] = idims[1] = odims[0] = odims[1] = 256;
	idims[3] = ksp->dims[3];
	long n = ksp->dims[1] * ksp->dims[2];
	float *k = malloc(sizeof(float) * 3 * (size_t)n);
	r5_grid_plan *plan = NULL;
	int rc = 1;
	if (k && r5_grid_coords(traj, idims, 0, ksp->dims[2], k) == R5_OK && r5_grid_plan_make(ctx, idims, NULL, &plan) == R5_OK &&
	    r5_array_alloc_host(odims, &img) == R5_OK) {
		double best = 1e9, best_cpu = 0;
		rc = 0;
		for (int i = 0; i < 6 && !rc; i++) {
			double t = wall(), c = cpu();
			rc = r5_grid_frame(ctx, plan, n, k, NULL, ksp, NULL, NULL, img) != R5_OK;
			if (i > 0 && wall() - t < best) /* the first run plans the FFTs */
				best = wall() - t, best_cpu = cpu() - c;
		}
		if (!rc)
			printf("real radial set (%ld spokes x %ld samples, %ld coils, 256^2): best of 5 %.1f ms wall, %.1f ms CPU\n",
			       ksp->dims[2], ksp->dims[1], ksp->dims[3], 1e3 * best, 1e3 * best_cpu);
	}
	if (rc)
		fprintf(stderr, "bench_grid: real set: %s\n", r5_last_error());
	free(k);
	r5_grid_plan_destroy(plan);
	r5_array_free(ksp);
	r5_array_free(traj);
	r5_array_free(img);
	return rc;
}

int main(int argc, char **argv)
{
	long frames = argc > 1 ? atol(argv[1]) : 60;
	char dir[1024];
	const char *shared = getenv("R5_SHARED");
	if (argc > 2)
		snprintf(dir, sizeof dir, "%s", argv[2]);
	else
		snprintf(dir, sizeof dir, "%s/data/gpunufft-radial-cardiac", shared ? shared : "../shared");
	if (frames < 1)
		frames = 1;
	r5_ctx *ctx = NULL;
	if (r5_ctx_create(&ctx, "cpu", 0) != R5_OK) {
		fprintf(stderr, "bench_grid: %s\n", r5_last_error());
		return 1;
	}
	printf("gridding one frame: %dx%d, %d coils, %d spokes x %d samples, %ld frames\n", NX, NX, COILS, SPOKES, READ,
	       frames);
	printf("  setting             median_ms   p99_ms  cpu_ms\n");
	int rc = run_setting(ctx, 2.0, 6, frames) || run_setting(ctx, 2.0, 4, frames) || run_setting(ctx, 1.25, 7, frames) ||
		 real_set(ctx, dir);
	r5_ctx_destroy(ctx);
	return rc;
}
