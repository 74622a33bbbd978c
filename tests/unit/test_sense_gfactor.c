/* SENSE analytic g-factor (recon/pipeline/sense_gfactor.c) on maps whose answer is known:
 * R=1 -> 1; two coils, R=2, aliased pixels with sensitivities (1,0) and (cos t, sin t) ->
 * E^H E = [[1, c], [c, 1]], g = 1 / sin t; orthogonal sensitivities -> 1; zero map -> 0;
 * R that does not divide the grid uses the nearest-pixel fold (unresolvable groups -> 0); bad acceleration -> EINVAL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "recon/core/ctx.h"
#include "recon/pipeline/sense_gfactor.h"

#include "cpu_fixture.h"

/* maps [nx=3, ny=8, 1, 2 coils]: rows y < 4 get (1, 0), rows y >= 4 get (cos t, sin t) */
static r5_array *two_coil_maps(double t)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 3;
	dims[1] = 8;
	dims[R5_DIM_COIL] = 2;
	r5_array *maps = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &maps), R5_OK);
	for (long y = 0; y < 8; y++)
		for (long x = 0; x < 3; x++) {
			maps->data[x + 3 * y] = y < 4 ? 1.0f : (float)cos(t);
			maps->data[x + 3 * y + 24] = y < 4 ? 0.0f : (float)sin(t);
		}
	return maps;
}

static r5_array *gfactor(const r5_array *maps, int ry, r5_status *status)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, maps->dims);
	dims[R5_DIM_COIL] = 1;
	r5_array *g = NULL, *host = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &g), R5_OK);
	int accel[2] = {ry, 1};
	*status = r5_sense_gfactor(ctx, maps, accel, g);
	assert_int_equal(r5_array_to_host(ctx, g, &host), R5_OK);
	r5_array_free(g);
	return host;
}

static void test_known_values(void **state)
{
	(void)state;
	const double t = 30.0 * 3.14159265358979 / 180.0;
	r5_status s;
	r5_array *maps = two_coil_maps(t);
	r5_array *g1 = gfactor(maps, 1, &s);
	assert_int_equal(s, R5_OK);
	r5_array *g2 = gfactor(maps, 2, &s);
	assert_int_equal(s, R5_OK);
	for (long i = 0; i < 24; i++) {
		assert_true(fabs(crealf(g1->data[i]) - 1.0) < 1e-5);
		assert_true(fabs(crealf(g2->data[i]) - 1.0 / sin(t)) < 1e-4); /* 2.0 */
	}
	r5_array_free(g1);
	r5_array_free(g2);
	r5_array_free(maps);

	maps = two_coil_maps(3.14159265358979 / 2); /* orthogonal: no noise amplification */
	maps->data[1 + 3 * 2] = maps->data[1 + 3 * 2 + 24] = 0; /* one pixel outside the maps */
	g2 = gfactor(maps, 2, &s);
	assert_int_equal(s, R5_OK);
	for (long i = 0; i < 24; i++)
		assert_true(fabs(crealf(g2->data[i]) - (i == 1 + 3 * 2 ? 0.0 : 1.0)) < 1e-5);
	r5_array_free(g2);
	/* 8 / 3: nearest-pixel folds (y, y+3, y+5); 3 unknowns, 2 coils: groups whose pixels are
	 * not separable (two equal columns) are unresolvable and get 0, the others g >= 1 */
	r5_array *g3 = gfactor(maps, 3, &s);
	assert_int_equal(s, R5_OK);
	for (long i = 0; i < 24; i++) {
		float v = crealf(g3->data[i]);
		assert_true(isfinite(v) && (v == 0.0f || v >= 1.0f - 1e-5f));
	}
	r5_array_free(g3);
	r5_array *bad = gfactor(maps, 9, &s);
	assert_int_equal(s, R5_EINVAL);
	r5_array_free(bad);
	r5_array_free(maps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_known_values)};
	return cmocka_run_group_tests(tests, setup, teardown);
}
