/* CG-SENSE with ESPIRiT maps on synthetic data (smooth object x smooth coil maps), uniform
 * undersampling R = 2, 3, 4 with 24 calibration lines, 8 coils, noise 0: NRMSE of the
 * magnitude against the object inside its support after a least-squares scale, <= 0.08 at R=2. */
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

static double sense_nrmse(long n, long coils, int accel, int n_maps)
{
	r5_array *coil_images, *maps_true, *object, *maps = NULL, *k = NULL, *mask = NULL, *acs = NULL;
	synth_make(n, 1, coils, &coil_images, &maps_true, &object);
	assert_int_equal(r5_array_to_work(ctx, coil_images, &k), R5_OK);
	assert_int_equal(r5_fft(ctx, 3, k, k), R5_OK);
	long sdims[R5_DIMS], adims[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[1] = n;
	assert_int_equal(r5_array_alloc_work(ctx, sdims, &mask), R5_OK);
	for (long y = 0; y < n; y++)
		mask->data[y] = (y % accel == 0 || labs(y - n / 2) < 12) ? 1.0f : 0.0f;
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

static void test_sense_r2_r3_r4(void **state)
{
	(void)state;
	double e[5];
	for (int r = 2; r <= 4; r++) {
		e[r] = sense_nrmse(128, 8, r, 1);
		print_message("SENSE 128^2 8 coils R=%d 1 map: NRMSE %.4f\n", r, e[r]);
	}
	double e2 = sense_nrmse(128, 8, 2, 2);
	print_message("SENSE 128^2 8 coils R=2 2 maps: NRMSE %.4f\n", e2);
	assert_true(e[2] <= 0.08);
	assert_true(e[3] <= 0.12);
	assert_true(e2 <= 0.08);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sense_r2_r3_r4),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
