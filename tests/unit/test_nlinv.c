/* NLINV for non-Cartesian data (recon/calib/nlinv.h): on a numerical radial phantom (64^2, six
 * smooth coils, 20 spokes: R ~ 5 against radial Nyquist, 2 % noise) the image magnitude against the
 * truth and the maps against the true maps; on the real radial cardiac set of ../shared
 * (25 spokes, 12 coils; at 128^2 from the central 128 samples of each spoke, 64^2 in sanitizer builds, to stay at a few
 * seconds) the image against a per-coil least-squares reference (the rss of 30-iteration CG
 * inverses, which is streaky but never edge-only), both smoothed 3 x 3: an image that lost its
 * interior (the edge-only failure of ESPIRiT maps from the gridded centre with `bart pics -t`)
 * correlates far less; the data-consistency of the result; errors. The agreement with `bart
 * nlinv -i 10 -t` itself (Pearson 0.99 on the full 256^2 set) is measured in
 * bench/bench_noncart.sh, not here (BART takes minutes). */
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

#include "recon/calib/nlinv.h"
#include "recon/io/cfl.h"
#include "recon/solve/cg.h"

#include "cpu_fixture.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__) || defined(R5_TEST_SMALL)
/* unoptimised sanitizer builds run NLINV 10-20x slower (175 s wall, 90 s user for this file under
 * ASan on the loaded 2-core machine): there the real radial set is reconstructed at 64^2 from
 * the central 64 samples of each spoke, checked against the same kind of reference */
#define REAL_N 64
#else
#define REAL_N 128
#endif

/* Pearson correlation of |a| and |b| over n values, each optionally smoothed 3 x 3 (nx wide) */
static double pearson(const float complex *a, const float complex *b, long nx, long ny, int smooth)
{
	double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
	long n = 0;
	for (long y = 1; y < ny - 1; y++)
		for (long x = 1; x < nx - 1; x++) {
			double va = 0, vb = 0;
			int r = smooth ? 1 : 0;
			for (int dy = -r; dy <= r; dy++)
				for (int dx = -r; dx <= r; dx++) {
					va += cabsf(a[(y + dy) * nx + x + dx]);
					vb += cabsf(b[(y + dy) * nx + x + dx]);
				}
			sa += va, sb += vb, saa += va * va, sbb += vb * vb, sab += va * vb;
			n++;
		}
	double ca = saa - sa * sa / n, cb = sbb - sb * sb / n, cab = sab - sa * sb / n;
	return cab / sqrt(ca * cb);
}

#define PN 64
#define PC 6
#define PSPOKES 20
#define PREAD 128

static void test_phantom(void **state)
{
	(void)state;
	long id[R5_DIMS], img[R5_DIMS], sd[R5_DIMS];
	dims_of(id, PN, PN, 1, PC);
	dims_of(img, PN, PN, 1, 1);
	dims_of(sd, 1, PREAD, PSPOKES, PC);
	r5_array *truth = host(img), *maps = host(id), *coils = host(id), *y = host(sd);
	r5_array *image = host(img), *est = host(id);
	for (int yy = 0; yy < PN; yy++)
		for (int x = 0; x < PN; x++) {
			double u = (x - PN / 2) / (0.38 * PN), v = (yy - PN / 2) / (0.3 * PN);
			double w = (x - PN / 2 - 8) / (0.1 * PN), z = (yy - PN / 2 + 4) / (0.12 * PN);
			double m = 0.5 * (1 - tanh(8 * (sqrt(u * u + v * v) - 1))) +
				   0.4 * (1 - tanh(4 * (sqrt(w * w + z * z) - 1)));
			truth->data[yy * PN + x] = (float complex)m;
			double sum = 0;
			double complex s[PC];
			for (int c = 0; c < PC; c++) {
				double cx = PN / 2 + 0.7 * PN * cos(2 * M_PI * c / PC);
				double cy = PN / 2 + 0.7 * PN * sin(2 * M_PI * c / PC);
				double d2 = ((x - cx) * (x - cx) + (yy - cy) * (yy - cy)) / (0.6 * PN * PN);
				s[c] = exp(-d2) * cexp(I * (0.9 * c + 0.02 * (x - yy)));
				sum += creal(s[c] * conj(s[c]));
			}
			for (int c = 0; c < PC; c++)
				maps->data[(long)c * PN * PN + yy * PN + x] = (float complex)(s[c] / sqrt(sum));
		}
	float *k = malloc(sizeof(float) * 3 * PREAD * PSPOKES);
	assert_non_null(k);
	for (int s = 0; s < PSPOKES; s++)
		for (int i = 0; i < PREAD; i++) {
			double r = (i - PREAD / 2) * (double)PN / PREAD, a = M_PI * s / PSPOKES;
			float *p = k + 3 * (s * PREAD + i);
			p[0] = (float)(r * cos(a)), p[1] = (float)(r * sin(a)), p[2] = 0.0f;
		}
	assert_int_equal(r5_zmul(ctx, coils, maps, truth, 0), R5_OK);
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, id, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, PREAD * PSPOKES, k), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, plan, y, coils), R5_OK);
	r5_nufft_plan_destroy(plan);
	/* complex Gaussian noise, 2 % of the samples' rms (Box-Muller on an LCG: deterministic) */
	double norm = 0;
	assert_int_equal(r5_znorm(ctx, y, &norm), R5_OK);
	double sigma = 0.02 * norm / sqrt((double)r5_array_size(y));
	unsigned rng = 2024u;
	for (long i = 0; i < r5_array_size(y); i++) {
		double u[2];
		for (int j = 0; j < 2; j++) {
			rng = rng * 1103515245u + 12345u;
			u[j] = ((rng >> 8) & 0xffffff) / 16777216.0 + 1e-9;
		}
		y->data[i] += (float complex)(sigma * sqrt(-2 * log(u[0])) * cexp(2 * M_PI * I * u[1]));
	}

	r5_nlinv_info info;
	assert_int_equal(r5_nlinv_nc(ctx, NULL, id, PREAD * PSPOKES, k, y, image, est, &info), R5_OK);
	double r = pearson(image->data, truth->data, PN, PN, 0);
	double worst = 1.0, sum = 0;
	long inside = 0;
	for (long p = 0; p < PN * PN; p++) {
		if (cabsf(truth->data[p]) < 0.5f)
			continue;
		double complex ip = 0;
		for (int c = 0; c < PC; c++)
			ip += est->data[c * PN * PN + p] * conjf(maps->data[c * PN * PN + p]);
		worst = fmin(worst, cabs(ip));
		sum += cabs(ip);
		inside++;
	}
	print_message("nlinv phantom 64^2, 20 spokes: |image| vs |truth| Pearson %.6f; maps |<S, S0>| mean %.6f, "
		      "worst %.6f; %d CG iterations, coil k-space %ld^2\n",
		      r, sum / inside, worst, info.cg_iters, info.coil_kspace[0]);
	assert_true(r > 0.98);              /* measured 0.9965 */
	assert_true(sum / inside > 0.999); /* measured 0.99999 */
	r5_array_free(est);
	r5_array_free(image);
	r5_array_free(y);
	r5_array_free(coils);
	r5_array_free(maps);
	r5_array_free(truth);
	free(k);
}

typedef struct coil_normal {
	r5_nufft_plan *plan;
} coil_normal;

static r5_status coil_normal_apply(r5_ctx *c, void *user, r5_array *out, const r5_array *in)
{
	coil_normal *n = user;
	r5_status s = r5_array_copy(c, out, in);
	return s == R5_OK ? r5_nufft_normal(c, n->plan, out, out) : s;
}

static void test_real_radial(void **state)
{
	(void)state;
	const char *shared = getenv("R5_SHARED");
	char kpath[4096], tpath[4096];
	snprintf(kpath, sizeof kpath, "%s/data/gpunufft-radial-cardiac/ksp", shared ? shared : "../shared");
	snprintf(tpath, sizeof tpath, "%s/data/gpunufft-radial-cardiac/traj", shared ? shared : "../shared");
	r5_array *ksp = NULL, *traj = NULL;
	if (r5_cfl_read(kpath, &ksp) != R5_OK || r5_cfl_read(tpath, &traj) != R5_OK) {
		r5_array_free(ksp);
		print_message("SKIP: %s not readable (%s)\n", kpath, r5_last_error());
		skip();
	}
	/* central 128 of 256 samples per spoke (|k| < 64): the 128^2 image of the same FOV */
	const long n = REAL_N, full = ksp->dims[1], spokes = ksp->dims[2], coils = ksp->dims[3], lo = (full - n) / 2;
	long id[R5_DIMS], img[R5_DIMS], sd[R5_DIMS];
	dims_of(id, n, n, 1, coils);
	dims_of(img, n, n, 1, 1);
	dims_of(sd, 1, n, spokes, coils);
	r5_array *y = host(sd), *image = host(img), *ref = host(img), *rhs = host(id), *x = host(id);
	float *k = malloc(sizeof(float) * 3 * (size_t)(n * spokes));
	assert_non_null(k);
	for (long s = 0; s < spokes; s++)
		for (long i = 0; i < n; i++) {
			for (int d = 0; d < 3; d++) {
				float v = crealf(traj->data[3 * (s * full + lo + i) + d]);
				k[3 * (s * n + i) + d] = fminf(v, nextafterf(0.5f * n, 0.0f));
			}
			for (long c = 0; c < coils; c++)
				y->data[(c * spokes + s) * n + i] = ksp->data[(c * spokes + s) * full + lo + i];
		}
	r5_nlinv_info info;
	assert_int_equal(r5_nlinv_nc(ctx, NULL, id, n * spokes, k, y, image, NULL, &info), R5_OK);

	/* the reference: rss of per-coil CG inverses */
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, id, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, n * spokes, k), R5_OK);
	assert_int_equal(r5_nufft_toeplitz(ctx, plan, NULL), R5_OK);
	assert_int_equal(r5_nufft_adjoint(ctx, plan, rhs, y), R5_OK);
	coil_normal cn = {plan};
	r5_cg_conf conf = r5_cg_defaults;
	conf.max_iters = 30;
	assert_int_equal(r5_cg_solve(ctx, &conf, coil_normal_apply, &cn, rhs, x, NULL), R5_OK);
	assert_int_equal(r5_zrss(ctx, ref, x, 3), R5_OK);
	double r = pearson(image->data, ref->data, n, n, 1);
	print_message("nlinv on the real radial set at %ld^2: Pearson (3x3 smoothed) with the CG-inverse rss %.4f; "
		      "%d CG iterations\n",
		      n, r, info.cg_iters);
	assert_true(r > 0.85); /* measured 0.916 at 128^2, 0.961 at 64^2 */
	r5_nufft_plan_destroy(plan);
	r5_array_free(x);
	r5_array_free(rhs);
	r5_array_free(ref);
	r5_array_free(image);
	r5_array_free(y);
	r5_array_free(traj);
	r5_array_free(ksp);
	free(k);
}

static void test_errors(void **state)
{
	(void)state;
	long id[R5_DIMS], img[R5_DIMS], sd[R5_DIMS];
	dims_of(id, 16, 16, 1, 2);
	dims_of(img, 16, 16, 1, 1);
	dims_of(sd, 1, 16, 4, 2);
	r5_array *y = host(sd), *image = host(img), *wrong = host(id);
	float k[3 * 64] = {0};
	assert_int_equal(r5_nlinv_nc(ctx, NULL, id, 64, k, y, image, NULL, NULL), R5_EINVAL); /* zero data */
	print_message("%s\n", r5_last_error());
	assert_int_equal(r5_nlinv_nc(ctx, NULL, id, 64, k, y, wrong, NULL, NULL), R5_EINVAL); /* image shape */
	print_message("%s\n", r5_last_error());
	assert_int_equal(r5_nlinv_nc(ctx, NULL, id, 60, k, y, image, NULL, NULL), R5_EINVAL); /* points */
	print_message("%s\n", r5_last_error());
	y->data[3] = 1.0f;
	k[4] = 9.0f; /* k1 of point 1 outside [-8, 8) */
	assert_int_equal(r5_nlinv_nc(ctx, NULL, id, 64, k, y, image, NULL, NULL), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	r5_nlinv_conf bad = r5_nlinv_defaults;
	bad.reduction = 0.5f;
	assert_int_equal(r5_nlinv_nc(ctx, &bad, id, 64, k, y, image, NULL, NULL), R5_EINVAL);
	r5_array_free(wrong);
	r5_array_free(image);
	r5_array_free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phantom),
		cmocka_unit_test(test_real_radial),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
