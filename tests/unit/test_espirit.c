/* ESPIRiT: the dense Hermitian eigensolver, maps from synthetic data whose projection
 * reproduces the coil images (object inside the FOV: one map suffices; object overfilling the
 * FOV: two maps needed), maps against the TRUE coil sensitivities (the synthetic data's, and the
 * analytic Shepp-Logan phantom's coil model, phantoms/coils.h) up to the per-pixel phase
 * ESPIRiT leaves free, and bad input (calibration region smaller than the kernel). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "phantoms/phantom.h"
#include "phantoms/spectrum.h"
#include "recon/calib/espirit.h"
#include "recon/calib/herm_eig.h"
#include "test_sense_synth.h"

#include "cpu_fixture.h"

/* Sanitizer and unoptimised builds check the same properties at smaller sizes (see
 * test_density.c): the optimised build keeps ESPIRiT's full size. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
#define R5_TEST_LIGHT 1
#else
#define R5_TEST_LIGHT 0
#endif

static void test_herm_eig(void **state)
{
	(void)state;
	int n = 37;
	double complex *a = malloc(sizeof *a * n * n), *v = malloc(sizeof *v * n * n);
	double *w = malloc(sizeof *w * n);
	srand(3);
	for (int j = 0; j < n; j++)
		for (int i = 0; i <= j; i++) {
			double complex z = (rand() / (double)RAND_MAX - 0.5) + I * (i == j ? 0 : rand() / (double)RAND_MAX - 0.5);
			a[i + j * n] = z;
			a[j + i * n] = conj(z);
		}
	for (int i = 0; i < n * n; i++)
		v[i] = a[i];
	assert_int_equal(r5_herm_eig(n, v, w), R5_OK);
	double err = 0, ref = 0;
	for (int k = 0; k < n; k++) {
		if (k)
			assert_true(w[k] <= w[k - 1] + 1e-12);
		for (int i = 0; i < n; i++) {
			double complex av = 0;
			for (int l = 0; l < n; l++)
				av += a[i + l * n] * v[l + k * n];
			err += pow(cabs(av - w[k] * v[i + k * n]), 2);
			ref += pow(cabs(av), 2);
		}
	}
	print_message("herm_eig: n = %d, residual %.2g\n", n, sqrt(err / ref));
	assert_true(sqrt(err / ref) < 1e-14); /* measured 1.1e-15 */
	free(a);
	free(v);
	free(w);
}

/* The selective solver (QL eigenvalues + inverse iteration for the wanted vectors): a
 * Gram-like matrix with a decaying spectrum and a cluster of equal eigenvalues (the case that
 * needs re-orthogonalisation): residual |A v - w v| and orthonormality of the kept vectors. */
static void test_herm_eig_top(void **state)
{
	(void)state;
	int n = 120, rank = 50;
	double complex *b = malloc(sizeof *b * n * rank), *a = malloc(sizeof *a * n * n), *v = malloc(sizeof *v * n * n);
	double *w = malloc(sizeof *w * n);
	srand(5);
	for (int i = 0; i < n * rank; i++)
		b[i] = (rand() / (double)RAND_MAX - 0.5) + I * (rand() / (double)RAND_MAX - 0.5);
	for (int j = 0; j < n; j++) /* A = B diag(s) B^H + 3 I(first 4 coordinates): decay + cluster */
		for (int i = 0; i < n; i++) {
			double complex sum = i == j && i < 4 ? 3.0 : 0.0;
			for (int k = 0; k < rank; k++)
				sum += b[i + k * n] * conj(b[j + k * n]) * exp(-0.15 * k);
			a[i + j * n] = sum;
		}
	for (int i = 0; i < n * n; i++)
		v[i] = a[i];
	int kept = 0;
	assert_int_equal(r5_herm_eig_top(n, v, w, 1e-3, &kept, NULL), R5_OK);
	assert_true(kept > 10 && kept < n);
	assert_true(w[kept - 1] >= 1e-3 * w[0] && w[kept] < 1e-3 * w[0]);
	double err = 0, ref = 0, ortho = 0;
	for (int k = 0; k < kept; k++) {
		for (int i = 0; i < n; i++) {
			double complex av = 0;
			for (int l = 0; l < n; l++)
				av += a[i + l * n] * v[l + k * n];
			err += pow(cabs(av - w[k] * v[i + k * n]), 2);
			ref += pow(cabs(av), 2);
		}
		for (int m = 0; m <= k; m++) {
			double complex dot = 0;
			for (int i = 0; i < n; i++)
				dot += conj(v[i + m * n]) * v[i + k * n];
			ortho = fmax(ortho, cabs(dot - (m == k ? 1.0 : 0.0)));
		}
	}
	print_message("herm_eig_top: %d of %d vectors, residual %.2g, orthonormality %.2g\n", kept, n, sqrt(err / ref), ortho);
	assert_true(sqrt(err / ref) < 2.1e-15); /* measured 1.6e-15 */
	assert_true(ortho < 3e-15);            /* 2.3e-15 */
	free(a);
	free(b);
	free(v);
	free(w);
}

/* ---- r5_herm_eig_signal (randomized subspace iteration) against known spectra and the dense path ---- */

/* G = H diag(lambda) H^H with H = H_1 .. H_r (r Householder reflectors, random complex
 * directions): exact eigenvalues lambda and eigenvectors the columns of H, in O(r n^2). */
static void apply_reflectors(int n, int r, const double complex *dirs, double complex *x, long cols, int adjoint)
{
	for (int t = 0; t < r; t++) {
		const double complex *u = dirs + (long)(adjoint ? t : r - 1 - t) * n; /* H x = H_1 (.. (H_r x)) */
		for (long c = 0; c < cols; c++) {
			double complex dot = 0, *xc = x + c * n;
			for (int i = 0; i < n; i++)
				dot += conj(u[i]) * xc[i];
			for (int i = 0; i < n; i++)
				xc[i] -= 2.0 * u[i] * dot;
		}
	}
}

static double complex *known_spectrum(int n, const double *lambda, double complex *dirs, int r)
{
	srand(11);
	for (int t = 0; t < r; t++) {
		double norm = 0;
		for (int i = 0; i < n; i++) {
			dirs[i + (long)t * n] = (rand() / (double)RAND_MAX - 0.5) + I * (rand() / (double)RAND_MAX - 0.5);
			norm += pow(cabs(dirs[i + (long)t * n]), 2);
		}
		for (int i = 0; i < n; i++)
			dirs[i + (long)t * n] /= sqrt(norm);
	}
	double complex *g = calloc((size_t)n * n, sizeof *g);
	for (int j = 0; j < n; j++)
		g[j + (long)j * n] = lambda[j];
	apply_reflectors(n, r, dirs, g, n, 0); /* H D */
	for (int j = 0; j < n; j++) /* (H D) H^H = (H (H D)^H)^H, D real */
		for (int i = 0; i < j; i++) {
			double complex t = g[i + (long)j * n];
			g[i + (long)j * n] = conj(g[j + (long)i * n]);
			g[j + (long)i * n] = conj(t);
		}
	for (int i = 0; i < n; i++)
		g[i + (long)i * n] = conj(g[i + (long)i * n]);
	apply_reflectors(n, r, dirs, g, n, 0);
	for (int j = 0; j < n; j++)
		for (int i = 0; i < j; i++) {
			double complex t = g[i + (long)j * n];
			g[i + (long)j * n] = conj(g[j + (long)i * n]);
			g[j + (long)i * n] = conj(t);
		}
	for (int i = 0; i < n; i++)
		g[i + (long)i * n] = creal(g[i + (long)i * n]);
	return g;
}

/* |P_true - P_V|_F for the m kept columns V against the true eigenvectors H e_0 .. H e_{m-1}:
 * m + m - 2 |U^H V|_F^2, U^H V = rows 0..m-1 of H^H V. */
static double projector_error(int n, int m, int r, const double complex *dirs, const double complex *v)
{
	double complex *x = malloc(sizeof *x * (size_t)n * m);
	memcpy(x, v, sizeof *x * (size_t)n * m);
	apply_reflectors(n, r, dirs, x, m, 1);
	double overlap = 0;
	for (int c = 0; c < m; c++)
		for (int i = 0; i < m; i++)
			overlap += pow(cabs(x[i + (long)c * n]), 2);
	free(x);
	return sqrt(fmax(0, 2.0 * m - 2.0 * overlap));
}

/* One case: the kept count equals the number of lambda >= rel_min lambda_0, the kept eigenvalues
 * match to 1e-9 relative, the subspace to |dP|_F < 1e-6, and the columns are orthonormal. */
static void check_signal(const char *name, int n, const double *lambda, double rel_min)
{
	int r = 4, m = 0, n_values = 0, m_true = 0;
	double complex *dirs = malloc(sizeof *dirs * (size_t)n * r), *g = known_spectrum(n, lambda, dirs, r);
	double *w = malloc(sizeof *w * n);
	while (m_true < n && lambda[m_true] >= rel_min * lambda[0])
		m_true++;
	assert_int_equal(r5_herm_eig_signal(n, g, w, rel_min, &m, &n_values, NULL), R5_OK);
	double ew = 0, ortho = 0;
	for (int j = 0; j < m && j < m_true; j++)
		ew = fmax(ew, fabs(w[j] - lambda[j]) / lambda[j]);
	for (int a = 0; a < m; a++)
		for (int b = 0; b <= a; b++) {
			double complex dot = 0;
			for (int i = 0; i < n; i++)
				dot += conj(g[i + (long)b * n]) * g[i + (long)a * n];
			ortho = fmax(ortho, cabs(dot - (a == b ? 1.0 : 0.0)));
		}
	double dp = projector_error(n, m, r, dirs, g);
	print_message("herm_eig_signal %s: n = %d, kept %d (true %d), %d values, eigenvalues %.2g, |dP|_F %.2g, "
		      "orthonormality %.2g\n", name, n, m, m_true, n_values, ew, dp, ortho);
	assert_int_equal(m, m_true);
	assert_true(n_values >= m && n_values <= n);
	for (int j = n_values; j < n; j++)
		assert_true(w[j] == 0.0);
	assert_true(ew < 1e-9);
	assert_true(dp < 1e-6);
	assert_true(ortho < 1e-12);
	free(dirs);
	free(g);
	free(w);
}

/* ESPIRiT's size (6^3 kernel x 8 coils) with a decaying spectrum over a noise floor, like the
 * vessel-wall Gram matrix (kept ~ 20 %, the rest within a decade below the threshold). */
static void test_herm_eig_signal_decaying(void **state)
{
	(void)state;
	int n = R5_TEST_LIGHT ? 640 : 1728; /* 1728 alone took > 7 min under ASan on 2 cores */
	double scale = n / 1728.0; /* the same spectrum's shape: kept ~ 20 % */
	double *lambda = malloc(sizeof *lambda * n);
	for (int j = 0; j < n; j++)
		lambda[j] = exp(-j / (40.0 * scale)) + 4e-5 * exp(-j / (1000.0 * scale));
	check_signal("decaying", n, lambda, 4e-4);
	free(lambda);
}

/* Clusters of 6 equal eigenvalues (a threshold between clusters) and a rank-deficient matrix
 * (exact zeros beyond rank 90: the Cholesky QR meets dependent columns). */
static void test_herm_eig_signal_clustered_rank_deficient(void **state)
{
	(void)state;
	int n = 600;
	double *lambda = malloc(sizeof *lambda * n);
	for (int j = 0; j < n; j++)
		lambda[j] = pow(0.7, j / 6) + 1e-6;
	check_signal("clustered", n, lambda, 0.85 * pow(0.7, 10));
	for (int j = 0; j < n; j++)
		lambda[j] = j < 90 ? exp(-j / 15.0) : 0.0;
	check_signal("rank-deficient", n, lambda, 1e-3);
	free(lambda);
}

/* Against the dense path on a random Gram matrix B B^H (n = 450, the iterative side; n = 200, the
 * dense fallback, bit for bit): same kept count, eigenvalues to 1e-9, subspaces to 1e-6. */
static void test_herm_eig_signal_vs_dense(void **state)
{
	(void)state;
	int sizes[2] = {450, 200};
	for (int t = 0; t < 2; t++) {
		int n = sizes[t], rank = n / 2, m1 = 0, m2 = 0, n_values = 0;
		double complex *b = malloc(sizeof *b * (size_t)n * rank), *a1 = malloc(sizeof *a1 * (size_t)n * n),
			       *a2 = malloc(sizeof *a2 * (size_t)n * n);
		double *w1 = malloc(sizeof *w1 * n), *w2 = malloc(sizeof *w2 * n);
		srand(17);
		for (long i = 0; i < (long)n * rank; i++)
			b[i] = ((rand() / (double)RAND_MAX - 0.5) + I * (rand() / (double)RAND_MAX - 0.5)) * exp(-(i / n) / 12.0);
		for (int j = 0; j < n; j++)
			for (int i = 0; i < n; i++) {
				double complex sum = 0;
				for (int k = 0; k < rank; k++)
					sum += b[i + (long)k * n] * conj(b[j + (long)k * n]);
				a1[i + (long)j * n] = a2[i + (long)j * n] = sum;
			}
		assert_int_equal(r5_herm_eig_top(n, a1, w1, 1e-3, &m1, NULL), R5_OK);
		assert_int_equal(r5_herm_eig_signal(n, a2, w2, 1e-3, &m2, &n_values, NULL), R5_OK);
		double ew = 0, overlap = 0;
		for (int j = 0; j < m1 && j < m2; j++)
			ew = fmax(ew, fabs(w1[j] - w2[j]) / w1[j]);
		for (int c1 = 0; c1 < m1; c1++)
			for (int c2 = 0; c2 < m2; c2++) {
				double complex dot = 0;
				for (int i = 0; i < n; i++)
					dot += conj(a1[i + (long)c1 * n]) * a2[i + (long)c2 * n];
				overlap += pow(cabs(dot), 2);
			}
		double dp = sqrt(fmax(0, m1 + m2 - 2 * overlap));
		print_message("herm_eig_signal vs dense: n = %d, kept %d / %d, %d values, eigenvalues %.2g, |dP|_F %.2g\n", n,
			      m2, m1, n_values, ew, dp);
		assert_int_equal(m1, m2);
		assert_true(m1 > 10 && m1 < rank);
		assert_true(ew < 1e-9);
		assert_true(dp < 1e-6);
		if (n < R5_HERM_EIG_SUBSPACE_MIN) {
			assert_int_equal(n_values, n);
			assert_memory_equal(w1, w2, sizeof *w1 * n);
		} else {
			assert_true(n_values < n);
		}
		free(b);
		free(a1);
		free(a2);
		free(w1);
		free(w2);
	}
}

/* Fully sampled k-space of the synthetic coil images, cropped to a centred ACS block. */
static r5_array *make_acs(const r5_array *coil_images, long calib)
{
	r5_array *k = NULL, *acs = NULL;
	assert_int_equal(r5_array_to_work(ctx, coil_images, &k), R5_OK);
	assert_int_equal(r5_fft(ctx, 7, k, k), R5_OK);
	long dims[R5_DIMS];
	r5_dims_copy(dims, k->dims);
	for (int d = 0; d < 3; d++)
		if (dims[d] > 1)
			dims[d] = calib;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &acs), R5_OK);
	assert_int_equal(r5_zresize_centered(ctx, acs, k), R5_OK);
	r5_array_free(k);
	return acs;
}

/* Map set 0 against the true sensitivities over the pixels where inside[p]: per pixel, the
 * true vector normalised, the map's free phase aligned to it (the map itself is unit norm
 * where kept, zero where cropped), error = |map e^{i phi} - s / |s||; RMS and worst. */
static void map_error(const r5_array *maps, const float complex *truth, const unsigned char *inside, long npix,
		      long coils, double *rms, double *worst)
{
	double sum = 0, count = 0;
	*worst = 0;
	for (long p = 0; p < npix; p++) {
		if (!inside[p])
			continue;
		double complex dot = 0;
		double norm = 0;
		for (long c = 0; c < coils; c++) {
			dot += conj((double complex)maps->data[p + npix * c]) * truth[p + npix * c];
			norm += pow(cabsf(truth[p + npix * c]), 2);
		}
		double complex align = cabs(dot) > 0 ? dot / cabs(dot) : 1;
		double e = 0;
		for (long c = 0; c < coils; c++)
			e += pow(cabs(maps->data[p + npix * c] * align - truth[p + npix * c] / sqrt(norm)), 2);
		sum += e, count += 1;
		*worst = fmax(*worst, sqrt(e));
	}
	*rms = sqrt(sum / count);
}

/* Inside the object (|object| >= 0.5): the projection onto the span of the first n_maps maps
 * reproduces the coil images; also the share of the object where eigenvalue n_maps is > 0.8. */
static void check_projection(long n, long nz, long coils, double support, int n_maps, double *proj_error,
			     double *eig_share, double *map_rms)
{
	r5_array *coil_images, *maps_true, *object, *maps = NULL, *eig = NULL;
	synth_make_support(n, nz, coils, support, &coil_images, &maps_true, &object);
	r5_array *acs = make_acs(coil_images, 24);
	long img[3] = {n, n, nz};
	r5_espirit_conf conf = r5_espirit_defaults;
	conf.n_maps = n_maps;
	if (nz > 1 && R5_TEST_LIGHT)
		conf.kernel = 4; /* 4^3 x coils columns: the 6^3 x 4 = 864-wide eigensolve took 30 s under ASan */
	assert_int_equal(r5_espirit_maps(ctx, &conf, acs, img, &maps, &eig), R5_OK);
	long npix = n * n * nz;
	double err = 0, ref = 0, inside = 0, inside_eig = 0;
	for (long p = 0; p < npix; p++) {
		if (cabsf(object->data[p]) < 0.5f)
			continue;
		double complex proj[64] = {0};
		for (int m = 0; m < n_maps; m++) {
			const float complex *map = maps->data + p + npix * coils * m;
			double complex dot = 0;
			for (long c = 0; c < coils; c++)
				dot += conj(map[npix * c]) * coil_images->data[p + npix * c];
			for (long c = 0; c < coils; c++)
				proj[c] += map[npix * c] * dot;
		}
		for (long c = 0; c < coils; c++) {
			err += pow(cabs(proj[c] - coil_images->data[p + npix * c]), 2);
			ref += pow(cabsf(coil_images->data[p + npix * c]), 2);
		}
		inside += 1;
		inside_eig += crealf(eig->data[p + npix * (n_maps - 1)]) > 0.8f;
	}
	*proj_error = sqrt(err / ref);
	*eig_share = inside_eig / inside;
	unsigned char *in_object = malloc((size_t)npix);
	for (long p = 0; p < npix; p++)
		in_object[p] = cabsf(object->data[p]) >= 0.5f;
	double map_worst = 0;
	map_error(maps, maps_true->data, in_object, npix, coils, map_rms, &map_worst);
	free(in_object);
	print_message("espirit %ldx%ldx%ld %ld coils, %s FOV, %d map%s: projection error %.4g, eigenvalue %d > 0.8 on "
		      "%.1f%% of the object; map 1 vs the true maps: rms %.4g, worst %.4g\n",
		      n, n, nz, coils, support > SYNTH_SUPPORT_IN_FOV ? "object overfills the" : "object inside the",
		      n_maps, n_maps > 1 ? "s" : "", *proj_error, n_maps, 100 * *eig_share, *map_rms, map_worst);
	r5_array_free(coil_images);
	r5_array_free(maps_true);
	r5_array_free(object);
	r5_array_free(maps);
	r5_array_free(eig);
	r5_array_free(acs);
}

/* Bounds about 1.3x the values measured (in the comments). */
static void test_maps_2d(void **state)
{
	(void)state;
	double proj_error, eig_share, map_rms;
	check_projection(64, 1, 8, SYNTH_SUPPORT_IN_FOV, 1, &proj_error, &eig_share, &map_rms);
	assert_true(proj_error < 0.0049); /* 0.0037 */
	assert_true(eig_share > 0.999);   /* 1.0 */
	assert_true(map_rms < 0.005);     /* 0.00383 vs the true maps */
	check_projection(64, 1, 8, SYNTH_SUPPORT_IN_FOV, 2, &proj_error, &eig_share, &map_rms);
	assert_true(proj_error < 0.0049); /* 0.0037: the second map is cropped away */
	assert_true(eig_share == 0.0);    /* 0.0 */
}

static void test_maps_3d(void **state)
{
	(void)state;
	double proj_error, eig_share, map_rms;
	check_projection(32, 32, 4, SYNTH_SUPPORT_IN_FOV, 1, &proj_error, &eig_share, &map_rms);
	assert_true(proj_error < (R5_TEST_LIGHT ? 0.0092 : 0.005)); /* 0.0038 (kernel 4, light: 0.00707) */
	assert_true(eig_share > 0.999);  /* 1.0 */
	assert_true(map_rms < (R5_TEST_LIGHT ? 0.0095 : 0.0051)); /* 0.00392 vs the true maps (light: 0.00725) */
}

/* The object cut by the FOV edges (test_sense_synth.h): near the wrap boundary two
 * sensitivities share a pixel, one map misses them and the second eigenvalue is close to 1 on
 * part of the object; two maps reproduce the coil images. */
static void test_maps_object_overfills_fov(void **state)
{
	(void)state;
	double proj_1map, proj_2maps, eig_share, map_rms;
	check_projection(64, 1, 8, SYNTH_SUPPORT_OVERFILLS_FOV, 1, &proj_1map, &eig_share, &map_rms);
	check_projection(64, 1, 8, SYNTH_SUPPORT_OVERFILLS_FOV, 2, &proj_2maps, &eig_share, &map_rms);
	assert_true(proj_1map > 0.047);  /* 0.0616 */
	assert_true(map_rms > 0.047);     /* 0.0622: map 1 alone is not the true maps here */
	assert_true(proj_2maps < 0.0056); /* 0.0043 */
	assert_true(eig_share > 0.30 && eig_share < 0.34); /* 0.321 */
}

/* The analytic Shepp-Logan phantom (phantoms/): fully sampled noise-free k-space from the closed
 * form (no inverse crime), its 24-wide centre as ACS, and the coil model's sensitivities at the
 * voxel centres as the truth, compared over the object (ground truth >= 0.1: the ventricles'
 * signal voids are left out, ESPIRiT has no data there). */
static void check_phantom(int three_d, int n, int coils, int calib, double *map_rms, double *map_worst)
{
	struct r5_phantom_params p = three_d ? r5_phantom_defaults_3d : r5_phantom_defaults_2d;
	p.matrix[0] = p.matrix[1] = n;
	p.matrix[2] = three_d ? n : 1;
	p.n_coils = coils;
	p.readout_oversampling = 1;
	r5_shape_set object;
	r5_coil_model model;
	double period[3];
	assert_int_equal(r5_shepp_logan_make(three_d, p.fov_mm, &object), R5_OK);
	r5_spectrum_periods(&p, period);
	assert_int_equal(r5_coils_make(coils, three_d, p.fov_mm, period, &object, &model), R5_OK);
	long nz = p.matrix[2], npix = (long)n * n * nz, dims[R5_DIMS];
	float *truth_img = malloc(sizeof *truth_img * npix);
	float complex *truth = calloc((size_t)(npix * coils), sizeof *truth);
	unsigned char *inside = calloc((size_t)npix, 1);
	assert_true(truth_img && truth && inside);
	r5_dims_ones(dims);
	dims[0] = dims[1] = n, dims[2] = nz, dims[3] = coils;
	r5_array *kspace = NULL, *acs = NULL, *maps = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &kspace), R5_OK);
	assert_int_equal(r5_phantom_kspace(&p, &object, &model, kspace->data), R5_OK);
	dims[0] = dims[1] = calib, dims[2] = three_d ? calib : 1;
	assert_int_equal(r5_array_alloc_host(dims, &acs), R5_OK);
	assert_int_equal(r5_zresize_centered(ctx, acs, kspace), R5_OK);
	long img[3] = {n, n, nz};
	r5_espirit_conf conf = r5_espirit_defaults;
	if (three_d && R5_TEST_LIGHT)
		conf.kernel = 4; /* as in check_projection */
	assert_int_equal(r5_espirit_maps(ctx, &conf, acs, img, &maps, NULL), R5_OK);
	assert_int_equal(r5_phantom_ground_truth(&p, &object, truth_img), R5_OK);
	double d[3] = {p.fov_mm[0] / n, p.fov_mm[1] / n, three_d ? p.fov_mm[2] / n : 0};
	long count = 0;
	for (long q = 0; q < npix; q++) {
		long i = q % n, j = (q / n) % n, k = q / ((long)n * n);
		double r[3] = {(i - n / 2) * d[0], (j - n / 2) * d[1], three_d ? (k - nz / 2) * d[2] : 0};
		for (int c = 0; c < coils; c++)
			truth[q + npix * c] = (float complex)r5_coils_value(&model, c, r);
		inside[q] = truth_img[q] >= 0.1f;
		count += inside[q];
	}
	map_error(maps, truth, inside, npix, coils, map_rms, map_worst);
	print_message("espirit vs true maps, Shepp-Logan %s %d^%d, %d coils, ACS %d: rms %.4g, worst %.4g over %ld "
		      "voxels\n", three_d ? "3D" : "2D", n, three_d ? 3 : 2, coils, calib, *map_rms, *map_worst, count);
	free(truth_img), free(truth), free(inside);
	r5_array_free(kspace), r5_array_free(acs), r5_array_free(maps);
	r5_coils_free(&model);
}

static void test_maps_vs_true_phantom(void **state)
{
	(void)state;
	double rms, worst;
	check_phantom(0, 128, 8, 24, &rms, &worst);
	assert_true(rms < 0.0089);  /* measured 0.00682 */
	assert_true(worst < 0.066); /* 0.0503 (at the skull's edge) */
	check_phantom(1, 32, 4, 16, &rms, &worst);
	assert_true(rms < (R5_TEST_LIGHT ? 0.0114 : 0.0075)); /* 0.00575 (kernel 4, light: 0.00877) */
	assert_true(worst < (R5_TEST_LIGHT ? 0.076 : 0.047)); /* 0.0361 (light: 0.0585) */
}

static void test_bad_input(void **state)
{
	(void)state;
	r5_array *coil_images, *maps_true, *object, *maps = NULL;
	synth_make(32, 1, 4, &coil_images, &maps_true, &object);
	r5_array *acs = make_acs(coil_images, 4);
	long img[3] = {32, 32, 1};
	assert_int_equal(r5_espirit_maps(ctx, NULL, acs, img, &maps, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "smaller than the kernel"));
	assert_null(maps);
	r5_espirit_conf conf = r5_espirit_defaults;
	conf.n_maps = 3;
	assert_int_equal(r5_espirit_maps(ctx, &conf, acs, img, &maps, NULL), R5_EINVAL);
	r5_array_free(acs);
	r5_array *zero = NULL;
	long zd[R5_DIMS];
	r5_dims_ones(zd);
	zd[0] = zd[1] = 24;
	zd[3] = 4;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, zd, &zero), R5_OK);
	assert_int_equal(r5_espirit_maps(ctx, NULL, zero, img, &maps, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "no signal"));
	r5_array_free(zero);
	r5_array_free(coil_images);
	r5_array_free(maps_true);
	r5_array_free(object);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_herm_eig),
		cmocka_unit_test(test_herm_eig_top),
		cmocka_unit_test(test_herm_eig_signal_decaying),
		cmocka_unit_test(test_herm_eig_signal_clustered_rank_deficient),
		cmocka_unit_test(test_herm_eig_signal_vs_dense),
		cmocka_unit_test(test_maps_2d),
		cmocka_unit_test(test_maps_3d),
		cmocka_unit_test(test_maps_object_overfills_fov),
		cmocka_unit_test(test_maps_vs_true_phantom),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
