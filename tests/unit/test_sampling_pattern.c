/* The sampling-pattern detector and what `auto` does with it (recon/pipeline/sampling_pattern.h):
 *   variable density: `recon5t mask` Poisson-disc masks (r5_sampling_poisson) at R = 3, 4, 8 on
 *     128 x 128 (R = 8 also without a calibration block) and R = 4, 8 on the brain's 230 x 180,
 *     and the phantom's 2D variable-density random lines;
 *   regular lattices: uniform R = 2 (2D) and 2 x 2 (3D) with a calibration block
 *     (r5_sampling_mask), CAIPIRINHA-shifted 2 x 2, uniform R = 2 with partial Fourier, with 5 %
 *     of its lines dropped, and an elliptical fully sampled 3D shutter;
 *   full: every point;
 *   uniform random (no falloff): inner/outer density near 1, told apart from variable density —
 *     and `auto` picks cs for it too: on the brain (espirit-matlab-examples/full.cfl, 24 x 24
 *     calibration, defaults of 6e9e45f) against the fully sampled SENSE image, cs reached NRMSE
 *     0.054 at R = 4 and 0.094 at R = 8 where SENSE reached 0.131 and 0.211 (Poisson disc: cs
 *     0.042 and 0.057, SENSE 0.108 and 0.177): what cs needs is incoherent sampling, which a
 *     random pattern has with or without the falloff, while CG-SENSE on an irregular pattern is
 *     an unregularised least-squares fit;
 *   auto on scans: Poisson with the header saying R = 4 -> cs, uniform -> sense, full ->
 *     cartesian, irregular without a fully sampled centre or nearly full -> the earlier rule;
 *   ESPIRiT's calibration check: the centre not sampled, 1 x 1, 10 x 10 (< 2 x kernel 6) and a
 *     parameter calib below it refused naming what was found and what is needed; 24 x 24 passes,
 *     other pipelines are not checked. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "phantoms/sampling.h"
#include "recon/pipeline/pipelines.h"
#include "recon/pipeline/sampling_pattern.h"

static r5_sampling_pattern classify(const unsigned char *mask, long ny, long nz, const char *name)
{
	r5_sampling_pattern p;
	char text[256];
	assert_int_equal(r5_sampling_pattern_classify(mask, ny, nz, &p), R5_OK);
	r5_sampling_pattern_describe(&p, ny, nz, text, sizeof text);
	printf("%-34s %s\n", name, text);
	return p;
}

/* a deterministic uniform [0, 1) stream (the tests must not depend on libc's rand) */
static double next_uniform(uint64_t *state)
{
	*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(*state >> 11) / 9007199254740992.0;
}

static void fill_block(unsigned char *mask, long ny, long nz, long wy, long wz)
{
	for (long z = nz / 2 - wz / 2; z < nz / 2 - wz / 2 + wz; z++)
		for (long y = ny / 2 - wy / 2; y < ny / 2 - wy / 2 + wy; y++)
			mask[y + ny * z] = 1;
}

/* each point with probability p, plus a wy x wz centre block */
static unsigned char *random_mask(long ny, long nz, double p, long wy, long wz, uint64_t seed)
{
	unsigned char *mask = malloc((size_t)(ny * nz));
	assert_non_null(mask);
	for (long i = 0; i < ny * nz; i++)
		mask[i] = next_uniform(&seed) < p;
	fill_block(mask, ny, nz, wy, wz);
	return mask;
}

static void test_poisson_is_variable_density(void **state)
{
	(void)state;
	/* ny, nz, R, calib (0: none; R = 8 leaves no fully sampled centre then) */
	static const struct {
		int ny, nz;
		double accel;
		int calib;
	} cases[] = {{128, 128, 3, 24}, {128, 128, 4, 24}, {128, 128, 8, 24}, {128, 128, 8, 0}, {230, 180, 4, 24},
		     {230, 180, 8, 24}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int ny = cases[i].ny, nz = cases[i].nz;
		unsigned char *mask = malloc((size_t)ny * nz);
		long n = 0;
		assert_int_equal(r5_sampling_poisson(ny, nz, cases[i].accel, cases[i].calib, 5, mask, &n), R5_OK);
		char name[64];
		snprintf(name, sizeof name, "poisson %dx%d R=%g calib %d", ny, nz, cases[i].accel, cases[i].calib);
		r5_sampling_pattern p = classify(mask, ny, nz, name);
		assert_int_equal(p.kind, R5_PATTERN_VARIABLE_DENSITY);
		assert_true(p.density_ratio >= R5_PATTERN_VD_RATIO);
		if (cases[i].calib)
			assert_true(p.centre[0] >= 24 && p.centre[1] >= 24);
		free(mask);
	}
}

static void test_vd_random_lines_2d(void **state)
{
	(void)state;
	unsigned char mask[128];
	long n = 0;
	int accel[2] = {4, 1};
	assert_int_equal(r5_sampling_mask(R5_SAMPLING_POISSON, 128, 1, accel, 20, 42, mask, &n), R5_OK);
	r5_sampling_pattern p = classify(mask, 128, 1, "2D VD random lines R=4 calib 20");
	assert_int_equal(p.kind, R5_PATTERN_VARIABLE_DENSITY);
	assert_int_equal(p.centre[0], 20);
}

static void test_lattices(void **state)
{
	(void)state;
	long n = 0;
	int r2[2] = {2, 1}, r22[2] = {2, 2};
	unsigned char line[128];
	assert_int_equal(r5_sampling_mask(R5_SAMPLING_UNIFORM, 128, 1, r2, 24, 0, line, &n), R5_OK);
	r5_sampling_pattern p = classify(line, 128, 1, "uniform R=2 calib 24");
	assert_int_equal(p.kind, R5_PATTERN_LATTICE);
	assert_int_equal(p.lattice[0][0], 2);
	/* partial Fourier: the first 40 lines not acquired */
	memset(line, 0, 40);
	p = classify(line, 128, 1, "uniform R=2, partial Fourier");
	assert_int_equal(p.kind, R5_PATTERN_LATTICE);

	enum { NY = 128, NZ = 96 };
	unsigned char *mask = malloc(NY * NZ);
	assert_int_equal(r5_sampling_mask(R5_SAMPLING_UNIFORM, NY, NZ, r22, 24, 0, mask, &n), R5_OK);
	p = classify(mask, NY, NZ, "uniform 2x2 calib 24");
	assert_int_equal(p.kind, R5_PATTERN_LATTICE);
	assert_int_equal(p.lattice[0][0], 2);
	assert_int_equal(p.lattice[1][0], 0);
	assert_int_equal(p.lattice[1][1], 2);
	assert_true(p.centre[0] >= 24 && p.centre[1] >= 24);

	/* 5 % of its lines dropped at random: still the lattice */
	uint64_t seed = 11;
	for (long i = 0; i < NY * NZ; i++)
		if (mask[i] && next_uniform(&seed) < 0.05)
			mask[i] = 0;
	fill_block(mask, NY, NZ, 24, 24);
	assert_int_equal(classify(mask, NY, NZ, "uniform 2x2, 5% dropped").kind, R5_PATTERN_LATTICE);

	/* CAIPIRINHA 2 x 2: every second kz row, its ky grid shifted by 1 on every other row */
	memset(mask, 0, NY * NZ);
	for (long z = 0; z < NZ; z += 2)
		for (long y = (z / 2) % 2; y < NY; y += 2)
			mask[y + NY * z] = 1;
	fill_block(mask, NY, NZ, 24, 24);
	p = classify(mask, NY, NZ, "CAIPIRINHA 2x2 shift 1");
	assert_int_equal(p.kind, R5_PATTERN_LATTICE);
	assert_int_equal(p.lattice[1][1], 2);

	/* an elliptical shutter, fully sampled inside (78.5 %) */
	for (long z = 0; z < NZ; z++)
		for (long y = 0; y < NY; y++) {
			double ry = (y - NY / 2) / (NY / 2.0), rz = (z - NZ / 2) / (NZ / 2.0);
			mask[y + NY * z] = ry * ry + rz * rz <= 1;
		}
	assert_int_equal(classify(mask, NY, NZ, "elliptical, full inside").kind, R5_PATTERN_LATTICE);
	memset(mask, 1, NY * NZ);
	assert_int_equal(classify(mask, NY, NZ, "full").kind, R5_PATTERN_FULL);
	free(mask);
}

static void test_uniform_random(void **state)
{
	(void)state;
	static const double fractions[] = {0.125, 0.25, 0.5};
	for (size_t i = 0; i < 3; i++) {
		unsigned char *mask = random_mask(230, 180, fractions[i], 24, 24, 3 + i);
		char name[64];
		snprintf(name, sizeof name, "uniform random %.3f calib 24", fractions[i]);
		r5_sampling_pattern p = classify(mask, 230, 180, name);
		assert_int_equal(p.kind, R5_PATTERN_UNIFORM_RANDOM);
		assert_true(fabs(p.density_ratio - 1.0) < 0.1);
		free(mask);
	}
}

static void test_classify_errors(void **state)
{
	(void)state;
	r5_sampling_pattern p;
	unsigned char one = 1;
	assert_int_equal(r5_sampling_pattern_classify(NULL, 4, 4, &p), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "sampling pattern"));
	assert_int_equal(r5_sampling_pattern_classify(&one, 0, 1, &p), R5_EINVAL);
	assert_int_equal(r5_sampling_pattern_classify(&one, 1, 1, NULL), R5_EINVAL);
}

/* a scan with only what auto and the calibration check read: header, mask dims and mask */
static r5_scan *mask_scan(unsigned char *mask, long ny, long nz, int accel_y, int accel_z)
{
	r5_scan *scan = calloc(1, sizeof *scan);
	assert_non_null(scan);
	for (int d = 0; d < R5_DIMS; d++)
		scan->mask_dims[d] = 1;
	scan->mask_dims[R5_DIM_Y] = ny;
	scan->mask_dims[R5_DIM_Z] = nz;
	scan->sampled = mask;
	scan->header.accel[0] = accel_y;
	scan->header.accel[1] = accel_z;
	return scan;
}

static const char *choice(const r5_scan *scan, const char *name)
{
	char reason[512];
	const char *pick = r5_sampling_pattern_auto_choice(scan, reason, sizeof reason);
	printf("auto %-29s -> %-9s (%s)\n", name, pick, reason);
	assert_string_equal(pick, r5_pipeline_auto_choice(scan));
	return pick;
}

static void test_auto_choice(void **state)
{
	(void)state;
	enum { NY = 128, NZ = 128 };
	unsigned char *mask = malloc(NY * NZ);
	long n = 0;
	r5_scan *scan = mask_scan(mask, NY, NZ, 4, 1);
	assert_int_equal(r5_sampling_poisson(NY, NZ, 4, 24, 5, mask, &n), R5_OK);
	assert_string_equal(choice(scan, "poisson R=4, header R=4"), "cs");
	scan->header.accel[0] = 1;
	assert_string_equal(choice(scan, "poisson R=4, header R=1"), "cs");

	int r22[2] = {2, 2};
	assert_int_equal(r5_sampling_mask(R5_SAMPLING_UNIFORM, NY, NZ, r22, 24, 0, mask, &n), R5_OK);
	scan->header.accel[0] = scan->header.accel[1] = 2;
	assert_string_equal(choice(scan, "uniform 2x2, header 2x2"), "sense");
	scan->header.accel[0] = scan->header.accel[1] = 1;
	assert_string_equal(choice(scan, "uniform 2x2, no header"), "sense");
	memset(mask, 1, NY * NZ);
	assert_string_equal(choice(scan, "full"), "cartesian");

	/* random at 25 % with a calibration block: cs (see the top of the file) */
	unsigned char *random = random_mask(NY, NZ, 0.22, 24, 24, 9);
	scan->sampled = random;
	assert_string_equal(choice(scan, "uniform random, calib 24"), "cs");
	free(random);
	/* no fully sampled centre: the earlier rule (then ESPIRiT's check refuses, see below) */
	random = random_mask(NY, NZ, 0.25, 0, 0, 10);
	random[NY / 2 + NY * (NZ / 2)] = 1;
	random[NY / 2 + 1 + NY * (NZ / 2)] = 0;
	scan->sampled = random;
	assert_string_equal(choice(scan, "uniform random, no centre"), "sense");
	free(random);
	/* irregular but nearly full (85 %): lines dropped from a full scan, cartesian as before */
	random = random_mask(NY, NZ, 0.85, 24, 24, 12);
	scan->sampled = random;
	assert_string_equal(choice(scan, "random 85 %"), "cartesian");
	free(random);
	free(mask);
	free(scan);
}

static void expect_calib_error(const r5_scan *scan, const char *pipeline, int kernel, int cap, const char *found,
			       const char *needed)
{
	assert_int_equal(r5_sampling_pattern_check_calib(scan, pipeline, kernel, cap), R5_EINVAL);
	const char *msg = r5_last_error();
	printf("refused: %s\n", msg);
	assert_non_null(strstr(msg, pipeline));
	assert_non_null(strstr(msg, found));
	assert_non_null(strstr(msg, needed));
}

static void test_calibration_check(void **state)
{
	(void)state;
	enum { NY = 230, NZ = 180 };
	unsigned char *mask = random_mask(NY, NZ, 0.25, 0, 0, 21);
	r5_scan *scan = mask_scan(mask, NY, NZ, 1, 1);
	mask[NY / 2 + NY * (NZ / 2)] = 0;
	expect_calib_error(scan, "cs", 6, 0, "centre (ky 115, kz 90) is not sampled", "12 x 12");
	mask[NY / 2 + NY * (NZ / 2)] = 1;
	mask[NY / 2 - 1 + NY * (NZ / 2)] = 0;
	mask[NY / 2 + NY * (NZ / 2 - 1)] = 0;
	expect_calib_error(scan, "sense", 6, 0, "block is 1 x 1", "12 x 12");
	fill_block(mask, NY, NZ, 10, 10);
	expect_calib_error(scan, "cs", 6, 0, "block is 10 x 10", "calibration region");
	assert_int_equal(r5_sampling_pattern_check_calib(scan, "cs", 4, 0), R5_OK); /* 10 >= 2 x 4 */
	assert_int_equal(r5_sampling_pattern_check_calib(scan, "grappa", 6, 0), R5_OK);
	assert_int_equal(r5_sampling_pattern_check_calib(scan, "cartesian", 6, 0), R5_OK);
	fill_block(mask, NY, NZ, 24, 24);
	assert_int_equal(r5_sampling_pattern_check_calib(scan, "cs", 6, 0), R5_OK);
	assert_int_equal(r5_sampling_pattern_check_calib(scan, "sense", 6, 0), R5_OK);
	expect_calib_error(scan, "cs", 6, 8, "calib 8", "12 x 12");
	free(scan);
	free(mask);

	unsigned char line[128];
	long n = 0;
	int r2[2] = {2, 1};
	assert_int_equal(r5_sampling_mask(R5_SAMPLING_UNIFORM, 128, 1, r2, 0, 0, line, &n), R5_OK);
	scan = mask_scan(line, 128, 1, 2, 1);
	expect_calib_error(scan, "sense", 6, 0, "centre is 1 ky line;", "12 lines");
	assert_int_equal(r5_sampling_mask(R5_SAMPLING_UNIFORM, 128, 1, r2, 24, 0, line, &n), R5_OK);
	assert_int_equal(r5_sampling_pattern_check_calib(scan, "sense", 6, 0), R5_OK);
	free(scan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_poisson_is_variable_density),
		cmocka_unit_test(test_vd_random_lines_2d),
		cmocka_unit_test(test_lattices),
		cmocka_unit_test(test_uniform_random),
		cmocka_unit_test(test_classify_errors),
		cmocka_unit_test(test_auto_choice),
		cmocka_unit_test(test_calibration_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
