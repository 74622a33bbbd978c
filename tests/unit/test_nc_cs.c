/* Compressed sensing through the NUFFT (recon/pipeline/nc_cs.h, the non-Cartesian `cs` pipeline):
 * on a numerical radial phantom (48^2, four smooth coils, few golden-angle spokes, complex
 * Gaussian noise; the phantom of test_nc_sense.c) the CS solution with the true maps against
 * the truth, below nc CG-SENSE's NRMSE at the same data; the whole pipeline through r5_recon_run
 * (ISMRMRD spokes, NLINV maps) against `sense` on the same scan; the noise estimate; bad input. */
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

#include "recon/io/scan.h"
#include "recon/linop/nufft.h"
#include "recon/pipeline/nc_cs.h"
#include "recon/pipeline/nc_sense.h"
#include "recon/pipeline/memory_estimate.h"
#include "recon/pipeline/pipeline.h"

#include "cpu_fixture.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define N 48
#define COILS 4
#define SPOKES 16
#define READ 96   /* 2x oversampled spokes */
#define NOISE 0.004 /* noise std per sample component pair (complex std), vs peak |y| ~ 0.5 */

#include "nc_phantom.h"

/* golden-angle spoke s: k = (i - READ/2) N / READ along s * 111.25 degrees */
static float *radial(int spokes)
{
	float *k = malloc(sizeof(float) * 3 * READ * (size_t)spokes);
	assert_non_null(k);
	for (int s = 0; s < spokes; s++)
		for (int i = 0; i < READ; i++) {
			double r = (i - READ / 2) * (double)N / READ, a = s * 111.246117975 * M_PI / 180.0;
			float *p = k + 3 * (s * READ + i);
			p[0] = (float)(r * cos(a)), p[1] = (float)(r * sin(a)), p[2] = 0.0f;
		}
	return k;
}

/* deterministic complex Gaussian noise of total std sigma (Box-Muller on an LCG) */
static void add_noise(r5_array *y, double sigma)
{
	unsigned long long state = 12345;
	for (long i = 0; i < r5_array_size(y); i++) {
		double u[2];
		for (int j = 0; j < 2; j++) {
			state = state * 6364136223846793005ULL + 1442695040888963407ULL;
			u[j] = ((double)(state >> 11) + 0.5) / 9007199254740992.0;
		}
		double r = sigma * sqrt(-log(u[0])), t = 2 * M_PI * u[1]; /* |n|^2 mean sigma^2 */
		y->data[i] += (float complex)(r * cos(t) + I * r * sin(t));
	}
}

static r5_array *simulate(const float *k, int spokes, const r5_array *truth, const r5_array *maps)
{
	long cd[R5_DIMS], sd[R5_DIMS];
	dims_of(cd, N, N, 1, COILS);
	dims_of(sd, 1, READ, spokes, COILS);
	r5_array *coils = host(cd), *y = host(sd);
	assert_int_equal(r5_zmul(ctx, coils, maps, truth, 0), R5_OK);
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, cd, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, (long)READ * spokes, k), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, plan, y, coils), R5_OK);
	r5_nufft_plan_destroy(plan);
	r5_array_free(coils);
	add_noise(y, NOISE);
	return y;
}

/* NRMSE of |x| scaled by the best real factor against |ref| over the whole image (the streaks
 * outside the object count): NLINV's image has its own scale and phase */
static double nrmse_mag(const r5_array *x, const r5_array *ref)
{
	double xr = 0, xx = 0;
	for (long i = 0; i < r5_array_size(ref); i++)
		{
			xr += cabsf(x->data[i]) * cabsf(ref->data[i]);
			xx += cabsf(x->data[i]) * cabsf(x->data[i]);
		}
	double a = xx > 0 ? xr / xx : 0, num = 0, den = 0;
	for (long i = 0; i < r5_array_size(ref); i++)
		{
			num += pow(a * cabsf(x->data[i]) - cabsf(ref->data[i]), 2);
			den += pow(cabsf(ref->data[i]), 2);
		}
	return sqrt(num / den);
}

static double nrmse(const r5_array *x, const r5_array *ref)
{
	double num = 0, den = 0;
	for (long i = 0; i < r5_array_size(ref); i++) {
		num += pow(cabs(x->data[i] - ref->data[i]), 2);
		den += pow(cabs(ref->data[i]), 2);
	}
	return sqrt(num / den);
}

/* the true maps, 16 spokes: CS (auto weight from the noise) against CG-SENSE (its defaults) */
static void test_phantom(void **state)
{
	(void)state;
	long id[R5_DIMS], img[R5_DIMS];
	dims_of(id, N, N, 1, COILS);
	dims_of(img, N, N, 1, 1);
	r5_array *truth = host(img), *maps = host(id), *x = host(img);
	phantom(truth, maps);
	float *k = radial(SPOKES);
	r5_array *y = simulate(k, SPOKES, truth, maps);
	long points = (long)READ * SPOKES;

	float sigma = r5_nc_noise_sigma(id, points, k, y);
	print_message("noise std: measured %.5f, true %.5f\n", (double)sigma, NOISE);
	assert_true(fabs(sigma - NOISE) < 0.25 * NOISE);

	r5_nc_sense_opts o = r5_nc_sense_defaults;
	assert_int_equal(r5_nc_sense_solve(ctx, id, points, k, y, maps, &o, NULL, x), R5_OK);
	double e_sense = nrmse(x, truth);

	r5_recon_params p = r5_recon_defaults;
	r5_nc_cs_info info;
	assert_int_equal(r5_zfill(ctx, x, 0.0f), R5_OK);
	assert_int_equal(r5_nc_cs_solve(ctx, &p, id, points, k, y, maps, -1.0f, NULL, x, &info), R5_OK);
	double e_l1 = nrmse(x, truth);
	assert_true(info.max_eig > 1.0); /* 16 spokes of 96 samples: far from a unitary encoding */
	assert_int_equal(r5_recon_params_set(&p, "reg", "tv"), R5_OK);
	assert_int_equal(r5_zfill(ctx, x, 0.0f), R5_OK);
	assert_int_equal(r5_nc_cs_solve(ctx, &p, id, points, k, y, maps, -1.0f, NULL, x, NULL), R5_OK);
	double e_tv = nrmse(x, truth);
	print_message("48^2, %d golden-angle spokes, noise %.3f, true maps: nc sense NRMSE %.4f, cs l1 %.4f, cs tv %.4f "
		      "(|E^H E| %.2f)\n", SPOKES, NOISE, e_sense, e_l1, e_tv, info.max_eig);
	assert_true(e_l1 < 0.8 * e_sense);
	assert_true(e_tv < 0.8 * e_sense);
	r5_array_free(y);
	r5_array_free(x);
	r5_array_free(maps);
	r5_array_free(truth);
	free(k);
}

static r5_scan *radial_scan(const r5_array *y, const float *k, int spokes)
{
	char xml[2048];
	snprintf(xml, sizeof xml,
		 "<?xml version=\"1.0\"?><ismrmrdHeader xmlns=\"http://www.ismrm.org/ISMRMRD\">"
		 "<acquisitionSystemInformation><receiverChannels>%d</receiverChannels></acquisitionSystemInformation>"
		 "<encoding><encodedSpace><matrixSize><x>%d</x><y>%d</y><z>1</z></matrixSize><fieldOfView_mm><x>200</x>"
		 "<y>200</y><z>5</z></fieldOfView_mm></encodedSpace><reconSpace><matrixSize><x>%d</x><y>%d</y><z>1</z>"
		 "</matrixSize><fieldOfView_mm><x>200</x><y>200</y><z>5</z></fieldOfView_mm></reconSpace>"
		 "<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>%d</maximum><center>0</center>"
		 "</kspace_encoding_step_1></encodingLimits><trajectory>radial</trajectory></encoding></ismrmrdHeader>",
		 COILS, N, N, N, N, spokes - 1);
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(xml, strlen(xml), NULL, &b), R5_OK);
	float traj[2 * READ];
	float complex data[COILS * READ];
	for (int s = 0; s < spokes; s++) {
		ISMRMRD_AcquisitionHeader h;
		ismrmrd_init_acquisition_header(&h);
		h.number_of_samples = READ;
		h.active_channels = h.available_channels = COILS;
		h.trajectory_dimensions = 2;
		h.center_sample = READ / 2;
		h.sample_time_us = 2.5f;
		h.idx.kspace_encode_step_1 = (uint16_t)s;
		h.scan_counter = (uint32_t)s;
		h.read_dir[0] = h.phase_dir[1] = h.slice_dir[2] = 1.0f;
		for (int i = 0; i < READ; i++) {
			traj[2 * i] = k[3 * (s * READ + i)], traj[2 * i + 1] = k[3 * (s * READ + i) + 1];
			for (int c = 0; c < COILS; c++)
				data[c * READ + i] = y->data[i + READ * (s + (long)spokes * c)];
		}
		assert_int_equal(r5_scan_builder_add(b, &h, data, traj), R5_OK);
	}
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	return scan;
}

static r5_image_set *run(r5_scan *scan, const char *pipeline, const char *key, const char *value)
{
	r5_recon_params p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "pipeline", pipeline), R5_OK);
	if (key)
		assert_int_equal(r5_recon_params_set(&p, key, value), R5_OK);
	r5_image_set *set = NULL;
	r5_status s = r5_recon_run(ctx, scan, &p, NULL, &set);
	if (s != R5_OK)
		print_message("%s: %s\n", pipeline, r5_last_error());
	assert_int_equal(s, R5_OK);
	assert_string_equal(set->pipeline, pipeline);
	return set;
}

/* the pipeline: ISMRMRD spokes, NLINV maps; cs against sense on the same scan and maps */
static void test_pipeline(void **state)
{
	(void)state;
	long id[R5_DIMS], img[R5_DIMS];
	dims_of(id, N, N, 1, COILS);
	dims_of(img, N, N, 1, 1);
	r5_array *truth = host(img), *maps = host(id);
	phantom(truth, maps);
	float *k = radial(SPOKES);
	r5_array *y = simulate(k, SPOKES, truth, maps);
	r5_scan *scan = radial_scan(y, k, SPOKES);
	r5_image_set *sense = run(scan, "sense", NULL, NULL), *cs = run(scan, "cs", NULL, NULL);
	assert_int_equal(cs->images->dims[0], N);
	assert_int_equal(cs->images->dims[1], N);
	assert_int_equal(cs->images->dims[10], 1);
	double e_sense = nrmse_mag(sense->images, truth), e_cs = nrmse_mag(cs->images, truth);
	print_message("pipelines, %d spokes, NLINV maps: sense magnitude NRMSE %.4f, cs (l1, auto) %.4f\n", SPOKES,
		      e_sense, e_cs);
	assert_true(e_cs < 0.85 * e_sense);
	assert_non_null(strstr(cs->parameters, "reg=l1"));
	r5_image_set_free(cs);
	/* frames as grid's: 2 frames of 8 spokes */
	r5_recon_params p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "pipeline", "cs"), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "frame_spokes", "8"), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "iters", "5"), R5_OK);
	assert_int_equal(r5_recon_run(ctx, scan, &p, NULL, &cs), R5_OK);
	assert_int_equal(cs->images->dims[10], 2);
	double bytes = 0;
	assert_int_equal(r5_recon_memory_estimate(scan, &p, &bytes), R5_OK);
	assert_true(bytes > (double)r5_array_size(scan->kspace) * 8);
	r5_image_set_free(cs);
	/* bad input: frames larger than the scan, an unknown wavelet, a key cs does not read */
	assert_int_equal(r5_recon_params_set(&p, "frame_spokes", "17"), R5_OK);
	cs = NULL;
	assert_int_equal(r5_recon_run(ctx, scan, &p, NULL, &cs), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	assert_non_null(strstr(r5_last_error(), "frame_spokes=17"));
	assert_null(cs);
	p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "pipeline", "cs"), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "dcf", "ramp"), R5_OK);
	assert_int_equal(r5_recon_run(ctx, scan, &p, NULL, &cs), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	assert_non_null(strstr(r5_last_error(), "does not apply to pipeline cs"));
	r5_image_set_free(sense);
	r5_scan_free(scan);
	r5_array_free(y);
	r5_array_free(maps);
	r5_array_free(truth);
	free(k);
}

static void test_errors(void **state)
{
	(void)state;
	long id[R5_DIMS], img[R5_DIMS], sd[R5_DIMS];
	dims_of(id, N, N, 1, COILS);
	dims_of(img, N, N, 1, 1);
	dims_of(sd, 1, READ, SPOKES - 1, COILS);
	r5_array *maps = host(id), *x = host(img), *short_y = host(sd);
	float *k = radial(SPOKES);
	long points = (long)READ * SPOKES;
	assert_int_equal(r5_nc_cs_solve(ctx, NULL, id, points, k, short_y, maps, -1.0f, NULL, x, NULL), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	dims_of(sd, 1, READ, SPOKES, COILS);
	r5_array *y = host(sd);
	for (long i = 0; i < r5_array_size(y); i++)
		y->data[i] = 1.0f;
	/* maps all zero: the encoding is zero */
	assert_int_equal(r5_nc_cs_solve(ctx, NULL, id, points, k, y, maps, -1.0f, NULL, x, NULL), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	for (long i = 0; i < r5_array_size(maps); i++)
		maps->data[i] = 0.5f;
	k[7] = 1e3f; /* outside [-N/2, N/2) */
	assert_int_equal(r5_nc_cs_solve(ctx, NULL, id, points, k, y, maps, -1.0f, NULL, x, NULL), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	free(k);
	k = radial(SPOKES);
	r5_recon_params p = r5_recon_defaults;
	snprintf(p.cs.wavelet, sizeof p.cs.wavelet, "%s", "bogus");
	assert_int_equal(r5_nc_cs_solve(ctx, &p, id, points, k, y, maps, -1.0f, NULL, x, NULL), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	r5_array_free(y);
	r5_array_free(short_y);
	r5_array_free(x);
	r5_array_free(maps);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phantom),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
