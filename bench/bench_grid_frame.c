/* One real-time frame's gridding (recon/pipeline/grid.h r5_grid_frame: set points, ramp, adjoint
 * NUFFT batched over coils, rss) as recon5td's frame thread runs it: 2D N^2, `coils` coils,
 * frame_spokes golden-angle spokes of 2N samples (2x oversampled readout), a new trajectory
 * every frame. Milliseconds per frame (median and worst of `frames`, wall and CPU of the
 * process) for NUFFT oversampling x tolerance choices, so the latency budget of pipeline
 * realtime (bench_realtime.py) can be split into gridding and the rest.
 *
 * usage: bench_grid_frame [N=256] [coils=8] [frame_spokes=21] [frames=40] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "recon/backends/backends.h"
#include "recon/pipeline/grid.h"

static double now(void)
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

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 256, coils = argc > 2 ? atol(argv[2]) : 8;
	long spokes = argc > 3 ? atol(argv[3]) : 21, frames = argc > 4 ? atol(argv[4]) : 40;
	long n_read = 2 * n, points = n_read * spokes;
	r5_ctx *ctx = NULL;
	if (r5_ctx_create(&ctx, "cpu", 0) != R5_OK) {
		fprintf(stderr, "bench_grid_frame: %s\n", r5_last_error());
		return 1;
	}
	long dims[R5_DIMS], sdims[R5_DIMS], idims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = sdims[d] = idims[d] = 1;
	dims[0] = idims[0] = n, dims[1] = idims[1] = n, dims[3] = coils;
	sdims[1] = n_read, sdims[2] = spokes, sdims[3] = coils;
	r5_array *samples = NULL, *image = NULL;
	r5_array_alloc_host(sdims, &samples);
	r5_array_alloc_host(idims, &image);
	for (long i = 0; i < r5_array_size(samples); i++)
		samples->data[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f + I * 0.1f;
	float *coords = malloc(sizeof *coords * 3 * (size_t)points);
	const double golden = 3.14159265358979323846 / ((1.0 + sqrt(5.0)) / 2.0);
	const struct {
		double sigma, tol;
	} choices[] = {{2.0, 1e-5}, {2.0, 1e-3}, {1.25, 1e-3}, {1.25, 1e-4}};
	printf("r5_grid_frame, %ld^2, %ld coils, %ld spokes x %ld samples (%ld points), %s\n", n, coils, spokes, n_read,
	       points, r5_ctx_describe(ctx));
	printf("| sigma | tolerance | median ms | worst ms | CPU ms/frame |\n|---|---|---|---|---|\n");
	for (size_t c = 0; c < sizeof choices / sizeof choices[0]; c++) {
		r5_nufft_opts opts = r5_nufft_defaults;
		opts.oversampling = choices[c].sigma;
		opts.tolerance = choices[c].tol;
		opts.width = 0;
		r5_grid_plan *plan = NULL;
		if (r5_grid_plan_make(ctx, dims, &opts, &plan) != R5_OK) {
			fprintf(stderr, "bench_grid_frame: %s\n", r5_last_error());
			return 1;
		}
		double *ms = malloc(sizeof *ms * (size_t)frames), cpu0 = 0;
		for (long f = -2; f < frames; f++) { /* two warm-up frames (FFT plans) */
			if (f == 0)
				cpu0 = cpu();
			for (long s = 0; s < spokes; s++)
				for (long i = 0; i < n_read; i++) {
					double a = (double)((f + 2) * spokes + s) * golden, r = (double)(i - n_read / 2) * n / n_read;
					float *k = coords + 3 * (s * n_read + i);
					k[0] = (float)(r * cos(a)), k[1] = (float)(r * sin(a)), k[2] = 0;
				}
			double t = now();
			if (r5_grid_frame(ctx, plan, points, coords, NULL, samples, NULL, NULL, image) != R5_OK) {
				fprintf(stderr, "bench_grid_frame: %s\n", r5_last_error());
				return 1;
			}
			if (f >= 0)
				ms[f] = 1e3 * (now() - t);
		}
		double cpu_ms = 1e3 * (cpu() - cpu0) / (double)frames;
		qsort(ms, (size_t)frames, sizeof *ms, compare);
		printf("| %.2f | %.0e | %.1f | %.1f | %.1f |\n", choices[c].sigma, choices[c].tol, ms[frames / 2],
		       ms[frames - 1], cpu_ms);
		free(ms);
		r5_grid_plan_destroy(plan);
	}
	free(coords);
	r5_array_free(samples);
	r5_array_free(image);
	r5_ctx_destroy(ctx);
	return 0;
}
