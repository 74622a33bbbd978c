/* The kept frame solver (recon/pipeline/nc_sense.h r5_nc_sense_frames), as pipeline realtime's
 * mode iterative runs it, on sliding windows of a small dynamic phantom (phantoms/dynamic.h:
 * 48^2, 4 coils, windows of 13 spokes every 4, ESPIRiT maps from window 0, realtime's NUFFT 1.25 /
 * 1e-3):
 *  - frame by frame from zero, the kept solver gives r5_nc_sense_solve's bits (the rebuild-every-
 *    frame path) for both normals, with and without density weights, and when the windows change
 *    length between frames; warm-started chains the same;
 *  - warm-started from the previous frame (3 CG iterations a frame), the frames' mean NRMSE against
 *    the truth is below the cold start's and below a stated bound, and the NUFFT-pair normal's
 *    within 0.005 of the Toeplitz's;
 *  - a bad normal is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phantoms/dynamic.h"
#include "recon/pipeline/grid.h"
#include "recon/pipeline/nc_sense.h"
#include "recon/pipeline/quality.h"

#include "cpu_fixture.h"

#define N 48
#define COILS 4
#define FS 13   /* spokes per window */
#define STEP 4  /* spokes between windows */
#define FRAMES 8
#define WARM_BOUND 0.17 /* measured 0.152 (cold 0.210, Toeplitz warm 0.152) */

typedef struct fixture {
	r5_dynamic_scan scan;
	float *coords;
	long image_dims[R5_DIMS], n_read;
	r5_array *maps;
} fixture;

static fixture fx;

/* window f (spokes [f STEP, f STEP + spokes)): new samples [1, n_read, spokes, C]; its coordinates */
static r5_array *window(long f, long spokes, const float **coords)
{
	long dims[R5_DIMS], n = fx.n_read * spokes, all = fx.n_read * fx.scan.n_spokes, first = f * STEP;
	dims_of(dims, 1, fx.n_read, spokes, COILS);
	r5_array *w = host(dims);
	for (long c = 0; c < COILS; c++)
		memcpy(w->data + c * n, fx.scan.samples->data + c * all + first * fx.n_read, sizeof(float complex) * (size_t)n);
	*coords = fx.coords + 3 * first * fx.n_read;
	return w;
}

static int group_setup(void **state)
{
	if (setup(state))
		return -1;
	struct r5_phantom_params p = r5_phantom_defaults_dynamic;
	p.matrix[0] = p.matrix[1] = N;
	p.fov_mm[0] = p.fov_mm[1] = 2.0 * N;
	p.n_coils = COILS, p.frame_spokes = STEP;
	p.n_frames = ((FRAMES - 1) * STEP + FS + STEP - 1) / STEP;
	if (r5_dynamic_simulate(&p, 1, &fx.scan) != R5_OK)
		return -1;
	fx.n_read = fx.scan.n_read;
	long all = fx.n_read * fx.scan.n_spokes;
	fx.coords = malloc(sizeof *fx.coords * 3 * (size_t)all);
	if (!fx.coords)
		return -1;
	for (long i = 0; i < 3 * all; i++)
		fx.coords[i] = crealf(fx.scan.traj->data[i]);
	dims_of(fx.image_dims, N, N, 1, COILS);
	r5_grid_wrap_coords(fx.image_dims, all, fx.coords);
	const float *coords = NULL;
	r5_array *w = window(0, FS, &coords);
	r5_status s = r5_nc_maps_espirit(ctx, fx.image_dims, fx.n_read * FS, coords, w, 24, &fx.maps);
	r5_array_free(w);
	return s == R5_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	r5_array_free(fx.maps);
	free(fx.coords);
	r5_dynamic_free(&fx.scan);
	return teardown(state);
}

static r5_nc_sense_opts realtime_opts(int normal, int iters)
{
	r5_nc_sense_opts o = r5_nc_sense_defaults;
	o.iters = iters;
	o.normal = normal;
	o.nufft.oversampling = 1.25;
	o.nufft.tolerance = 1e-3;
	return o;
}

/* frames 0.. through one kept solver against r5_nc_sense_solve per frame, bit for bit; window f
 * has spokes[f % 2] spokes */
static void check_kept_bits(r5_nc_sense_opts opts, int warm, const long spokes[2])
{
	long dims[R5_DIMS];
	dims_of(dims, N, N, 1, 1);
	r5_array *kept_image = host(dims), *fresh_image = host(dims);
	r5_nc_sense_frames *kept = NULL;
	assert_int_equal(r5_nc_sense_frames_make(ctx, fx.image_dims, &opts, &kept), R5_OK);
	for (long f = 0; f < 4; f++) {
		const float *coords = NULL;
		r5_array *w = window(f, spokes[f % 2], &coords);
		long n = fx.n_read * spokes[f % 2];
		r5_nc_sense_opts fresh = opts;
		fresh.warm_start = warm && f > 0;
		assert_int_equal(r5_nc_sense_frames_solve(ctx, kept, n, coords, w, fx.maps, fresh.warm_start, NULL, kept_image),
				 R5_OK);
		assert_int_equal(r5_nc_sense_solve(ctx, fx.image_dims, n, coords, w, fx.maps, &fresh, NULL, fresh_image), R5_OK);
		assert_memory_equal(kept_image->data, fresh_image->data, sizeof(float complex) * N * N);
		r5_nc_sense_timing t;
		r5_nc_sense_frames_timing(kept, &t);
		assert_int_equal(t.cg_iters, opts.iters);
		r5_array_free(w);
	}
	r5_nc_sense_frames_destroy(kept);
	r5_array_free(kept_image);
	r5_array_free(fresh_image);
}

static void test_kept_equals_rebuild(void **state)
{
	(void)state;
	const long same[2] = {FS, FS}, changing[2] = {FS, 7};
	for (int normal = R5_NC_NORMAL_TOEPLITZ; normal <= R5_NC_NORMAL_NUFFT; normal++) {
		r5_nc_sense_opts o = realtime_opts(normal, 3);
		check_kept_bits(o, 0, same);
		check_kept_bits(o, 1, same);
		check_kept_bits(o, 0, changing);
		o.use_density = 1;
		check_kept_bits(o, 0, changing);
	}
}

/* the mean over FRAMES frames of the NRMSE against the truth block holding each window's middle */
static double series_nrmse(int normal, int warm)
{
	long dims[R5_DIMS];
	dims_of(dims, N, N, 1, 1);
	r5_array *image = host(dims);
	r5_nc_sense_opts o = realtime_opts(normal, 3);
	r5_nc_sense_frames *kept = NULL;
	assert_int_equal(r5_nc_sense_frames_make(ctx, fx.image_dims, &o, &kept), R5_OK);
	double mean = 0;
	for (long f = 0; f < FRAMES; f++) {
		const float *coords = NULL;
		r5_array *w = window(f, FS, &coords);
		assert_int_equal(r5_nc_sense_frames_solve(ctx, kept, fx.n_read * FS, coords, w, fx.maps, warm && f > 0, NULL,
							  image),
				 R5_OK);
		long tdims[R5_DIMS], block = (f * STEP + (FS - 1) / 2) / STEP;
		r5_dims_copy(tdims, fx.scan.truth->dims);
		tdims[R5_DIM_TIME] = 1;
		r5_array truth = r5_array_view_strided(fx.scan.truth, tdims, NULL, block * fx.scan.truth->strides[R5_DIM_TIME]);
		r5_quality q;
		assert_int_equal(r5_quality_compare(&truth, image, 1, &q), R5_OK);
		mean += q.nrmse / FRAMES;
		r5_array_free(w);
	}
	r5_nc_sense_frames_destroy(kept);
	r5_array_free(image);
	return mean;
}

static void test_warm_start_against_truth(void **state)
{
	(void)state;
	double warm_pair = series_nrmse(R5_NC_NORMAL_NUFFT, 1), cold_pair = series_nrmse(R5_NC_NORMAL_NUFFT, 0);
	double warm_toeplitz = series_nrmse(R5_NC_NORMAL_TOEPLITZ, 1);
	printf("mean NRMSE against the truth: warm (pair) %.4f, cold (pair) %.4f, warm (Toeplitz) %.4f\n", warm_pair,
	       cold_pair, warm_toeplitz);
	assert_true(warm_pair < cold_pair);
	assert_true(fabs(warm_pair - warm_toeplitz) < 0.005);
	assert_true(warm_pair < WARM_BOUND);
}

static void test_bad_normal(void **state)
{
	(void)state;
	r5_nc_sense_opts o = realtime_opts(2, 3);
	r5_nc_sense_frames *f = NULL;
	assert_int_equal(r5_nc_sense_frames_make(ctx, fx.image_dims, &o, &f), R5_EINVAL);
	assert_null(f);
	r5_nc_sense_frames_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept_equals_rebuild),
		cmocka_unit_test(test_warm_start_against_truth),
		cmocka_unit_test(test_bad_normal),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
