/* The dynamic phantom (phantoms/dynamic.h): the file holds one spoke per acquisition with its
 * trajectory (2D, cycles per FOV, golden angle between consecutive spokes), the truth per frame
 * (repetition = frame, the frames differ: motion and contrast), the frame timing in the header;
 * the k-space is consistent with the truth (a densely sampled static frame grids back to it);
 * continuous motion differs from per-frame motion; two runs agree bit for bit (one random stream
 * per spoke); bad parameters are refused naming the field. */
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

#include <ismrmrd/dataset.h>
#include <ismrmrd/ismrmrd.h>

#include "phantoms/dynamic.h"
#include "recon/core/status.h"
#include "recon/linop/traj.h"
#include "recon/pipeline/grid.h"
#include "recon/pipeline/quality.h"

#include "cpu_fixture.h"

#define PI 3.14159265358979323846

static struct r5_phantom_params small(void)
{
	struct r5_phantom_params p = r5_phantom_defaults_dynamic;
	p.matrix[0] = p.matrix[1] = 32;
	p.fov_mm[0] = p.fov_mm[1] = 64;
	p.n_coils = 4;
	p.n_frames = 4;
	p.frame_spokes = 5;
	p.n_noise_samples = 256;
	return p;
}

static double spoke_angle(const float *traj)
{
	/* sample 0 sits at radius -N/2: the spoke's direction (sin a, cos a) is minus its coordinates */
	return atan2(-traj[0], -traj[1]);
}

static void test_dynamic_file(void **state)
{
	(void)state;
	struct r5_phantom_params p = small();
	const char *path = "test_dynamic_phantom.h5";
	assert_int_equal(r5_phantom_write(&p, path, NULL), R5_OK);
	ISMRMRD_Dataset dset;
	assert_int_equal(ismrmrd_init_dataset(&dset, path, "/dataset"), ISMRMRD_NOERROR);
	assert_int_equal(ismrmrd_open_dataset(&dset, false), ISMRMRD_NOERROR);
	char *xml = ismrmrd_read_header(&dset);
	assert_non_null(strstr(xml, "<trajectory>radial</trajectory>"));
	assert_non_null(strstr(xml, "<name>frame_spokes</name><value>5</value>"));
	assert_non_null(strstr(xml, "<matrixSize><x>32</x><y>32</y><z>1</z></matrixSize>"));
	free(xml);
	long n = (long)ismrmrd_get_number_of_acquisitions(&dset), spokes = 0, n_read = 2 * 32;
	float *expect = malloc(sizeof *expect * 3 * (size_t)n_read);
	double previous = 0;
	for (long i = 0; i < n; i++) {
		ISMRMRD_Acquisition acq;
		ismrmrd_init_acquisition(&acq);
		assert_int_equal(ismrmrd_read_acquisition(&dset, (uint32_t)i, &acq), ISMRMRD_NOERROR);
		if (!ismrmrd_is_flag_set(acq.head.flags, ISMRMRD_ACQ_IS_NOISE_MEASUREMENT)) {
			assert_int_equal(acq.head.trajectory_dimensions, 2);
			assert_int_equal(acq.head.number_of_samples, n_read);
			assert_int_equal(acq.head.active_channels, 4);
			assert_int_equal(acq.head.idx.kspace_encode_step_1, spokes);
			r5_dynamic_trajectory(&p, spokes, 1, expect);
			for (long s = 0; s < n_read; s++)
				for (int d = 0; d < 2; d++) {
					float k = acq.traj[2 * s + d];
					assert_true(k >= -16.0f && k < 16.0f);
					assert_true(k == expect[3 * s + d]);
				}
			/* |k| of sample 0 is N/2 and sample N (the centre) is 0 */
			assert_true(fabs(hypot(acq.traj[0], acq.traj[1]) - 16.0) < 1e-4);
			assert_true(hypot(acq.traj[2 * 32], acq.traj[2 * 32 + 1]) < 1e-6);
			double angle = spoke_angle(acq.traj);
			if (spokes > 0) {
				double step = fmod(angle - previous + 4 * PI, 2 * PI);
				assert_true(fabs(step - R5_DYNAMIC_GOLDEN_ANGLE) < 1e-4);
			}
			previous = angle;
			spokes++;
		}
		ismrmrd_cleanup_acquisition(&acq);
	}
	assert_int_equal(spokes, 20);
	/* the same spokes as recon/linop/traj.h's golden angle (BART's `traj -r -G -c`) */
	float *all = malloc(sizeof *all * 3 * (size_t)(n_read * 20)), *golden = malloc(sizeof *golden * 3 * (size_t)(n_read * 20));
	r5_dynamic_trajectory(&p, 0, 20, all);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN, 0, n_read, 20, 0, 16.0, golden), R5_OK);
	for (long i = 0; i < 3 * n_read * 20; i++)
		assert_true(fabsf(all[i] - golden[i]) < 1e-4f);
	free(all);
	free(golden);
	assert_int_equal(ismrmrd_get_number_of_images(&dset, "ground_truth"), 4);
	assert_int_equal(ismrmrd_get_number_of_images(&dset, "object"), 4);
	float *frames[4];
	for (uint32_t f = 0; f < 4; f++) {
		ISMRMRD_Image image;
		ismrmrd_init_image(&image);
		assert_int_equal(ismrmrd_read_image(&dset, "ground_truth", f, &image), ISMRMRD_NOERROR);
		assert_int_equal(image.head.repetition, f);
		assert_int_equal(image.head.matrix_size[0], 32);
		frames[f] = malloc(sizeof(float) * 32 * 32);
		memcpy(frames[f], image.data, sizeof(float) * 32 * 32);
		ismrmrd_cleanup_image(&image);
	}
	/* motion and uptake: frame 3 is not frame 0 */
	double diff = 0, norm = 0;
	for (long i = 0; i < 32 * 32; i++) {
		diff += (frames[3][i] - frames[0][i]) * (frames[3][i] - frames[0][i]);
		norm += frames[0][i] * frames[0][i];
	}
	assert_true(sqrt(diff / norm) > 0.05);
	for (int f = 0; f < 4; f++)
		free(frames[f]);
	free(expect);
	ismrmrd_close_dataset(&dset);
	remove(path);
}

/* One static frame (per-frame motion) of 101 spokes at 32^2: the ramp-gridded rss against the
 * frame's band-limited truth (coil rss ~ 1): the scaling and orientation of k-space and truth
 * agree. Measured 0.043; the bound 0.07. */
static void test_dynamic_kspace_matches_truth(void **state)
{
	(void)state;
	struct r5_phantom_params p = small();
	p.n_frames = 1, p.frame_spokes = 101, p.noise_sigma = 0, p.per_frame_motion = 1;
	r5_dynamic_scan scan;
	assert_int_equal(r5_dynamic_simulate(&p, 1, &scan), R5_OK);
	long dims[R5_DIMS], np = scan.n_read * scan.n_spokes;
	r5_dims_ones(dims);
	dims[0] = dims[1] = 32, dims[3] = 4;
	float *coords = malloc(sizeof *coords * 3 * (size_t)np);
	for (long i = 0; i < 3 * np; i++)
		coords[i] = crealf(scan.traj->data[i]);
	r5_grid_plan *plan = NULL;
	assert_int_equal(r5_grid_plan_make(ctx, dims, NULL, &plan), R5_OK);
	dims[3] = 1;
	r5_array *image = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &image), R5_OK);
	assert_int_equal(r5_grid_frame(ctx, plan, np, coords, NULL, scan.samples, NULL, NULL, image), R5_OK);
	r5_quality q;
	r5_array truth = r5_linop_slice(scan.truth, R5_DIM_TIME, 0);
	assert_int_equal(r5_quality_compare(&truth, image, 0, &q), R5_OK);
	print_message("dense static frame: gridded rss vs truth nrmse %.4f (no scaling)\n", q.nrmse);
	assert_true(q.nrmse < 0.07);
	r5_array_free(image);
	r5_grid_plan_destroy(plan);
	free(coords);
	r5_dynamic_free(&scan);
}

static double relative_difference(const r5_array *a, const r5_array *b)
{
	double diff = 0, norm = 0;
	for (long i = 0; i < r5_array_size(a); i++) {
		diff += pow(cabsf(a->data[i] - b->data[i]), 2);
		norm += pow(cabsf(a->data[i]), 2);
	}
	return sqrt(diff / norm);
}

static void test_dynamic_motion_and_determinism(void **state)
{
	(void)state;
	struct r5_phantom_params p = small();
	r5_dynamic_scan a, b, c;
	assert_int_equal(r5_dynamic_simulate(&p, 0, &a), R5_OK);
	assert_int_equal(r5_dynamic_simulate(&p, 0, &b), R5_OK);
	assert_null(a.truth);
	assert_int_equal(memcmp(a.samples->data, b.samples->data, sizeof(float complex) * (size_t)r5_array_size(a.samples)), 0);
	p.per_frame_motion = 1;
	assert_int_equal(r5_dynamic_simulate(&p, 0, &c), R5_OK);
	double d = relative_difference(a.samples, c.samples);
	print_message("per-spoke vs per-frame motion: relative k-space difference %.4f\n", d);
	assert_true(d > 1e-3);
	r5_dynamic_free(&a);
	r5_dynamic_free(&b);
	r5_dynamic_free(&c);
}

static void test_dynamic_bad_input(void **state)
{
	(void)state;
	r5_dynamic_scan scan;
	struct r5_phantom_params p = small();
	p.matrix[1] = 48;
	assert_int_equal(r5_dynamic_simulate(&p, 1, &scan), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "square"));
	p = small();
	p.n_frames = 0;
	assert_int_equal(r5_phantom_check(&p), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "frames"));
	p = small();
	p.readout_oversampling = 3;
	assert_int_equal(r5_phantom_check(&p), R5_EINVAL);
	p = small();
	p.tr_ms = 0;
	assert_int_equal(r5_phantom_check(&p), R5_EINVAL);
	p = small();
	p.kind = R5_PHANTOM_SHEPP_LOGAN;
	assert_int_equal(r5_dynamic_simulate(&p, 1, &scan), R5_EINVAL);
	r5_phantom_kind kind;
	assert_int_equal(r5_phantom_kind_parse("dynamic", &kind), R5_OK);
	assert_int_equal(kind, R5_PHANTOM_DYNAMIC);
	assert_string_equal(r5_phantom_kind_name(kind), "dynamic");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic_file),
		cmocka_unit_test(test_dynamic_kspace_matches_truth),
		cmocka_unit_test(test_dynamic_motion_and_determinism),
		cmocka_unit_test(test_dynamic_bad_input),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
