/* The per-frame cost of pipeline realtime's mode iterative (service/server/realtime.c) without the
 * service: sliding windows of the dynamic phantom (phantoms/dynamic.h) solved frame by frame by
 * CG-SENSE (recon/pipeline/nc_sense.h) with ESPIRiT maps from window 0 (as the frame thread does),
 * the realtime defaults' NUFFT (sigma 1.25, tolerance 1e-3). Three runs over the same windows:
 *
 *   rebuild  make + solve + destroy per frame (what r5_nc_sense_solve does: the frame thread
 *            before the kept solver), warm-started from the previous frame
 *   kept     one r5_nc_sense_frames for the series, warm-started: must be rebuild's bits
 *   pair     kept, warm-started, the normal by the NUFFT pair (R5_NC_NORMAL_NUFFT), no kernel
 *   cold     pair, every frame from zero (what the warm start buys)
 *
 * Printed: per-frame CPU seconds (the process's user + sys, all threads) by stage (plan, points,
 * Toeplitz, rhs, CG) for frame 0 and the mean of the others, the wall mean, and each run's
 * per-frame magnitude NRMSE against the truth (least-squares scale per frame; the truth of the
 * phantom block holding the window's middle spoke: the phantom is simulated in blocks of
 * frame_step spokes, so for frame_step < frame_spokes the truth's time is up to frame_step / 2
 * spokes from the window's middle), and the differences kept - rebuild and pair - rebuild.
 *
 * Options: --matrix N (256) --coils C (8) --frame-spokes S (21) --frame-step T (21) --frames F
 *          (12) --iters I (5, the realtime default) --noise SIGMA (0) --threads K (OpenMP)
 * R5_FFT_WISDOM=PATH: FFTW_MEASURE plans kept in PATH (as recon5td's fft_wisdom). */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../phantoms/dynamic.h"
#include "../recon/core/ctx.h"
#include "../recon/cpu/cpu_fft.h"
#include "../recon/pipeline/grid.h"
#include "../recon/pipeline/nc_sense.h"
#include "../recon/pipeline/quality.h"

enum { RUN_REBUILD, RUN_KEPT, RUN_PAIR, RUN_COLD, RUNS };
static const char *const run_names[RUNS] = {"rebuild", "kept", "pair", "cold"};

typedef struct bench {
	long N, C, fs, step, frames, n_read, image_dims[R5_DIMS];
	int iters;
	r5_dynamic_scan scan;
	float *coords; /* all spokes' */
	r5_array *window, *maps;
	r5_array *images[RUNS]; /* [N, N, 1, .. frames in dim 10] */
	double cpu[RUNS][R5_NC_STAGES], cpu0[RUNS][R5_NC_STAGES], wall[RUNS];
} bench;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const char *what)
{
	fprintf(stderr, "bench_rt_iterative: %s: %s\n", what, r5_last_error());
	return 1;
}

static long arg_long(int argc, char **argv, const char *name, long fallback)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return strtol(argv[i + 1], NULL, 10);
	return fallback;
}

/* frame f's samples [1, n_read, fs, C] and coordinates (from all spokes, as arrived) */
static const float *window_of(bench *b, long f)
{
	long first = f * b->step, all = b->scan.n_spokes * b->n_read, n = b->fs * b->n_read;
	for (long c = 0; c < b->C; c++)
		memcpy(b->window->data + c * n, b->scan.samples->data + c * all + first * b->n_read,
		       sizeof(float complex) * (size_t)n);
	return b->coords + 3 * first * b->n_read;
}

static r5_array frame_view(const r5_array *series, long f)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, series->dims);
	dims[R5_DIM_TIME] = 1;
	return r5_array_view_strided(series, dims, NULL, f * series->strides[R5_DIM_TIME]);
}

static r5_status run(r5_ctx *ctx, bench *b, int which)
{
	r5_nc_sense_opts opts = r5_nc_sense_defaults;
	opts.iters = b->iters;
	opts.nufft.oversampling = 1.25;
	opts.nufft.tolerance = 1e-3;
	opts.normal = which >= RUN_PAIR ? R5_NC_NORMAL_NUFFT : R5_NC_NORMAL_TOEPLITZ;
	r5_nc_sense_frames *kept = NULL;
	if (which != RUN_REBUILD)
		R5_TRY(r5_nc_sense_frames_make(ctx, b->image_dims, &opts, &kept));
	long n_points = b->n_read * b->fs;
	r5_status s = R5_OK;
	for (long f = 0; s == R5_OK && f < b->frames; f++) {
		const float *coords = window_of(b, f);
		r5_array image = frame_view(b->images[which], f);
		if (f > 0 && which != RUN_COLD) { /* the previous frame's image */
			r5_array previous = frame_view(b->images[which], f - 1);
			memcpy(image.data, previous.data, sizeof(float complex) * (size_t)(b->N * b->N));
		}
		double t0 = now_s();
		r5_nc_sense_frames *frames = kept;
		if (!kept)
			s = r5_nc_sense_frames_make(ctx, b->image_dims, &opts, &frames);
		if (s == R5_OK)
			s = r5_nc_sense_frames_solve(ctx, frames, n_points, coords, b->window, b->maps,
						     f > 0 && which != RUN_COLD, NULL, &image);
		r5_nc_sense_timing t;
		if (s == R5_OK) {
			r5_nc_sense_frames_timing(frames, &t);
			if (kept && f > 0)
				t.cpu_s[R5_NC_STAGE_PLAN] = 0; /* made once, before frame 0 */
		}
		if (!kept)
			r5_nc_sense_frames_destroy(frames);
		if (s != R5_OK)
			break;
		for (int k = 0; k < R5_NC_STAGES; k++)
			(f == 0 ? b->cpu0[which] : b->cpu[which])[k] += t.cpu_s[k];
		if (f > 0)
			b->wall[which] += now_s() - t0;
	}
	r5_nc_sense_frames_destroy(kept);
	return s;
}

/* per-frame NRMSE of a run against the truth block holding each window's middle spoke */
static void print_quality(const bench *b, int which, double *mean)
{
	printf("%-8s nrmse", run_names[which]);
	*mean = 0;
	for (long f = 0; f < b->frames; f++) {
		long block = (f * b->step + (b->fs - 1) / 2) / b->step;
		r5_array truth = frame_view(b->scan.truth, block), image = frame_view(b->images[which], f);
		r5_quality q = {0};
		if (r5_quality_compare(&truth, &image, 1, &q) != R5_OK)
			q.nrmse = NAN;
		printf(" %.4f", q.nrmse);
		*mean += q.nrmse / (double)b->frames;
	}
	printf("  mean %.4f\n", *mean);
}

static double max_difference(const bench *b, int x, int y, double *rel)
{
	double worst = 0, norm = 0, diff = 0;
	long n = r5_array_size(b->images[x]);
	for (long i = 0; i < n; i++) {
		double d = cabs(b->images[x]->data[i] - b->images[y]->data[i]);
		worst = d > worst ? d : worst;
		diff += d * d;
		norm += cabs(b->images[y]->data[i]) * cabs(b->images[y]->data[i]);
	}
	*rel = norm > 0 ? sqrt(diff / norm) : 0;
	return worst;
}

static r5_status setup(r5_ctx *ctx, bench *b, int argc, char **argv)
{
	struct r5_phantom_params p = r5_phantom_defaults_dynamic;
	b->N = arg_long(argc, argv, "--matrix", 256), b->C = arg_long(argc, argv, "--coils", 8);
	b->fs = arg_long(argc, argv, "--frame-spokes", 21), b->step = arg_long(argc, argv, "--frame-step", 21);
	b->frames = arg_long(argc, argv, "--frames", 12), b->iters = (int)arg_long(argc, argv, "--iters", 5);
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--noise"))
			p.noise_sigma = strtod(argv[i + 1], NULL);
	if (b->N < 16 || b->C < 1 || b->fs < 1 || b->step < 1 || b->frames < 1 || b->iters < 1)
		return r5_set_error(R5_EINVAL, "options out of range");
	long spokes = (b->frames - 1) * b->step + b->fs;
	p.matrix[0] = p.matrix[1] = (int)b->N;
	p.fov_mm[0] = p.fov_mm[1] = 2.0 * (double)b->N;
	p.n_coils = (int)b->C, p.frame_spokes = (int)b->step, p.n_frames = (int)((spokes + b->step - 1) / b->step);
	R5_TRY(r5_dynamic_simulate(&p, 1, &b->scan));
	b->n_read = b->scan.n_read;
	long all = b->n_read * b->scan.n_spokes;
	b->coords = malloc(sizeof *b->coords * 3 * (size_t)all);
	if (!b->coords)
		return r5_set_error(R5_ENOMEM, "coordinates");
	for (long i = 0; i < 3 * all; i++)
		b->coords[i] = crealf(b->scan.traj->data[i]);
	r5_dims_ones(b->image_dims);
	b->image_dims[0] = b->image_dims[1] = b->N, b->image_dims[3] = b->C;
	r5_grid_wrap_coords(b->image_dims, all, b->coords); /* the NUFFT's [-N/2, N/2), as the frame thread */
	long wdims[R5_DIMS], sdims[R5_DIMS];
	r5_dims_ones(wdims);
	wdims[1] = b->n_read, wdims[2] = b->fs, wdims[3] = b->C;
	R5_TRY(r5_array_alloc_host(wdims, &b->window));
	r5_dims_ones(sdims);
	sdims[0] = sdims[1] = b->N, sdims[R5_DIM_TIME] = b->frames;
	for (int r = 0; r < RUNS; r++)
		R5_TRY(r5_array_zeros(NULL, R5_HOST, sdims, &b->images[r]));
	const float *coords = window_of(b, 0);
	struct timespec t0, t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	double wall = now_s();
	R5_TRY(r5_nc_maps_espirit(ctx, b->image_dims, b->n_read * b->fs, coords, b->window, 24, &b->maps));
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	printf("coil maps (ESPIRiT, calibration 24, window 0; what a maps_refresh costs): %.3f CPU s, %.3f s wall\n",
	       (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), now_s() - wall);
	return R5_OK;
}

int main(int argc, char **argv)
{
	bench b;
	memset(&b, 0, sizeof b);
	setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef _OPENMP
	if (arg_long(argc, argv, "--threads", 0) > 0)
		omp_set_num_threads((int)arg_long(argc, argv, "--threads", 0));
#endif
	if (getenv("R5_FFT_WISDOM") && r5_cpu_fft_configure(getenv("R5_FFT_WISDOM")) != R5_OK)
		return fail("fft wisdom");
	r5_ctx *ctx = NULL;
	if (r5_ctx_create(&ctx, "cpu", 0) != R5_OK)
		return fail("context");
	if (setup(ctx, &b, argc, argv) != R5_OK)
		return fail("setup");
	printf("%ldx%ld, %ld coils, windows of %ld spokes every %ld (%ld samples/spoke), %ld frames, %d CG "
	       "iterations, NUFFT 1.25 / 1e-3\n",
	       b.N, b.N, b.C, b.fs, b.step, b.n_read, b.frames, b.iters);
	for (int r = 0; r < RUNS; r++)
		if (run(ctx, &b, r) != R5_OK)
			return fail(run_names[r]);
	printf("CPU s per frame    plan    points  toeplitz rhs     cg      total | wall s\n");
	for (int r = 0; r < RUNS; r++)
		for (int first = 1; first >= 0; first--) {
			const double *t = first ? b.cpu0[r] : b.cpu[r];
			double scale = first ? 1.0 : 1.0 / (double)(b.frames > 1 ? b.frames - 1 : 1), total = 0;
			printf("%-8s %-9s", run_names[r], first ? "frame 0" : "others");
			for (int k = 0; k < R5_NC_STAGES; k++) {
				printf(" %7.4f", t[k] * scale);
				total += t[k] * scale;
			}
			if (first)
				printf(" %7.4f |\n", total);
			else
				printf(" %7.4f | %.4f\n", total, b.wall[r] * scale);
		}
	double mean[RUNS], rel = 0;
	for (int r = 0; r < RUNS; r++)
		print_quality(&b, r, &mean[r]);
	double worst = max_difference(&b, RUN_KEPT, RUN_REBUILD, &rel);
	printf("kept - rebuild: max |difference| %.3g, relative %.3g\n", worst, rel);
	worst = max_difference(&b, RUN_PAIR, RUN_REBUILD, &rel);
	printf("pair - rebuild: max |difference| %.3g, relative %.3g\n", worst, rel);
	for (int r = 0; r < RUNS; r++)
		r5_array_free(b.images[r]);
	r5_array_free(b.window);
	r5_array_free(b.maps);
	free(b.coords);
	r5_dynamic_free(&b.scan);
	r5_ctx_destroy(ctx);
	return 0;
}
