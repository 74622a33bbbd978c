/* The phantom along a sequence's trajectory (phantoms/seq_phantom.c) on sequences this test
 * writes: a 3D Cartesian gradient echo (16 readout samples at k0 = n - 6.6 cycles, so an offset
 * of 0.4 and an asymmetric window -7..8; 8 phase encodes; 6 partitions) simulated with one
 * uniform coil, read back through the scan builder (r5_scan_read_ismrmrd) and inverse FFT'd,
 * must equal the file's ground truth to round-off: the placement, the offsets and the truth are
 * one grid. The same sequence without partitions is 2D (with noise; the dynamic object with a
 * truth per frame); bad requests are refused with messages. */
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
#include <unistd.h>

#include <ismrmrd/dataset.h>

#include "phantoms/seq_phantom.h"
#include "recon/core/ctx.h"
#include "recon/core/fft.h"
#include "recon/core/log.h"
#include "recon/io/scan.h"
#include "text_fixture.h"

#define NX 16
#define NY 8
#define NZ 6
#define FOV 0.2   /* m (x, y): dk = 5 1/m */
#define FOV_Z 0.15 /* m */

/* Per line (j, l): a 9-degree block pulse (100 us) under a gx trapezoid (1e5 Hz/m, 10/80/10 us:
 * 4.5 1/m after the pulse centre); the prephaser (gx -4.5e5 Hz/m for 20/80/20 us: -45 1/m), the
 * phase encode gy ((j - NY/2) 5 1/m) and, in 3D, the partition encode gz ((l - NZ/2) / FOV_Z 1/m)
 * with the same timing; the readout (5e5 Hz/m, 20/160/20 us) with the ADC (16 samples, 10 us,
 * delay 20 us): k0 = 0.2 (4.5 - 45 + 5 + 5 (n + 1/2)) = n - 6.6 cycles, grid points -7..8 at an
 * offset of 0.4. */
static char *write_sequence(int nz, const char *fov_line)
{
	char *t = NULL;
	size_t len = 0;
	put(&t, &len, "# written by test_seq_phantom\n\n[VERSION]\nmajor 1\nminor 4\nrevision 0\n\n");
	put(&t, &len, "[DEFINITIONS]\nAdcRasterTime 1e-07\nBlockDurationRaster 1e-05\n%s"
		      "GradientRasterTime 1e-05\nName gre3d_test\nRadiofrequencyRasterTime 1e-06\n\n[BLOCKS]\n",
	    fov_line);
	int block = 1;
	for (int l = 0; l < nz; l++)
		for (int j = 0; j < NY; j++) {
			put(&t, &len, "%d 10 1 1 0 0 0 0\n", block++);
			put(&t, &len, "%d 12 0 2 %d %d 0 0\n", block++, 10 + j, nz > 1 ? 30 + l : 0);
			put(&t, &len, "%d 20 0 3 0 0 1 0\n", block++);
		}
	put(&t, &len, "\n[RF]\n1 250 1 2 0 0 0 0\n\n[TRAP]\n");
	put(&t, &len, "1 100000 10 80 10 0\n2 -450000 20 80 20 0\n3 500000 20 160 20 0\n");
	for (int j = 0; j < NY; j++)
		put(&t, &len, "%d %d 20 80 20 0\n", 10 + j, (j - NY / 2) * 50000);
	for (int l = 0; l < nz; l++) /* area (l - NZ/2) / FOV_Z 1/m over 100 us */
		put(&t, &len, "%d %.6f 20 80 20 0\n", 30 + l, (l - NZ / 2) / FOV_Z / 100e-6);
	put(&t, &len, "\n[ADC]\n1 %d 10000 20 0 0\n\n[SHAPES]\n\nshape_id 1\nnum_samples 100\n", NX);
	for (int i = 0; i < 100; i++)
		put(&t, &len, "1\n");
	put(&t, &len, "\nshape_id 2\nnum_samples 100\n");
	for (int i = 0; i < 100; i++)
		put(&t, &len, "0\n");
	put(&t, &len, "\n");
	return t;
}

static char *write_file(int nz, const char *fov_line, const char *name)
{
	char *path = malloc(256);
	assert_non_null(path);
	snprintf(path, 256, "/tmp/r5_seq_phantom_%d_%s.seq", (int)getpid(), name);
	char *text = write_sequence(nz, fov_line);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(text);
	return path;
}

static float *read_truth(const char *path, long voxels)
{
	ISMRMRD_Dataset dset;
	assert_int_equal(r5_ismrmrd_open_readonly(path, NULL, &dset), R5_OK);
	ISMRMRD_Image image;
	ismrmrd_init_image(&image);
	assert_int_equal(ismrmrd_read_image(&dset, "ground_truth", 0, &image), ISMRMRD_NOERROR);
	assert_int_equal(image.head.data_type, ISMRMRD_FLOAT);
	float *out = malloc(sizeof *out * (size_t)voxels);
	assert_non_null(out);
	memcpy(out, image.data, sizeof *out * (size_t)voxels);
	ismrmrd_cleanup_image(&image);
	ismrmrd_close_dataset(&dset);
	return out;
}

static void test_3d_exact(void **state)
{
	(void)state;
	char *seq = write_file(NZ, "FOV 0.2 0.2 0.15\n", "3d");
	char out[256];
	snprintf(out, sizeof out, "/tmp/r5_seq_phantom_%d_3d.h5", (int)getpid());
	struct r5_phantom_params p = r5_phantom_defaults_2d;
	p.n_coils = 1, p.uniform_coil = 1;
	r5_seq_phantom_summary sum;
	assert_int_equal(r5_seq_phantom_write(&p, seq, out, &sum), R5_OK);
	assert_int_equal(sum.layout, R5_SEQ_LAYOUT_LINES);
	assert_int_equal(sum.grid.kind, R5_SEQ_CARTESIAN);
	assert_int_equal(sum.matrix[0], NX);
	assert_int_equal(sum.matrix[1], NY);
	assert_int_equal(sum.matrix[2], NZ);
	assert_int_equal(sum.n_lines, NY * NZ);
	assert_true(fabs(sum.fov_mm[2] - 150) < 1e-9);
	print_message("3D: offsets %.4f %.4f %.4f, grid error %.2g cycles\n", sum.grid.offset[0], sum.grid.offset[1],
		      sum.grid.offset[2], sum.grid.max_grid_error);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_read_ismrmrd(out, NULL, NULL, &scan), R5_OK);
	assert_int_equal(scan->kspace->dims[0], NX);
	assert_int_equal(scan->kspace->dims[1], NY);
	assert_int_equal(scan->kspace->dims[2], NZ);
	r5_ctx *ctx = NULL;
	assert_int_equal(r5_ctx_create(&ctx, "cpu", 0), R5_OK);
	assert_int_equal(r5_ifft(ctx, R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(2), scan->kspace, scan->kspace), R5_OK);
	long voxels = (long)NX * NY * NZ;
	float *truth = read_truth(out, voxels);
	double num = 0, den = 0;
	for (long i = 0; i < voxels; i++) {
		double d = cabsf(scan->kspace->data[i]) - truth[i];
		num += d * d, den += (double)truth[i] * truth[i];
	}
	double nrmse = sqrt(num / den);
	print_message("3D Cartesian, one uniform coil: |image| against the ground truth nrmse %.2e\n", nrmse);
	assert_true(den > 0);
	assert_true(nrmse < 1e-5);
	/* independent of the placement: the regular phantom's band-limited truth of the same object on
	 * the centred grid (k0 -8..7 instead of -6.6..8.4) is the same picture but for the edge of
	 * k-space; a flipped or shifted placement would be far off */
	struct r5_phantom_params q = r5_phantom_defaults_3d;
	q.matrix[0] = NX, q.matrix[1] = NY, q.matrix[2] = NZ;
	q.fov_mm[0] = q.fov_mm[1] = FOV * 1e3, q.fov_mm[2] = FOV_Z * 1e3;
	q.readout_oversampling = 1, q.n_coils = 1, q.uniform_coil = 1, q.calib = 0;
	r5_shape_set object;
	assert_int_equal(r5_phantom_object(&q, &object), R5_OK);
	float *centred = malloc(sizeof *centred * (size_t)voxels);
	assert_non_null(centred);
	assert_int_equal(r5_phantom_bandlimited(&q, &object, centred), R5_OK);
	num = den = 0;
	for (long i = 0; i < voxels; i++) {
		double d = (double)centred[i] - truth[i];
		num += d * d, den += (double)centred[i] * centred[i];
	}
	print_message("3D: ground truth against the centred band-limited phantom nrmse %.3f\n", sqrt(num / den));
	assert_true(sqrt(num / den) < 0.2);
	free(centred);
	free(truth);
	r5_ctx_destroy(ctx);
	r5_scan_free(scan);
	/* the vessel-wall object along the same 3D sequence, its wall mask on the sequence's grid */
	p.kind = R5_PHANTOM_VESSEL_WALL;
	assert_int_equal(r5_seq_phantom_write(&p, seq, out, &sum), R5_OK);
	assert_int_equal(sum.matrix[2], NZ);
	ISMRMRD_Dataset dset;
	assert_int_equal(r5_ismrmrd_open_readonly(out, NULL, &dset), R5_OK);
	assert_int_equal(ismrmrd_get_number_of_images(&dset, R5_PHANTOM_WALL_MASK_VAR), 1);
	ismrmrd_close_dataset(&dset);
	unlink(out);
	unlink(seq);
	free(seq);
}

static void test_2d_and_refusals(void **state)
{
	(void)state;
	char *seq = write_file(1, "FOV 0.2 0.2 0.005\n", "2d");
	char out[256];
	snprintf(out, sizeof out, "/tmp/r5_seq_phantom_%d_2d.h5", (int)getpid());
	struct r5_phantom_params p = r5_phantom_defaults_2d;
	p.n_coils = 4;
	p.noise_sigma = 0.01;
	r5_seq_phantom_summary sum;
	assert_int_equal(r5_seq_phantom_write(&p, seq, out, &sum), R5_OK);
	assert_true(sum.grid.two_d);
	assert_int_equal(sum.matrix[2], 1);
	assert_true(sum.n_noise_acquisitions > 0);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_read_ismrmrd(out, NULL, NULL, &scan), R5_OK);
	assert_non_null(scan->noise);
	r5_scan_free(scan);

	p.kind = R5_PHANTOM_VESSEL_WALL;
	assert_int_equal(r5_seq_phantom_write(&p, seq, out, &sum), R5_EINVAL);
	print_message("vessel-wall on a 2D sequence: %s\n", r5_last_error());
	assert_non_null(strstr(r5_last_error(), "2D object"));
	/* the dynamic object along the sequence: frames of 4 readouts, a truth per frame */
	struct r5_phantom_params d = r5_phantom_defaults_dynamic;
	d.n_coils = 2, d.frame_spokes = 4;
	assert_int_equal(r5_seq_phantom_write(&d, seq, out, &sum), R5_OK);
	ISMRMRD_Dataset dset;
	assert_int_equal(r5_ismrmrd_open_readonly(out, NULL, &dset), R5_OK);
	assert_int_equal(ismrmrd_get_number_of_images(&dset, "ground_truth"), NY / 4);
	assert_int_equal(ismrmrd_get_number_of_images(&dset, "object"), NY / 4);
	ISMRMRD_Image first, second;
	ismrmrd_init_image(&first), ismrmrd_init_image(&second);
	assert_int_equal(ismrmrd_read_image(&dset, "ground_truth", 0, &first), ISMRMRD_NOERROR);
	assert_int_equal(ismrmrd_read_image(&dset, "ground_truth", 1, &second), ISMRMRD_NOERROR);
	assert_int_equal(second.head.repetition, 1);
	assert_true(second.head.physiology_time_stamp[0] > first.head.physiology_time_stamp[0]);
	ismrmrd_cleanup_image(&first), ismrmrd_cleanup_image(&second);
	ismrmrd_close_dataset(&dset);
	d.frame_spokes = NY + 1;
	assert_int_equal(r5_seq_phantom_write(&d, seq, out, &sum), R5_EINVAL);
	print_message("frames longer than the sequence: %s\n", r5_last_error());
	p.kind = R5_PHANTOM_SHEPP_LOGAN;
	p.uniform_coil = 1; /* with 4 coils */
	assert_int_not_equal(r5_seq_phantom_write(&p, seq, out, &sum), R5_OK);
	print_message("uniform coil with 4 coils: %s\n", r5_last_error());
	p.uniform_coil = 0;
	assert_int_equal(r5_seq_phantom_write(&p, "/nonexistent/x.seq", out, &sum) == R5_OK, 0);
	unlink(seq);
	free(seq);

	seq = write_file(1, "", "nofov");
	assert_int_equal(r5_seq_phantom_write(&p, seq, out, &sum), R5_EINVAL);
	print_message("no FOV: %s\n", r5_last_error());
	assert_non_null(strstr(r5_last_error(), "FOV"));
	unlink(seq);
	free(seq);
	unlink(out);
}

int main(void)
{
	r5_log_set_level(R5_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_3d_exact),
		cmocka_unit_test(test_2d_and_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
