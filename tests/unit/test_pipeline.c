/* The pipeline layer: acquisitions through the scan builder into the Cartesian pipeline —
 * zero-filled partial Fourier placement, two slices x two contrasts, cropping the phase-
 * oversampled FOV to the recon matrix — against a reference computed step by step; adaptive
 * coil combination against rss on a one-pattern object; parameters; cancellation and
 * deadlines through the progress hook. */
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

#include "recon/calib/combine.h"
#include "recon/core/fft.h"
#include "recon/core/hd.h"
#include "recon/pipeline/pipeline.h"

enum { NX = 32, NY_ENC = 48, NY_REC = 32, K1_MAX = 35, K1_CENTER = 12, COILS = 4, SLICES = 2, CONTRASTS = 2 };

static char *header_xml(void)
{
	char *xml = malloc(4096);
	snprintf(xml, 4096,
		 "<?xml version=\"1.0\"?><ismrmrdHeader xmlns=\"http://www.ismrm.org/ISMRMRD\">"
		 "<acquisitionSystemInformation><receiverChannels>%d</receiverChannels></acquisitionSystemInformation>"
		 "<encoding><encodedSpace><matrixSize><x>%d</x><y>%d</y><z>1</z></matrixSize>"
		 "<fieldOfView_mm><x>160</x><y>240</y><z>5</z></fieldOfView_mm></encodedSpace>"
		 "<reconSpace><matrixSize><x>%d</x><y>%d</y><z>1</z></matrixSize>"
		 "<fieldOfView_mm><x>160</x><y>160</y><z>5</z></fieldOfView_mm></reconSpace>"
		 "<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>%d</maximum><center>%d</center>"
		 "</kspace_encoding_step_1><slice><minimum>0</minimum><maximum>%d</maximum><center>0</center></slice>"
		 "<contrast><minimum>0</minimum><maximum>%d</maximum><center>0</center></contrast></encodingLimits>"
		 "<trajectory>cartesian</trajectory></encoding></ismrmrdHeader>",
		 COILS, NX, NY_ENC, NX, NY_REC, K1_MAX, K1_CENTER, SLICES - 1, CONTRASTS - 1);
	return xml;
}

static float frand(void) { return (float)rand() / RAND_MAX - 0.5f; }

/* Every acquired line (k1 = 0..K1_MAX) of every slice and contrast, random samples. */
static r5_scan *build_scan(float complex **lines_out)
{
	char *xml = header_xml();
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(xml, strlen(xml), NULL, &b), R5_OK);
	free(xml);
	long n_lines = (K1_MAX + 1) * SLICES * CONTRASTS;
	float complex *lines = malloc(sizeof *lines * n_lines * COILS * NX);
	for (long i = 0; i < n_lines * COILS * NX; i++)
		lines[i] = frand() + I * frand();
	long l = 0;
	for (int s = 0; s < SLICES; s++)
		for (int c = 0; c < CONTRASTS; c++)
			for (int k1 = 0; k1 <= K1_MAX; k1++, l++) {
				ISMRMRD_AcquisitionHeader h;
				ismrmrd_init_acquisition_header(&h);
				h.number_of_samples = NX;
				h.active_channels = h.available_channels = COILS;
				h.center_sample = NX / 2;
				h.sample_time_us = 5;
				h.read_dir[0] = h.phase_dir[1] = h.slice_dir[2] = 1;
				h.position[2] = (float)(10 * s);
				h.idx.kspace_encode_step_1 = (uint16_t)k1;
				h.idx.slice = (uint16_t)s;
				h.idx.contrast = (uint16_t)c;
				h.scan_counter = (uint32_t)l;
				assert_int_equal(r5_scan_builder_add(b, &h, lines + l * COILS * NX, NULL), R5_OK);
			}
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	*lines_out = lines;
	return scan;
}

static void test_partial_fourier_slices_contrasts(void **state)
{
	(void)state;
	float complex *lines = NULL;
	r5_scan *scan = build_scan(&lines);
	const r5_array *k = scan->kspace;
	assert_int_equal(k->dims[R5_DIM_Y], NY_ENC);
	assert_int_equal(k->dims[R5_DIM_SLICE], SLICES);
	assert_int_equal(k->dims[R5_DIM_TE], CONTRASTS);
	/* line k1 lands at row k1 + NY/2 - center; the rows before stay zero (zero-filled PF) */
	int shift = NY_ENC / 2 - K1_CENTER;
	for (int s = 0; s < SLICES; s++)
		for (int c = 0; c < CONTRASTS; c++)
			for (int row = 0; row < NY_ENC; row++)
				for (int coil = 0; coil < COILS; coil++) {
					const float complex *got = k->data + row * k->strides[1] + coil * k->strides[3] +
								   c * k->strides[R5_DIM_TE] + s * k->strides[R5_DIM_SLICE];
					int k1 = row - shift;
					for (int x = 0; x < NX; x++) {
						float complex want = 0;
						if (k1 >= 0 && k1 <= K1_MAX)
							want = lines[(((long)s * CONTRASTS + c) * (K1_MAX + 1) + k1) * COILS * NX +
								     coil * NX + x];
						assert_true(got[x] == want);
					}
				}
	/* reference: inverse FFT, rss, crop the 240 mm phase FOV to the 160 mm recon FOV */
	r5_ctx *ctx = NULL;
	assert_int_equal(r5_ctx_create(&ctx, "cpu", 0), R5_OK);
	r5_array *img = NULL, *rss = NULL, *ref = NULL;
	assert_int_equal(r5_array_alloc_host(k->dims, &img), R5_OK);
	assert_int_equal(r5_ifft(ctx, R5_FLAG(0) | R5_FLAG(1), img, k), R5_OK);
	long d[R5_DIMS];
	r5_dims_copy(d, k->dims);
	d[R5_DIM_COIL] = 1;
	assert_int_equal(r5_array_alloc_host(d, &rss), R5_OK);
	assert_int_equal(r5_zrss(ctx, rss, img, R5_DIM_COIL), R5_OK);
	d[R5_DIM_Y] = NY_REC;
	assert_int_equal(r5_array_alloc_host(d, &ref), R5_OK);
	assert_int_equal(r5_zresize_centered(ctx, ref, rss), R5_OK);

	r5_recon_params p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "pipeline", "cartesian"), R5_OK);
	r5_image_set *set = NULL;
	assert_int_equal(r5_recon_run(ctx, scan, &p, NULL, &set), R5_OK);
	assert_true(r5_dims_equal(set->images->dims, ref->dims));
	assert_int_equal(set->n_slices, SLICES);
	assert_true(fabsf(set->geometry[1].position[2] - 10) < 1e-6);
	assert_string_equal(set->pipeline, "cartesian");
	double num = 0, den = 0;
	for (long i = 0; i < r5_array_size(ref); i++) {
		num += pow(cabsf(set->images->data[i] - ref->data[i]), 2);
		den += pow(cabsf(ref->data[i]), 2);
	}
	assert_true(sqrt(num / den) < 1e-6);
	assert_true(set->n_stages >= 2);
	r5_image_set_free(set);
	r5_array_free(img);
	r5_array_free(rss);
	r5_array_free(ref);
	r5_ctx_destroy(ctx);
	r5_scan_free(scan);
	free(lines);
}

/* Coil images s_c(x) m(x) with smooth s: |adaptive| equals rss = |m| ||s(x)|| closely. */
static void test_adaptive_matches_rss_on_one_pattern(void **state)
{
	(void)state;
	enum { N = 64, C = 6 };
	long dims[R5_DIMS], out_dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = dims[1] = N;
	dims[3] = C;
	r5_dims_copy(out_dims, dims);
	out_dims[3] = 1;
	r5_ctx *ctx = NULL;
	r5_array *coils = NULL, *rss = NULL, *ada = NULL;
	assert_int_equal(r5_ctx_create(&ctx, "cpu", 0), R5_OK);
	assert_int_equal(r5_array_alloc_host(dims, &coils), R5_OK);
	assert_int_equal(r5_array_alloc_host(out_dims, &rss), R5_OK);
	assert_int_equal(r5_array_alloc_host(out_dims, &ada), R5_OK);
	for (int c = 0; c < C; c++)
		for (int y = 0; y < N; y++)
			for (int x = 0; x < N; x++) {
				double ang = 2 * R5_PI * c / C, cx = N / 2 + 40 * cos(ang), cy = N / 2 + 40 * sin(ang);
				double r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
				double complex s = exp(-r2 / (2 * 50.0 * 50.0)) * cexp(I * (0.3 * c + 0.01 * x));
				double m = ((x - N / 2) * (x - N / 2) + (y - N / 2) * (y - N / 2) < 25 * 25) ? 1.0 + 0.5 * (x > N / 2) : 0.05;
				coils->data[(long)c * N * N + y * N + x] = (float complex)(s * m);
			}
	assert_int_equal(r5_coil_combine(ctx, "rss", coils, rss), R5_OK);
	assert_int_equal(r5_coil_combine(ctx, "adaptive", coils, ada), R5_OK);
	double num = 0, den = 0;
	for (long i = 0; i < N * N; i++) {
		num += pow(cabsf(ada->data[i]) - crealf(rss->data[i]), 2);
		den += pow(crealf(rss->data[i]), 2);
	}
	assert_true(sqrt(num / den) < 0.02);
	assert_int_equal(r5_coil_combine(ctx, "median", coils, ada), R5_EINVAL);
	r5_array_free(coils);
	r5_array_free(rss);
	r5_array_free(ada);
	r5_ctx_destroy(ctx);
}

static void test_params(void **state)
{
	(void)state;
	r5_recon_params p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "iters", "12"), R5_OK);
	assert_int_equal(p.iters, 12);
	assert_int_equal(r5_recon_params_set(&p, "coils-virtual", "8"), R5_OK);
	assert_int_equal(p.n_virtual_coils, 8);
	assert_int_equal(r5_recon_params_set(&p, "iterz", "12"), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "iterz"));
	assert_int_equal(r5_recon_params_set(&p, "maps", "3"), R5_EINVAL);
	assert_int_equal(r5_recon_params_set(&p, "lambda", "abc"), R5_EINVAL);
	assert_int_equal(r5_recon_params_set(&p, "iters", "2.5"), R5_EINVAL);
	assert_int_equal(r5_recon_params_set(&p, "combine", "sos"), R5_EINVAL);
	char text[512];
	r5_recon_params_format(&p, text, sizeof text);
	assert_non_null(strstr(text, "iters=12"));
	assert_non_null(strstr(text, "coils_virtual=8"));
}

static int stop_at(void *user, const char *stage, double fraction, r5_status *stop)
{
	const char *when = user;
	if (!strcmp(stage, when)) {
		*stop = !strcmp(when, "combine") ? R5_ETIMEDOUT : R5_ECANCELLED;
		return 1;
	}
	return 0;
}

static void test_cancel_and_deadline(void **state)
{
	(void)state;
	float complex *lines = NULL;
	r5_scan *scan = build_scan(&lines);
	r5_ctx *ctx = NULL;
	assert_int_equal(r5_ctx_create(&ctx, "cpu", 0), R5_OK);
	r5_image_set *set = NULL;
	r5_progress cancel = {stop_at, (void *)"fft"}, deadline = {stop_at, (void *)"combine"};
	assert_int_equal(r5_recon_run(ctx, scan, NULL, &cancel, &set), R5_ECANCELLED);
	assert_null(set);
	assert_non_null(strstr(r5_last_error(), "fft"));
	assert_int_equal(r5_recon_run(ctx, scan, NULL, &deadline, &set), R5_ETIMEDOUT);
	assert_non_null(strstr(r5_last_error(), "deadline"));
	/* and the same context still works afterwards */
	assert_int_equal(r5_recon_run(ctx, scan, NULL, NULL, &set), R5_OK);
	r5_image_set_free(set);
	r5_ctx_destroy(ctx);
	r5_scan_free(scan);
	free(lines);
}

int main(void)
{
	srand(7);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partial_fourier_slices_contrasts),
		cmocka_unit_test(test_adaptive_matches_rss_on_one_pattern),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_cancel_and_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
