/* Trajectories (recon/linop/traj.h) against BART: numbers written by `bart traj` v0.8.00 (kept
 * here, so the check runs without BART), and, when `bart` is on the PATH, the whole trajectory
 * of several kinds against a fresh `bart traj` run (skipped without it); properties (golden
 * frames continue each other, radii and spacing, the 3D golden means on the hemisphere and
 * spread evenly); bad input. */
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

#include "recon/core/hd.h"
#include "recon/core/log.h"
#include "recon/io/cfl.h"
#include "recon/linop/traj.h"

#define TOL_BART 1e-5 /* relative to kmax: float rounding of the angle's trigonometry */

static float *traj_new(long n_read, long n_spokes)
{
	float *k = calloc((size_t)(3 * n_read * n_spokes), sizeof(float));
	assert_non_null(k);
	return k;
}

static void assert_point(const float *k, long n_read, long s, long i, double k0, double k1, double k2)
{
	const float *p = k + 3 * (i + n_read * s);
	assert_true(fabs(p[0] - k0) < 2e-6 && fabs(p[1] - k1) < 2e-6 && fabs(p[2] - k2) < 2e-6);
}

/* numbers printed by bart traj v0.8.00 (the default, symmetric readout: R5_TRAJ_SYMMETRIC) */
static void test_bart_numbers(void **state)
{
	(void)state;
	float *k = traj_new(8, 5);
	/* bart traj -x 8 -y 4 -r */
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM | R5_TRAJ_SYMMETRIC, 0, 8, 4, 0, 4.0, k), R5_OK);
	assert_point(k, 8, 0, 0, 0.0, -3.5, 0.0);
	assert_point(k, 8, 1, 0, -2.4748737, -2.4748737, 0.0);
	assert_point(k, 8, 2, 7, 3.5, 0.0, 0.0);
	assert_point(k, 8, 3, 0, -2.4748737, 2.4748737, 0.0);
	/* bart traj -x 8 -y 4 -r -D */
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM_360 | R5_TRAJ_SYMMETRIC, 0, 8, 4, 0, 4.0, k), R5_OK);
	assert_point(k, 8, 2, 0, 0.0, 3.5, 0.0);
	assert_point(k, 8, 3, 0, 3.5, 0.0, 0.0);
	/* bart traj -x 8 -y 5 -r -G */
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN | R5_TRAJ_SYMMETRIC, 0, 8, 5, 0, 4.0, k), R5_OK);
	assert_point(k, 8, 4, 0, -3.4865987, -0.30598986, 0.0);
	assert_point(k, 8, 3, 6, -1.1061778, 2.241957, 0.0);
	/* bart traj -x 8 -y 5 -r -s 7 */
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_TINY_GOLDEN | R5_TRAJ_SYMMETRIC, 7, 8, 5, 0, 4.0, k), R5_OK);
	assert_point(k, 8, 4, 0, -3.4891503, 0.27537245, 0.0);
	assert_point(k, 8, 3, 6, 2.3621497, 0.8186868, 0.0);
	free(k);
}

static int have_bart(void) { return system("command -v bart > /dev/null 2>&1") == 0; }

/* max |ours - bart| / kmax over the whole trajectory of `bart traj <args>` (n_read x n_spokes) */
static double against_bart(const char *args, r5_traj_kind kind, int tiny, long n_read, long n_spokes)
{
	char dir[] = "/tmp/r5_test_traj_XXXXXX", cmd[512], path[300];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t", dir);
	snprintf(cmd, sizeof cmd, "bart traj -x %ld -y %ld %s %s > /dev/null 2>&1", n_read, n_spokes, args, path);
	assert_int_equal(system(cmd), 0);
	r5_array *bart = NULL;
	assert_int_equal(r5_cfl_read(path, &bart), R5_OK);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(r5_array_size(bart), 3 * n_read * n_spokes);
	float *k = traj_new(n_read, n_spokes);
	double kmax = 0.5 * (double)n_read;
	assert_int_equal(r5_traj_radial(kind, tiny, n_read, n_spokes, 0, kmax, k), R5_OK);
	const float complex *b = bart->data;
	double worst = 0.0;
	for (long j = 0; j < 3 * n_read * n_spokes; j++)
		worst = fmax(worst, fabs((double)k[j] - crealf(b[j])) / kmax);
	free(k);
	r5_array_free(bart);
	print_message("bart traj -x %ld -y %ld %-8s max |difference| / kmax = %.2e\n", n_read, n_spokes, args, worst);
	return worst;
}

static void test_against_bart(void **state)
{
	(void)state;
	if (!have_bart())
		skip();
	assert_true(against_bart("-r", R5_TRAJ_RADIAL_UNIFORM | R5_TRAJ_SYMMETRIC, 0, 256, 101) < TOL_BART);
	assert_true(against_bart("-r -c", R5_TRAJ_RADIAL_UNIFORM, 0, 256, 101) < TOL_BART);
	assert_true(against_bart("-r -D", R5_TRAJ_RADIAL_UNIFORM_360 | R5_TRAJ_SYMMETRIC, 0, 128, 25) < TOL_BART);
	assert_true(against_bart("-r -D -c", R5_TRAJ_RADIAL_UNIFORM_360, 0, 128, 25) < TOL_BART);
	/* BART rounds the golden angle s psi, unreduced, to float before its cosf/sinf: spoke s is off
	 * by up to s psi 2^-24 radians (ours reduces modulo 2 pi in double). Within 1e-5 for the
	 * first 55 spokes; beyond, the bound grows with s psi (377 spokes: 3e-5). */
	assert_true(against_bart("-r -G", R5_TRAJ_RADIAL_GOLDEN | R5_TRAJ_SYMMETRIC, 0, 256, 55) < TOL_BART);
	assert_true(against_bart("-r -G -c", R5_TRAJ_RADIAL_GOLDEN, 0, 256, 55) < TOL_BART);
	assert_true(against_bart("-r -G", R5_TRAJ_RADIAL_GOLDEN | R5_TRAJ_SYMMETRIC, 0, 256, 377) <
		    2.0 * 376 * (R5_PI / 1.618034) / 16777216.0);
	assert_true(against_bart("-r -s 7", R5_TRAJ_RADIAL_TINY_GOLDEN | R5_TRAJ_SYMMETRIC, 7, 128, 200) < TOL_BART);
	assert_true(against_bart("-r -s 2 -c", R5_TRAJ_RADIAL_TINY_GOLDEN, 2, 128, 200) < TOL_BART);
	assert_true(against_bart("-3 -r", R5_TRAJ_KOOSH_BART | R5_TRAJ_SYMMETRIC, 0, 64, 400) < TOL_BART);
}

/* golden-angle frames: frame f (first_spoke = f S) is spokes f S .. f S + S - 1 of one long run */
static void test_frames_continue(void **state)
{
	(void)state;
	const long n_read = 64, S = 21, F = 5;
	float *all = traj_new(n_read, S * F), *frame = traj_new(n_read, S);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN, 0, n_read, S * F, 0, 32.0, all), R5_OK);
	for (long f = 0; f < F; f++) {
		assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN, 0, n_read, S, f * S, 32.0, frame), R5_OK);
		for (long j = 0; j < 3 * n_read * S; j++)
			assert_true(fabsf(frame[j] - all[3 * n_read * S * f + j]) < 1e-6f);
	}
	/* angle of spoke s: s * 111.246 degrees (mod 360) */
	assert_true(fabs(r5_traj_spoke_angle(R5_TRAJ_RADIAL_GOLDEN, 0, 0, 1) * 180.0 / R5_PI - 111.2461180) < 1e-6);
	assert_true(fabs(r5_traj_angle_step(R5_TRAJ_RADIAL_TINY_GOLDEN, 7, 0) * 180.0 / R5_PI - 23.6281) < 1e-4);
	/* a late spoke keeps its precision: spoke 10^6 + 1 minus spoke 10^6 is still psi */
	double a0 = r5_traj_spoke_angle(R5_TRAJ_RADIAL_GOLDEN, 0, 0, 1000000);
	double a1 = r5_traj_spoke_angle(R5_TRAJ_RADIAL_GOLDEN, 0, 0, 1000001);
	assert_true(fabs(fmod(a1 - a0 + 4 * R5_PI, 2 * R5_PI) - R5_PI / 1.6180339887498949) < 1e-9);
	free(all);
	free(frame);
}

/* readout positions: sample i at (i - n/2) dk (DC sampled) or (i - n/2 + 1/2) dk (symmetric) */
static void test_radii(void **state)
{
	(void)state;
	const long n_read = 32, S = 7;
	float *k = traj_new(n_read, S);
	for (int sym = 0; sym < 2; sym++) {
		assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM | (sym ? R5_TRAJ_SYMMETRIC : 0), 0, n_read, S, 0,
						8.0, k), R5_OK); /* dk = 1/2 */
		for (long s = 0; s < S; s++)
			for (long i = 0; i < n_read; i++) {
				const float *p = k + 3 * (i + n_read * s);
				double r = sqrt((double)p[0] * p[0] + (double)p[1] * p[1]);
				assert_true(fabs(r - fabs((i - n_read / 2 + 0.5 * sym) * 0.5)) < 1e-5);
				assert_true(p[2] == 0.0f);
				assert_true(p[0] >= -8.0f && p[0] < 8.0f && p[1] >= -8.0f && p[1] < 8.0f);
			}
	}
	free(k);
}

/* 3D golden means: unit directions on the upper hemisphere (z in [0, 1)), and spread evenly: the
 * mean of z over 2000 spokes is 1/2 and each octant of azimuth holds 1/8 of them (within 2 %) */
static void test_koosh(void **state)
{
	(void)state;
	const long n_read = 16, S = 2000;
	float *k = traj_new(n_read, S);
	assert_int_equal(r5_traj_radial(R5_TRAJ_KOOSH_GOLDEN_MEANS, 0, n_read, S, 0, 8.0, k), R5_OK);
	double zsum = 0.0;
	long octant[8] = {0};
	for (long s = 0; s < S; s++) {
		const float *p = k + 3 * (n_read - 1 + n_read * s); /* r = 7 */
		double r = sqrt((double)p[0] * p[0] + (double)p[1] * p[1] + (double)p[2] * p[2]);
		assert_true(fabs(r - 7.0) < 1e-5);
		assert_true(p[2] >= 0.0f);
		zsum += p[2] / r;
		double az = atan2(p[1], p[0]) + R5_PI;
		octant[(int)(az / (R5_PI / 4)) & 7]++;
	}
	print_message("golden means, %ld spokes: mean z %.4f, azimuth octants", S, zsum / S);
	for (int o = 0; o < 8; o++)
		print_message(" %ld", octant[o]);
	print_message("\n");
	assert_true(fabs(zsum / S - 0.5) < 0.01);
	for (int o = 0; o < 8; o++)
		assert_true(labs(octant[o] - S / 8) < S / 50);
	free(k);
}

static void test_errors(void **state)
{
	(void)state;
	float *k = traj_new(8, 4);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM, 0, 1, 4, 0, 4.0, k), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "radial trajectory"));
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM, 0, 8, 0, 0, 4.0, k), R5_EINVAL);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN, 0, 8, 4, -1, 4.0, k), R5_EINVAL);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN, 0, 8, 4, 0, 0.0, k), R5_EINVAL);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN, 0, 8, 4, 0, NAN, k), R5_EINVAL);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_TINY_GOLDEN, 0, 8, 4, 0, 4.0, k), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "tiny golden"));
	assert_int_equal(r5_traj_radial((r5_traj_kind)77, 0, 8, 4, 0, 4.0, k), R5_EINVAL);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM, 0, 8, 4, 0, 4.0, NULL), R5_EINVAL);
	free(k);
}

int main(void)
{
	r5_log_set_level(R5_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bart_numbers), cmocka_unit_test(test_against_bart),
		cmocka_unit_test(test_frames_continue), cmocka_unit_test(test_radii),
		cmocka_unit_test(test_koosh), cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
