/* Vessel-wall phantom tests (phantoms/vessel_wall.h): the stated intensities at known points
 * (analytic object and voxel averages), the wall mask's thickness along radial lines against
 * the specified thickness, the file's round trip (dims, 0.5 mm voxels, ground truth, object and
 * wall mask), and a fully sampled Cartesian recon (from the file) against the ground truth. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recon/core/array.h"
#include "recon/core/fft.h"

#define R5_FIXTURE_PREFIX "vessel"
#include "phantom_fixture.h"
#include "nrmse_fixture.h"

#define PI 3.14159265358979323846

/* A smaller volume for the file tests: 96 x 96 x 32 at 0.5 mm, 4 coils. */
static struct r5_phantom_params small_vessel(void)
{
	struct r5_phantom_params p = r5_phantom_defaults_vessel_wall;
	p.matrix[0] = p.matrix[1] = 96, p.matrix[2] = 32;
	p.fov_mm[0] = p.fov_mm[1] = 48, p.fov_mm[2] = 16;
	p.n_coils = 4;
	return p;
}

static double value_at(const r5_shape_set *s, double x, double y, double z)
{
	double r[3] = {x, y, z};
	return r5_shapes_value(s, r);
}

/* Analytic intensities (vessel_wall.h's table) at the lumen centre, thin wall, cap, core, the
 * wall beyond the cap, tissue, outside, past a tube's end; voxel averages where a voxel lies in
 * one region. */
static void test_intensities(void **state)
{
	(void)state;
	const struct r5_phantom_params *p = &r5_phantom_defaults_vessel_wall;
	const r5_vessel_wall_intensities *c = &r5_vessel_wall_contrast;
	r5_shape_set s;
	assert_int_equal(r5_phantom_object(p, &s), R5_OK);
	double tol = 1e-12;
	/* carotid: centre (-8, -2), R_l 3, wall 1, plaque towards +x, cap 3.0..3.5, core 3.5..5.0 */
	assert_true(fabs(value_at(&s, -8, -2, 0) - c->lumen) < tol);
	assert_true(fabs(value_at(&s, -8 - 3.5, -2, 0) - c->wall) < tol);
	assert_true(fabs(value_at(&s, -8, -2 + 3.5, 3) - c->wall) < tol);
	assert_true(fabs(value_at(&s, -8 + 3.25, -2, 0) - c->cap) < tol);
	assert_true(fabs(value_at(&s, -8 + 4.25, -2, -5) - c->core) < tol);
	assert_true(fabs(value_at(&s, -8 + 5.75, -2, 0) - c->wall) < tol);
	assert_true(fabs(value_at(&s, -8 + 6.1, -2, 0) - c->tissue) < tol);
	/* intracranial: centre (10, 5), R_l 1.5, wall 0.5 .. 1.0, plaque towards +y */
	assert_true(fabs(value_at(&s, 10, 5, 0) - c->lumen) < tol);
	assert_true(fabs(value_at(&s, 10, 5 - 1.75, 0) - c->wall) < tol);
	assert_true(fabs(value_at(&s, 10, 5 + 2.4, 0) - c->wall) < tol);
	assert_true(fabs(value_at(&s, 10, 5 + 2.6, 0) - c->tissue) < tol);
	assert_true(fabs(value_at(&s, 0, 20, 0) - c->tissue) < tol);
	assert_true(fabs(value_at(&s, 31, 31, 15) - 0) < tol);
	/* past the tube's end (half length 0.6 x 16 mm) the lumen is tissue */
	assert_true(fabs(value_at(&s, -8, -2, 10.0) - c->tissue) < tol);

	int nx = p->matrix[0], ny = p->matrix[1], nz = p->matrix[2];
	float *object = malloc(sizeof *object * (size_t)nx * ny * nz);
	assert_int_equal(r5_phantom_ground_truth(p, &s, object), R5_OK);
#define VOXEL(x_mm, y_mm, z_mm)                                                                              \
	object[((long)((z_mm) / 0.5 + nz / 2) * ny + (long)((y_mm) / 0.5 + ny / 2)) * nx + (long)((x_mm) / 0.5 + nx / 2)]
	assert_true(fabs(VOXEL(-8, -2, 0) - c->lumen) < 1e-6);
	assert_true(fabs(VOXEL(-4, -2, 0) - c->core) < 1e-6);  /* x -4.25..-3.75: core is -4.5..-3.0 */
	assert_true(fabs(VOXEL(0, 20, 0) - c->tissue) < 1e-6);
#undef VOXEL
	free(object);
}

/* Wall run along a ray from (x0, y0) at angle phi (deg): the length (mm) of the ray, marched in
 * 0.01 mm steps from 0 to 8 mm, that lies in voxels of slice iz whose mask is 1 (nearest
 * voxel: voxel i spans (i - n/2 -+ 1/2) d). */
static double wall_run(const float *mask, int nx, int ny, int iz, double d, double x0, double y0, double phi)
{
	double run = 0, step = 0.01;
	for (double t = 0.5 * step; t < 8; t += step) {
		double x = (x0 + t * cos(phi * PI / 180)) / d + nx / 2, y = (y0 + t * sin(phi * PI / 180)) / d + ny / 2;
		long ix = lround(x), iy = lround(y);
		run += mask[((long)iz * ny + iy) * nx + ix] > 0.5f ? step : 0;
	}
	return run;
}

/* The mask's wall thickness along 24 radial lines per vessel matches thickness(θ) within one
 * voxel (0.5 mm), at the centre slice and near a tube's end; no wall beyond the tube's end.
 * A wall thinner than a voxel diagonal (the intracranial one at 0.57 mm, 45° off the axes) can
 * lie between the voxel centres a diagonal ray meets (measured: run 0 there), so such rays are
 * only checked not to overestimate. Measured worst error on the others 0.40 mm. */
static void test_wall_thickness(void **state)
{
	(void)state;
	const struct r5_phantom_params *p = &r5_phantom_defaults_vessel_wall;
	int nx = p->matrix[0], ny = p->matrix[1], nz = p->matrix[2];
	double d = p->fov_mm[0] / nx;
	float *mask = malloc(sizeof *mask * (size_t)nx * ny * nz);
	r5_vessel_wall_mask(p->matrix, p->fov_mm, mask);
	double worst = 0;
	int slices[2] = {nz / 2, nz / 2 + 18}; /* 0 and 9 mm (the tubes end at 9.6 mm) */
	for (int v = 0; v < R5_VESSEL_COUNT; v++) {
		const r5_vessel *vessel = &r5_vessel_defaults[v];
		for (int s = 0; s < 2; s++)
			for (int a = 0; a < 24; a++) {
				double theta = 15.0 * a;
				double run = wall_run(mask, nx, ny, slices[s], d, vessel->centre_mm[0], vessel->centre_mm[1],
						      vessel->plaque_angle_deg + theta);
				double expected = r5_vessel_wall_thickness(vessel, theta);
				if (expected < sqrt(2) * d) { /* may fall between voxel centres on a diagonal */
					assert_true(run <= expected + d);
					continue;
				}
				worst = fmax(worst, fabs(run - expected));
				assert_true(fabs(run - expected) <= d);
			}
		/* beyond the tube's end (slice at 10 mm) */
		assert_true(wall_run(mask, nx, ny, nz / 2 + 20, d, vessel->centre_mm[0], vessel->centre_mm[1], 0) == 0);
	}
	printf("wall thickness from the mask vs the formula: worst %.3f mm (voxel %.2f mm)\n", worst, d);
	/* the formula itself: thin side t, plaque side t + 2e */
	assert_true(fabs(r5_vessel_wall_thickness(&r5_vessel_defaults[0], 180) - 1.0) < 1e-12);
	assert_true(fabs(r5_vessel_wall_thickness(&r5_vessel_defaults[0], 0) - 3.0) < 1e-12);
	free(mask);
}

/* Writes 96 x 96 x 32 (0.5 mm), fully sampled, no noise; reads back dims, FOV, the three images;
 * the rss of the unitary inverse FFT of the file's k-space against ground_truth (whole volume
 * and inside the wall mask). */
static void test_file_and_full_recon(void **state)
{
	(void)state;
	struct r5_phantom_params p = small_vessel();
	r5_array *truth = NULL, *object = NULL, *mask = NULL;
	r5_scan *scan = phantom_file_scan(&p, "vessel_full", &truth);
	char path[512];
	snprintf(path, sizeof path, "%s/vessel_full.h5", tmpdir);
	assert_int_equal(r5_ismrmrd_read_images(path, NULL, "object", &object), R5_OK);
	assert_int_equal(r5_ismrmrd_read_images(path, NULL, R5_PHANTOM_WALL_MASK_VAR, &mask), R5_OK);
	long n = 96L * 96 * 32;
	for (int d = 0; d < 3; d++) {
		assert_int_equal(scan->header.recon_matrix[d], p.matrix[d]);
		assert_true(fabs(scan->header.recon_fov_mm[d] / scan->header.recon_matrix[d] - 0.5) < 1e-6);
		assert_int_equal(truth->dims[d], p.matrix[d]);
		assert_int_equal(mask->dims[d], p.matrix[d]);
	}
	assert_int_equal(r5_array_size(truth), n);
	assert_int_equal(scan->kspace->dims[3], 4);
	long in_wall = 0;
	float *expected_mask = malloc(sizeof *expected_mask * (size_t)n);
	r5_vessel_wall_mask(p.matrix, p.fov_mm, expected_mask);
	for (long i = 0; i < n; i++) {
		assert_true(crealf(mask->data[i]) == expected_mask[i]);
		in_wall += expected_mask[i] > 0.5f;
	}
	assert_true(in_wall > 1000);

	r5_ctx *ctx = NULL;
	assert_int_equal(r5_ctx_create(&ctx, "cpu", 0), R5_OK);
	r5_array *img = NULL;
	assert_int_equal(r5_array_alloc_host(scan->kspace->dims, &img), R5_OK);
	assert_int_equal(r5_ifft(ctx, R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(2), img, scan->kspace), R5_OK);
	float *rss = malloc(sizeof *rss * (size_t)n), *ref = malloc(sizeof *ref * (size_t)n);
	float *rss_wall = malloc(sizeof *rss_wall * (size_t)n), *ref_wall = malloc(sizeof *ref_wall * (size_t)n);
	long k = 0;
	for (long i = 0; i < n; i++) {
		double sum = 0;
		for (int c = 0; c < 4; c++)
			sum += pow(cabsf(img->data[c * n + i]), 2);
		rss[i] = (float)sqrt(sum), ref[i] = crealf(truth->data[i]);
		if (expected_mask[i] > 0.5f)
			rss_wall[k] = rss[i], ref_wall[k++] = ref[i];
	}
	double scale, scale_wall;
	double e = nrmse_scaled(rss, ref, n, &scale), e_wall = nrmse_scaled(rss_wall, ref_wall, k, &scale_wall);
	double e_object, scale_object;
	float *obj = malloc(sizeof *obj * (size_t)n);
	for (long i = 0; i < n; i++)
		obj[i] = crealf(object->data[i]);
	e_object = nrmse_scaled(rss, obj, n, &scale_object);
	printf("fully sampled rss vs ground_truth NRMSE %.4f (scale %.4f), inside the wall %.4f (scale %.4f); "
	       "vs the voxel-averaged object %.4f; %ld wall voxels\n",
	       e, scale, e_wall, scale_wall, e_object, k);
	/* the scan's k-space has the oversampling removed (nx of 2 nx readout points), so its
	 * unitary inverse FFT is 1/sqrt(2) of the ground truth's scale (phantom.h) */
	assert_true(fabs(scale - sqrt(2)) < 0.01 && fabs(scale_wall - sqrt(2)) < 0.01);
	assert_true(e < 0.0058);      /* measured 0.0044 */
	assert_true(e_wall < 0.0030); /* measured 0.0023 */
	assert_true(e_object < 0.08); /* measured 0.0593: the truncation (Gibbs) floor against the voxel averages */
	free(obj), free(rss), free(ref), free(rss_wall), free(ref_wall), free(expected_mask);
	r5_array_free(img), r5_array_free(truth), r5_array_free(object), r5_array_free(mask);
	r5_ctx_destroy(ctx);
	r5_scan_free(scan);
}

/* Bad input: a FOV too small for the vessels, named in the message. */
static void test_fov_too_small(void **state)
{
	(void)state;
	struct r5_phantom_params p = r5_phantom_defaults_vessel_wall;
	p.matrix[0] = p.matrix[1] = 64, p.matrix[2] = 32;
	p.fov_mm[0] = p.fov_mm[1] = 32, p.fov_mm[2] = 16;
	r5_shape_set s;
	assert_int_equal(r5_phantom_object(&p, &s), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "carotid"));
	char path[512];
	snprintf(path, sizeof path, "%s/too_small.h5", tmpdir);
	assert_int_equal(r5_phantom_write(&p, path, NULL), R5_EINVAL);
	r5_phantom_kind kind;
	assert_int_equal(r5_phantom_kind_parse("vessel-wall", &kind), R5_OK);
	assert_int_equal(kind, R5_PHANTOM_VESSEL_WALL);
	assert_string_equal(r5_phantom_kind_name(kind), "vessel-wall");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intensities),
		cmocka_unit_test(test_wall_thickness),
		cmocka_unit_test(test_file_and_full_recon),
		cmocka_unit_test(test_fov_too_small),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
