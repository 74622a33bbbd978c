/* GRASP against plain gridding and non-Cartesian SENSE per frame on the dynamic phantom
 * (phantoms/dynamic.h, issue 14): per-frame NRMSE and SSIM against the band-limited truth of each
 * frame (recon/pipeline/quality.h, magnitudes, least-squares scale per frame), then the means.
 * All three use the same coil maps (time-averaged ESPIRiT, r5_grasp_maps) and the same data.
 *
 *   gridding   r5_grid_frame per frame (ramp density, maps combination)
 *   nc-sense   r5_nc_sense_solve (recon/pipeline/nc_sense.h) per frame, its defaults (30 CG
 *              iterations, relative Tikhonov 1e-3, no density weights); --sense-iters changes
 *              the iterations. Also printed (mean only): r5_grasp_solve with lambda 0, each
 *              frame's density-weighted least squares by 10 CG iterations on GRASP's operator
 *   grasp      r5_grasp_solve with its defaults (automatic lambda) or --lambda-scale/--rho
 *   l+s        r5_grasp_solve with model R5_GRASP_LPLUSS (low rank + sparse, Otazo 2015), its
 *              default thresholds or --lowrank-scale/--sparse-scale, --ls-iters steps (default
 *              --iters'); --ls-sweep: both scales over 0.005 .. 0.08
 *
 * Options: --matrix N --coils C --frames F --frame-spokes S --noise SIGMA --tr MS
 *          --lambda-scale L --space-scale L --rho R --iters I --cg-iters I --sense-iters I
 *          --sweep (GRASP at lambda_scale 0.005 .. 0.08) --write-cfl PREFIX (data for BART:
 *          PREFIX_ksp [1 n_read fs C 1.. T], PREFIX_traj [3 n_read fs 1.. T], PREFIX_maps,
 *          PREFIX_truth [N N 1.. T]) --compare-cfl FILE (a BART recon [N N 1 .. T] scored like
 *          the others) --score FILE (only that: the phantom's truth and FILE's per-frame scores).
 * R5_FFT_WISDOM=PATH: CPU FFTs planned with FFTW_MEASURE into PATH (as recon5t recon). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../phantoms/dynamic.h"
#include "../recon/core/ctx.h"
#include "../recon/cpu/cpu_fft.h"
#include "../recon/io/cfl.h"
#include "../recon/pipeline/grasp.h"
#include "../recon/pipeline/grid.h"
#include "../recon/pipeline/nc_sense.h"
#include "../recon/pipeline/quality.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_s(void) { return (double)clock() / CLOCKS_PER_SEC; }

#define MAX_FRAMES 512
typedef struct scores {
	double nrmse[MAX_FRAMES], ssim[MAX_FRAMES], mean_nrmse, mean_ssim;
} scores;

/* quality.h's per-frame figures (least-squares scale per frame), kept for the table */
static r5_status score(const r5_array *truth, const r5_array *series, long frames, scores *out)
{
	r5_quality_series q;
	R5_TRY(r5_quality_compare_series(truth, series, NULL, 1, 0, &q));
	r5_status s = q.n_frames == frames ? R5_OK
					   : r5_set_error(R5_EINVAL, "bench_grasp: %ld frames scored, want %ld", q.n_frames, frames);
	for (long t = 0; t < q.n_frames && s == R5_OK; t++)
		out->nrmse[t] = q.frames[t].nrmse, out->ssim[t] = q.frames[t].ssim;
	out->mean_nrmse = q.mean.nrmse, out->mean_ssim = q.mean.ssim;
	r5_quality_series_free(&q);
	return s;
}

static void frame_samples(const r5_dynamic_scan *scan, long t, long C, r5_array *frame)
{
	long np = scan->n_read * scan->frame_spokes;
	for (long c = 0; c < C; c++)
		memcpy(frame->data + c * np, scan->samples->data + np * t + scan->n_read * scan->n_spokes * c,
		       sizeof(float complex) * (size_t)np);
}

/* nc_sense.h's CG-SENSE, frame by frame */
static r5_status frame_sense(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_dynamic_scan *scan,
			     const float *coords, const r5_array *maps, int iters, r5_array *series)
{
	long fs = scan->frame_spokes, nr = scan->n_read, C = image_dims[3], np = nr * fs, dims[R5_DIMS];
	r5_array *frame = NULL;
	r5_dims_ones(dims);
	dims[1] = nr, dims[2] = fs, dims[3] = C;
	R5_TRY(r5_array_alloc_host(dims, &frame));
	r5_nc_sense_opts o = r5_nc_sense_defaults;
	if (iters > 0)
		o.iters = iters;
	r5_status s = R5_OK;
	for (long t = 0; t < scan->n_frames && s == R5_OK; t++) {
		frame_samples(scan, t, C, frame);
		r5_array image = r5_linop_slice(series, R5_DIM_TIME, t);
		s = r5_nc_sense_solve(ctx, image_dims, np, coords + 3 * np * t, frame, maps, &o, NULL, &image);
	}
	r5_array_free(frame);
	return s;
}

static r5_status gridding(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_dynamic_scan *scan, const float *coords,
			  const r5_array *maps, r5_array *series)
{
	long fs = scan->frame_spokes, nr = scan->n_read, C = image_dims[3], np = nr * fs, dims[R5_DIMS];
	r5_grid_plan *plan = NULL;
	r5_array *frame = NULL, *image = NULL;
	R5_TRY(r5_grid_plan_make(ctx, image_dims, NULL, &plan));
	r5_dims_ones(dims);
	dims[1] = nr, dims[2] = fs, dims[3] = C;
	r5_status s = r5_array_alloc_host(dims, &frame);
	r5_dims_copy(dims, image_dims);
	dims[3] = 1;
	if (s == R5_OK)
		s = r5_array_alloc_host(dims, &image);
	long pix = image_dims[0] * image_dims[1];
	for (long t = 0; t < scan->n_frames && s == R5_OK; t++) {
		frame_samples(scan, t, C, frame);
		s = r5_grid_frame(ctx, plan, np, coords + 3 * np * t, NULL, frame, maps, NULL, image);
		if (s == R5_OK)
			memcpy(series->data + t * pix, image->data, sizeof(float complex) * (size_t)pix);
	}
	r5_array_free(frame);
	r5_array_free(image);
	r5_grid_plan_destroy(plan);
	return s;
}

/* BART layouts of the scan, frames in dim 10. */
static r5_status write_cfl(const char *prefix, const r5_dynamic_scan *scan, const r5_array *maps, long C)
{
	char path[1024];
	long fs = scan->frame_spokes, nr = scan->n_read, np = nr * fs, T = scan->n_frames, dims[R5_DIMS];
	r5_array *ksp = NULL, *traj = NULL;
	r5_dims_ones(dims);
	dims[1] = nr, dims[2] = fs, dims[3] = C, dims[R5_DIM_TIME] = T;
	R5_TRY(r5_array_alloc_host(dims, &ksp));
	for (long t = 0; t < T; t++)
		for (long c = 0; c < C; c++)
			memcpy(ksp->data + np * (c + C * t), scan->samples->data + np * t + nr * scan->n_spokes * c,
			       sizeof(float complex) * (size_t)np);
	r5_dims_ones(dims);
	dims[0] = 3, dims[1] = nr, dims[2] = fs, dims[R5_DIM_TIME] = T;
	r5_status s = r5_array_alloc_host(dims, &traj);
	if (s == R5_OK)
		memcpy(traj->data, scan->traj->data, sizeof(float complex) * 3 * (size_t)(np * T));
	const char *names[4] = {"ksp", "traj", "maps", "truth"};
	const r5_array *arrays[4] = {ksp, traj, maps, scan->truth};
	for (int i = 0; i < 4 && s == R5_OK; i++) {
		snprintf(path, sizeof path, "%s_%s", prefix, names[i]);
		s = r5_cfl_write(path, arrays[i]);
	}
	r5_array_free(ksp);
	r5_array_free(traj);
	return s;
}

static void print_table(long frames, const char *const names[], scores *const rows[], int n)
{
	printf("%6s", "frame");
	for (int i = 0; i < n; i++)
		printf("  %12s nrmse/ssim", names[i]);
	printf("\n");
	for (long t = 0; t < frames; t++) {
		printf("%6ld", t);
		for (int i = 0; i < n; i++)
			printf("  %12.4f / %-9.4f", rows[i]->nrmse[t], rows[i]->ssim[t]);
		printf("\n");
	}
	printf("%6s", "mean");
	for (int i = 0; i < n; i++)
		printf("  %12.4f / %-9.4f", rows[i]->mean_nrmse, rows[i]->mean_ssim);
	printf("\n");
}

typedef struct bench_args {
	struct r5_phantom_params p;
	r5_grasp_opts grasp;
	int sense_iters, sweep, ls_iters, ls_sweep;
	float lowrank_scale, sparse_scale;
	const char *write_cfl, *compare_cfl, *score_cfl;
} bench_args;

static int parse(int argc, char **argv, bench_args *a)
{
	a->p = r5_phantom_defaults_dynamic;
	a->grasp = r5_grasp_defaults;
	a->sense_iters = 0;
	a->lowrank_scale = r5_grasp_defaults.lowrank_scale, a->sparse_scale = r5_grasp_defaults.sparse_scale;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--sweep") || !strcmp(o, "--ls-sweep")) {
			*(o[2] == 's' ? &a->sweep : &a->ls_sweep) = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "bench_grasp: %s needs a value\n", o);
			return 2;
		}
		i++;
		if (!strcmp(o, "--matrix"))
			a->p.matrix[0] = a->p.matrix[1] = atoi(v), a->p.fov_mm[0] = a->p.fov_mm[1] = 2.0 * atoi(v);
		else if (!strcmp(o, "--coils"))
			a->p.n_coils = atoi(v);
		else if (!strcmp(o, "--frames"))
			a->p.n_frames = atoi(v);
		else if (!strcmp(o, "--frame-spokes"))
			a->p.frame_spokes = atoi(v), a->grasp.frame_spokes = atoi(v);
		else if (!strcmp(o, "--noise"))
			a->p.noise_sigma = atof(v);
		else if (!strcmp(o, "--tr"))
			a->p.tr_ms = atof(v);
		else if (!strcmp(o, "--lambda-scale"))
			a->grasp.lambda_scale = (float)atof(v);
		else if (!strcmp(o, "--space-scale"))
			a->grasp.lambda_space = -1, a->grasp.lambda_space_scale = (float)atof(v);
		else if (!strcmp(o, "--rho"))
			a->grasp.rho = (float)atof(v);
		else if (!strcmp(o, "--iters"))
			a->grasp.iters = atoi(v);
		else if (!strcmp(o, "--cg-iters"))
			a->grasp.cg_iters = atoi(v);
		else if (!strcmp(o, "--lowrank-scale"))
			a->lowrank_scale = (float)atof(v);
		else if (!strcmp(o, "--sparse-scale"))
			a->sparse_scale = (float)atof(v);
		else if (!strcmp(o, "--ls-iters"))
			a->ls_iters = atoi(v);
		else if (!strcmp(o, "--sense-iters"))
			a->sense_iters = atoi(v);
		else if (!strcmp(o, "--write-cfl"))
			a->write_cfl = v;
		else if (!strcmp(o, "--compare-cfl"))
			a->compare_cfl = v;
		else if (!strcmp(o, "--score"))
			a->score_cfl = v;
		else {
			fprintf(stderr, "bench_grasp: unknown option %s\n", o);
			return 2;
		}
	}
	if (a->p.n_frames > MAX_FRAMES) {
		fprintf(stderr, "bench_grasp: at most %d frames\n", MAX_FRAMES);
		return 2;
	}
	return 0;
}

/* A [N N 1 .. T] cfl (any size-1 dims) as the truth's shape. */
static r5_status read_series(const char *path, const r5_array *truth, r5_array **out)
{
	R5_TRY(r5_cfl_read(path, out));
	long size = r5_array_size(*out);
	if (size != r5_array_size(truth)) {
		r5_array_free(*out);
		*out = NULL;
		return r5_set_error(R5_EINVAL, "%s: %ld values, the truth has %ld", path, size, r5_array_size(truth));
	}
	r5_dims_copy((*out)->dims, truth->dims);
	r5_dims_strides((*out)->strides, (*out)->dims);
	return R5_OK;
}

static int fail(const char *what)
{
	fprintf(stderr, "bench_grasp: %s: %s\n", what, r5_last_error());
	return 1;
}

int main(int argc, char **argv)
{
	bench_args a;
	memset(&a, 0, sizeof a);
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc;
	r5_ctx *ctx = NULL;
	/* R5_FFT_WISDOM: FFTW_MEASURE plans kept in that file, as recon5t recon */
	if (getenv("R5_FFT_WISDOM") && r5_cpu_fft_configure(getenv("R5_FFT_WISDOM")) != R5_OK)
		return fail("fft wisdom");
	if (r5_ctx_create(&ctx, "cpu", 0) != R5_OK)
		return fail("context");
	r5_dynamic_scan scan;
	double t0 = now_s();
	if (r5_dynamic_simulate(&a.p, 1, &scan) != R5_OK)
		return fail("phantom");
	long N = a.p.matrix[0], C = a.p.n_coils, T = scan.n_frames, image_dims[R5_DIMS];
	if (a.score_cfl) {
		r5_array *series = NULL;
		scores sc;
		if (read_series(a.score_cfl, scan.truth, &series) != R5_OK || score(scan.truth, series, T, &sc) != R5_OK)
			return fail("score");
		printf("%s: mean nrmse %.4f ssim %.4f\n", a.score_cfl, sc.mean_nrmse, sc.mean_ssim);
		r5_array_free(series);
		r5_dynamic_free(&scan);
		r5_ctx_destroy(ctx);
		return 0;
	}
	printf("dynamic phantom %ldx%ld, %ld coils, %ld frames x %ld spokes (readout x%d, TR %g ms), noise %g: %.2f s\n",
	       N, N, C, T, scan.frame_spokes, a.p.readout_oversampling, a.p.tr_ms, a.p.noise_sigma, now_s() - t0);
	r5_dims_ones(image_dims);
	image_dims[0] = image_dims[1] = N, image_dims[3] = C;
	float *coords = malloc(sizeof *coords * 3 * (size_t)(scan.n_read * scan.n_spokes));
	for (long i = 0; i < 3 * scan.n_read * scan.n_spokes; i++)
		coords[i] = crealf(scan.traj->data[i]);
	r5_array *maps = NULL, *grid = NULL, *sense = NULL, *grasp = NULL, *bart = NULL;
	t0 = now_s();
	if (r5_grasp_maps(ctx, image_dims, coords, scan.samples, 24, &maps) != R5_OK)
		return fail("maps");
	printf("maps (time-averaged ESPIRiT, calib 24): %.2f s\n", now_s() - t0);
	if (a.write_cfl) {
		if (write_cfl(a.write_cfl, &scan, maps, C) != R5_OK)
			return fail("write cfl");
		printf("wrote %s_{ksp,traj,maps,truth}\n", a.write_cfl);
	}
	if (r5_array_alloc_host(scan.truth->dims, &grid) != R5_OK || r5_array_alloc_host(scan.truth->dims, &sense) != R5_OK ||
	    r5_array_alloc_host(scan.truth->dims, &grasp) != R5_OK)
		return fail("series");
	scores s_grid, s_sense, s_grasp, s_bart;
	double w0 = now_s(), c0 = cpu_s();
	if (gridding(ctx, image_dims, &scan, coords, maps, grid) != R5_OK || score(scan.truth, grid, T, &s_grid) != R5_OK)
		return fail("gridding");
	printf("gridding: %.2f s wall, %.2f s cpu\n", now_s() - w0, cpu_s() - c0);
	w0 = now_s(), c0 = cpu_s();
	if (frame_sense(ctx, image_dims, &scan, coords, maps, a.sense_iters, sense) != R5_OK ||
	    score(scan.truth, sense, T, &s_sense) != R5_OK)
		return fail("nc-sense");
	printf("nc-sense per frame (r5_nc_sense_solve, %d CG iterations): %.2f s wall, %.2f s cpu\n",
	       a.sense_iters > 0 ? a.sense_iters : r5_nc_sense_defaults.iters, now_s() - w0, cpu_s() - c0);
	r5_grasp_opts so = a.grasp;
	so.lambda = 0, so.lambda_space = 0, so.iters = 10;
	r5_grasp_info info;
	scores s_cg;
	w0 = now_s(), c0 = cpu_s();
	if (r5_grasp_solve(ctx, image_dims, coords, scan.samples, maps, &so, NULL, grasp, NULL, &info) != R5_OK ||
	    score(scan.truth, grasp, T, &s_cg) != R5_OK)
		return fail("frame cg");
	printf("frame cg (grasp lambda 0, density-weighted, 10 CG iterations): mean nrmse %.4f ssim %.4f, %.2f s wall, "
	       "%.2f s cpu\n", s_cg.mean_nrmse, s_cg.mean_ssim, now_s() - w0, cpu_s() - c0);
	if (a.sweep)
		for (float l = 0.005f; l < 0.09f; l *= 2) {
			r5_grasp_opts go = a.grasp;
			go.lambda_scale = l;
			scores sw;
			if (r5_grasp_solve(ctx, image_dims, coords, scan.samples, maps, &go, NULL, grasp, NULL, &info) != R5_OK ||
			    score(scan.truth, grasp, T, &sw) != R5_OK)
				return fail("grasp sweep");
			printf("sweep lambda_scale %.4f (lambda %.4g): mean nrmse %.4f ssim %.4f (%.1f s)\n", (double)l,
			       (double)info.lambda, sw.mean_nrmse, sw.mean_ssim, info.seconds);
		}
	w0 = now_s(), c0 = cpu_s();
	if (r5_grasp_solve(ctx, image_dims, coords, scan.samples, maps, &a.grasp, NULL, grasp, NULL, &info) != R5_OK ||
	    score(scan.truth, grasp, T, &s_grasp) != R5_OK)
		return fail("grasp");
	printf("grasp (lambda %.4g = %.4g max|x0|, lambda_space %.4g, rho %g, %d ADMM x %d CG): %.2f s wall, %.2f s cpu\n",
	       (double)info.lambda, (double)a.grasp.lambda_scale, (double)info.lambda_space, (double)a.grasp.rho,
	       info.iters, a.grasp.cg_iters, now_s() - w0, cpu_s() - c0);
	r5_grasp_opts lo = a.grasp;
	lo.model = R5_GRASP_LPLUSS, lo.lowrank_scale = a.lowrank_scale, lo.sparse_scale = a.sparse_scale;
	lo.iters = a.ls_iters > 0 ? a.ls_iters : lo.iters;
	if (a.ls_sweep)
		for (float lr = 0.005f; lr < 0.09f; lr *= 2)
			for (float sp = 0.005f; sp < 0.09f; sp *= 2) {
				r5_grasp_opts go = lo;
				go.lowrank_scale = lr, go.sparse_scale = sp;
				scores sw;
				if (r5_grasp_solve(ctx, image_dims, coords, scan.samples, maps, &go, NULL, grasp, NULL, &info) !=
					    R5_OK ||
				    score(scan.truth, grasp, T, &sw) != R5_OK)
					return fail("l+s sweep");
				printf("sweep l+s lowrank_scale %.4f sparse_scale %.4f: mean nrmse %.4f ssim %.4f, rank %ld "
				       "(%.1f s)\n", (double)lr, (double)sp, sw.mean_nrmse, sw.mean_ssim, info.rank, info.seconds);
			}
	scores s_ls;
	r5_array *ls = NULL;
	w0 = now_s(), c0 = cpu_s();
	if (r5_array_alloc_host(scan.truth->dims, &ls) != R5_OK ||
	    r5_grasp_solve(ctx, image_dims, coords, scan.samples, maps, &lo, NULL, ls, NULL, &info) != R5_OK ||
	    score(scan.truth, ls, T, &s_ls) != R5_OK)
		return fail("l+s");
	printf("l+s (lowrank %.4g = %.4g sigma_1, sparse %.4g = %.4g max|F_t x|, %d steps, rank %ld): %.2f s wall, "
	       "%.2f s cpu\n", (double)info.lambda_lowrank, (double)lo.lowrank_scale, (double)info.lambda,
	       (double)lo.sparse_scale, info.iters, info.rank, now_s() - w0, cpu_s() - c0);
	const char *names[5] = {"gridding", "nc-sense", "grasp", "l+s", "bart pics"};
	scores *rows[5] = {&s_grid, &s_sense, &s_grasp, &s_ls, &s_bart};
	int n = 4;
	if (a.compare_cfl) {
		if (read_series(a.compare_cfl, scan.truth, &bart) != R5_OK || score(scan.truth, bart, T, &s_bart) != R5_OK)
			return fail("compare cfl");
		n = 5;
	}
	print_table(T, names, rows, n);
	printf("grasp mean nrmse %.4f vs nc-sense %.4f: %.1f%% lower (target >= 30%%: %s)\n", s_grasp.mean_nrmse,
	       s_sense.mean_nrmse, 100 * (1 - s_grasp.mean_nrmse / s_sense.mean_nrmse),
	       s_grasp.mean_nrmse <= 0.7 * s_sense.mean_nrmse ? "met" : "not met");
	r5_array_free(bart);
	r5_array_free(ls);
	r5_array_free(grid);
	r5_array_free(sense);
	r5_array_free(grasp);
	r5_array_free(maps);
	free(coords);
	r5_dynamic_free(&scan);
	r5_ctx_destroy(ctx);
	return 0;
}
