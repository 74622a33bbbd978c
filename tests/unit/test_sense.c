/* CG-SENSE with ESPIRiT maps on synthetic data (smooth object x smooth coil maps), uniform
 * undersampling R = 2, 3, 4 plus the 24 calibration lines the ACS block is cut from, 8 coils,
 * noise 0: NRMSE of the magnitude against the object inside its support after a least-squares
 * scale. Every case asserts a bound about 1.3x the value measured when it was set (CPU back
 * end, 128^2).
 *
 * Object inside the FOV: one map and two maps agree (the second eigenvalue stays below the
 * crop over the whole object). Object overfilling the FOV (test_sense_synth.h): one map
 * cannot represent the two sensitivities that meet across the wrap boundary, so one map is
 * 7-17x worse than two; that case checks that two maps (soft SENSE) recover it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "recon/calib/espirit.h"
#include "recon/linop/linop.h"
#include "recon/solve/cg.h"
#include "test_sense_synth.h"

#include "cpu_fixture.h"

static r5_status normal_cb(r5_ctx *c, void *user, r5_array *out, const r5_array *in)
{
	return r5_linop_normal(c, user, out, in);
}

static double sense_nrmse(long n, long coils, double support, int accel, int n_maps)
{
	r5_array *coil_images, *maps_true, *object, *maps = NULL, *k = NULL, *mask = NULL, *acs = NULL;
	synth_make_support(n, 1, coils, support, &coil_images, &maps_true, &object);
	assert_int_equal(r5_array_to_work(ctx, coil_images, &k), R5_OK);
	assert_int_equal(r5_fft(ctx, 3, k, k), R5_OK);
	long sdims[R5_DIMS], adims[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[1] = n;
	assert_int_equal(r5_array_alloc_work(ctx, sdims, &mask), R5_OK);
	/* the calibration lines are exactly the 24 the ACS block below is cut from (n/2 - 12 ..
	 * n/2 + 11); |y - n/2| < 12 left line n/2 - 12 empty at R = 3 */
	for (long y = 0; y < n; y++)
		mask->data[y] = (y % accel == 0 || (y >= n / 2 - 12 && y < n / 2 + 12)) ? 1.0f : 0.0f;
	assert_int_equal(r5_zmul(ctx, k, k, mask, 0), R5_OK);
	r5_dims_copy(adims, k->dims);
	adims[0] = adims[1] = 24;
	assert_int_equal(r5_array_alloc_work(ctx, adims, &acs), R5_OK);
	assert_int_equal(r5_zresize_centered(ctx, acs, k), R5_OK);
	r5_espirit_conf ec = r5_espirit_defaults;
	ec.n_maps = n_maps;
	long img[3] = {n, n, 1};
	assert_int_equal(r5_espirit_maps(ctx, &ec, acs, img, &maps, NULL), R5_OK);
	assert_int_equal(r5_ifft(ctx, 1, k, k), R5_OK);
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_sense(ctx, maps, mask, 2, &op), R5_OK);
	r5_array *rhs = NULL, *x = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, op->idims, &rhs), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, op->idims, &x), R5_OK);
	assert_int_equal(r5_linop_adjoint(ctx, op, rhs, k), R5_OK);
	r5_cg_conf conf = r5_cg_defaults;
	conf.lambda = 0.001f;
	assert_int_equal(r5_cg_solve(ctx, &conf, normal_cb, op, rhs, x, NULL), R5_OK);
	long npix = n * n;
	double sxy = 0, sxx = 0;
	for (long p = 0; p < npix; p++) {
		double m = 0;
		for (int j = 0; j < n_maps; j++)
			m += pow(cabsf(x->data[p + npix * j]), 2);
		m = sqrt(m);
		x->data[p] = (float)m;
		sxy += m * cabsf(object->data[p]);
		sxx += m * m;
	}
	double scale = sxy / sxx, err = 0, ref = 0;
	for (long p = 0; p < npix; p++) {
		if (cabsf(object->data[p]) == 0)
			continue;
		err += pow(scale * crealf(x->data[p]) - cabsf(object->data[p]), 2);
		ref += pow(cabsf(object->data[p]), 2);
	}
	r5_linop_free(op);
	r5_array_free(rhs);
	r5_array_free(x);
	r5_array_free(coil_images);
	r5_array_free(maps_true);
	r5_array_free(object);
	r5_array_free(maps);
	r5_array_free(k);
	r5_array_free(mask);
	r5_array_free(acs);
	return sqrt(err / ref);
}

struct sense_case {
	int accel, n_maps;
	double max_nrmse; /* about 1.3x the measured value (in the comment) */
};

static void run_cases(const char *label, double support, const struct sense_case *cases, int n_cases,
		      double *nrmse)
{
	for (int i = 0; i < n_cases; i++) {
		nrmse[i] = sense_nrmse(128, 8, support, cases[i].accel, cases[i].n_maps);
		print_message("SENSE 128^2 8 coils, %s, R=%d %d map%s: NRMSE %.4f (bound %.4f)\n", label, cases[i].accel,
			      cases[i].n_maps, cases[i].n_maps > 1 ? "s" : "", nrmse[i], cases[i].max_nrmse);
	}
	for (int i = 0; i < n_cases; i++)
		assert_true(nrmse[i] <= cases[i].max_nrmse);
}

static void test_sense_in_fov(void **state)
{
	(void)state;
	static const struct sense_case cases[] = {
		{2, 1, 0.0018}, /* 0.0014 */
		{2, 2, 0.0021}, /* 0.0016 */
		{3, 1, 0.0080}, /* 0.0061 */
		{3, 2, 0.0082}, /* 0.0063 */
		{4, 1, 0.0320}, /* 0.0246 */
		{4, 2, 0.0320}, /* 0.0246 */
	};
	double nrmse[6];
	run_cases("object inside the FOV", SYNTH_SUPPORT_IN_FOV, cases, 6, nrmse);
}

static void test_sense_object_overfills_fov(void **state)
{
	(void)state;
	static const struct sense_case cases[] = {
		{2, 1, 0.044}, /* 0.0335 */
		{2, 2, 0.0025}, /* 0.0019 */
		{3, 1, 0.116}, /* 0.0889 */
		{3, 2, 0.016}, /* 0.0122 */
	};
	double nrmse[4];
	run_cases("object overfilling the FOV", SYNTH_SUPPORT_OVERFILLS_FOV, cases, 4, nrmse);
	/* one map cannot hold two overlapping sensitivities; two maps must do much better */
	assert_true(nrmse[1] < nrmse[0] / 4);
	assert_true(nrmse[3] < nrmse[2] / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sense_in_fov),
		cmocka_unit_test(test_sense_object_overfills_fov),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
