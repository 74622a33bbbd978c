/* The coil maps' calibration made ahead (recon/pipeline/calibration.h) on a small 3D Poisson
 * phantom with a noise scan, prewhitening and geometric compression to 4 virtual coils:
 *   - made from the whole scan or from a copy of the scan as it stood when only the calibration
 *     block had come (everything else unsampled), r5_recon_run_calibrated gives the images of
 *     r5_recon_run bit for bit and the stage espirit-ahead;
 *   - block completeness: one missing block line makes it incomplete;
 *   - it is refused, with the reason, when the parameters differ, a block sample or the noise
 *     changed, or the data were rescaled; the run then makes its own (the images of
 *     r5_recon_run with those inputs, stage espirit);
 *   - scans it does not apply to (two frames, grappa) and a mask without calibration region. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define R5_FIXTURE_PREFIX "calib"
#include "phantom_fixture.h"

#include "recon/pipeline/calibration.h"
#include "recon/pipeline/pipeline.h"

/* Sanitizer and unoptimised builds check the same properties on a smaller volume (113 s under
 * ASan on 2 cores at the full size) */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
#define MATRIX_Y 32
#define MATRIX_Z 24
#define CALIB "12"
#else
#define MATRIX_Y 48
#define MATRIX_Z 40
#define CALIB "16"
#endif

static r5_scan *scan;
static r5_ctx *ctx;
static r5_recon_params params;

static int group_setup(void **state)
{
	if (setup(state))
		return -1;
	struct r5_phantom_params p = r5_phantom_defaults_3d;
	p.matrix[0] = 32, p.matrix[1] = MATRIX_Y, p.matrix[2] = MATRIX_Z;
	p.n_coils = 6;
	p.sampling = R5_SAMPLING_POISSON;
	p.accel[0] = 3, p.accel[1] = 1;
	p.calib = atoi(CALIB);
	p.noise_sigma = 0.002;
	scan = phantom_file_scan(&p, "vol", NULL);
	params = r5_recon_defaults;
	const char *keys[][2] = {{"pipeline", "cs"}, {"iters", "5"}, {"calib", CALIB}, {"kernel", "4"}, {"coils_virtual", "4"}};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (r5_recon_params_set(&params, keys[i][0], keys[i][1]) != R5_OK)
			return -1;
	return r5_ctx_create(&ctx, "cpu", 0) == R5_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	r5_scan_free(scan);
	r5_ctx_destroy(ctx);
	return teardown(state);
}

static int has_stage(const r5_image_set *set, const char *name)
{
	for (int i = 0; i < set->n_stages; i++)
		if (!strcmp(set->stages[i].name, name))
			return 1;
	return 0;
}

static void assert_same_images(const r5_image_set *a, const r5_image_set *b)
{
	assert_true(r5_dims_equal(a->images->dims, b->images->dims));
	assert_memory_equal(a->images->data, b->images->data,
			    sizeof(float complex) * (size_t)r5_array_size(a->images));
}

static r5_calibration *made_ahead(const r5_scan *from, const r5_recon_params *p)
{
	r5_calibration *cal = NULL;
	assert_int_equal(r5_calibration_input_copy(from, p, &cal), R5_OK);
	assert_int_equal(r5_calibration_compute(ctx, cal, NULL, 1), R5_OK);
	assert_true(r5_calibration_seconds(cal) > 0);
	return cal;
}

/* The run with cal: the images of r5_recon_run (same scan and p) and whether cal was used. */
static void run_both(const r5_scan *s, const r5_recon_params *p, const r5_calibration *cal, int expect_used)
{
	r5_image_set *plain = NULL, *ahead = NULL;
	assert_int_equal(r5_recon_run(ctx, s, p, NULL, &plain), R5_OK);
	assert_int_equal(r5_recon_run_calibrated(ctx, s, p, cal, NULL, &ahead), R5_OK);
	assert_same_images(plain, ahead);
	assert_int_equal(has_stage(ahead, "espirit-ahead"), expect_used);
	assert_int_equal(has_stage(ahead, "espirit"), !expect_used);
	assert_true(has_stage(plain, "espirit") && !has_stage(plain, "espirit-ahead"));
	r5_image_set_free(plain);
	r5_image_set_free(ahead);
}

/* A deep copy of the scan with only the calibration block's lines sampled (the rest zero). */
static r5_scan *block_only(void)
{
	r5_scan *part = calloc(1, sizeof *part);
	*part = *scan;
	part->noise = scan->noise; /* read only */
	assert_int_equal(r5_array_alloc_host(scan->kspace->dims, &part->kspace), R5_OK);
	memset(part->kspace->data, 0, sizeof(float complex) * (size_t)r5_array_size(part->kspace));
	long ny = scan->mask_dims[1], nz = scan->mask_dims[2], nx = scan->kspace->dims[0];
	long coils = scan->kspace->dims[R5_DIM_COIL];
	part->sampled = calloc((size_t)(ny * nz), 1);
	long half = atoi(CALIB) / 2;
	for (long z = nz / 2 - half; z < nz / 2 + half; z++)
		for (long y = ny / 2 - half; y < ny / 2 + half; y++) {
			part->sampled[y + ny * z] = 1;
			for (long c = 0; c < coils; c++) {
				long at = nx * (y + ny * (z + nz * c));
				memcpy(part->kspace->data + at, scan->kspace->data + at, sizeof(float complex) * (size_t)nx);
			}
		}
	return part;
}

static void free_block_only(r5_scan *part)
{
	r5_array_free(part->kspace);
	free(part->sampled);
	free(part);
}

static void test_same_bits(void **state)
{
	(void)state;
	assert_true(r5_calibration_applies(scan, "cs") && r5_calibration_applies(scan, "sense"));
	r5_calibration *cal = made_ahead(scan, &params);
	char why[200] = "";
	assert_true(r5_calibration_matches(cal, scan, &params, 0, why, sizeof why));
	run_both(scan, &params, cal, 1);
	r5_recon_params sense = params;
	snprintf(sense.pipeline, sizeof sense.pipeline, "sense");
	run_both(scan, &sense, cal, 1);
	r5_calibration_free(cal);

	r5_scan *part = block_only();
	assert_true(r5_calibration_block_complete(part, &params));
	cal = made_ahead(part, &params);
	run_both(scan, &params, cal, 1);
	r5_calibration_free(cal);
	long ny = scan->mask_dims[1], nz = scan->mask_dims[2];
	part->sampled[ny / 2 + 3 + ny * (nz / 2 - atoi(CALIB) / 2)] = 0; /* one block line not yet in */
	assert_false(r5_calibration_block_complete(part, &params));
	free_block_only(part);
}

static void expect_refused(const r5_calibration *cal, const r5_scan *s, const r5_recon_params *p, int shift,
			   const char *reason)
{
	char why[200] = "";
	assert_false(r5_calibration_matches(cal, s, p, shift, why, sizeof why));
	if (!strstr(why, reason))
		fail_msg("refused for \"%s\", expected \"%s\"", why, reason);
}

static void test_refused(void **state)
{
	(void)state;
	r5_calibration *cal = made_ahead(scan, &params);
	r5_recon_params other = params;
	assert_int_equal(r5_recon_params_set(&other, "kernel", "5"), R5_OK);
	expect_refused(cal, scan, &other, 0, "parameters differ");
	run_both(scan, &other, cal, 0);
	expect_refused(cal, scan, &params, 2, "scaled by 2^-2");

	long ny = scan->mask_dims[1], nz = scan->mask_dims[2], nx = scan->kspace->dims[0];
	float complex *sample = scan->kspace->data + nx * (ny / 2 + ny * (nz / 2)) + nx / 2;
	float complex kept = *sample;
	*sample *= 1.5f;
	expect_refused(cal, scan, &params, 0, "block's samples changed");
	run_both(scan, &params, cal, 0);
	*sample = kept;
	scan->noise->data[7] *= 2.0f;
	expect_refused(cal, scan, &params, 0, "noise scan changed");
	scan->noise->data[7] *= 0.5f;
	char why[200] = "";
	assert_true(r5_calibration_matches(cal, scan, &params, 0, why, sizeof why));
	r5_calibration_free(cal);
}

static void test_not_applicable(void **state)
{
	(void)state;
	assert_false(r5_calibration_applies(scan, "grappa"));
	assert_false(r5_calibration_applies(scan, "cartesian"));
	assert_false(r5_calibration_applies(NULL, "cs"));
	r5_scan two = *scan;
	r5_array frames = *scan->kspace; /* a descriptor only: never freed */
	frames.dims[R5_DIM_TIME] = 2;
	two.kspace = &frames;
	assert_false(r5_calibration_applies(&two, "cs"));
	r5_calibration *cal = NULL;
	assert_int_equal(r5_calibration_input_copy(&two, &params, &cal), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "more than one frame"));
	assert_null(cal);

	r5_scan *part = block_only();
	long ny = scan->mask_dims[1], nz = scan->mask_dims[2];
	part->sampled[ny / 2 + ny * (nz / 2)] = 0; /* the centre itself */
	assert_int_equal(r5_calibration_input_copy(part, &params, &cal), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "calibration"));
	assert_null(cal);
	r5_array *maps = NULL;
	assert_int_equal(r5_calibration_maps(ctx, NULL, &maps), R5_EINVAL);
	free_block_only(part);
	r5_calibration_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bits),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_not_applicable),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
