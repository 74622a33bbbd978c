/* Unit tests of the NIfTI-1 writer (recon/io/nifti.c) and the BIDS sidecar (bids.c): header
 * fields by offset (sizeof_hdr, dim, datatype, bitpix, pixdim, vox_offset, scl_slope,
 * xyzt_units, qform/sform codes, magic), the quaternion's rotation equal to the sform's
 * directions, the sform mapping voxels to the DICOM writer's patient coordinates (LPS -> RAS)
 * on a double-oblique (20°, 15°) 2D stack given out of order and a 3D slab, voxel values = |z|
 * in slice order, the gzip round trip, sidecar units and no patient data, and bad input
 * refused with a message. Image sets are built by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "recon/io/bids.h"
#include "recon/io/dicom.h"
#include "recon/io/nifti.h"

#define PI 3.14159265358979323846

static void rotation(double alpha_deg, double beta_deg, double read[3], double phase[3], double slice[3])
{
	double a = alpha_deg * PI / 180, b = beta_deg * PI / 180;
	double R[3][3] = {{cos(b), 0, sin(b)},
			  {sin(a) * sin(b), cos(a), -sin(a) * cos(b)},
			  {-cos(a) * sin(b), sin(a), cos(a) * cos(b)}};
	for (int i = 0; i < 3; i++)
		read[i] = R[i][0], phase[i] = R[i][1], slice[i] = R[i][2];
}

static r5_image_set *make_set(long nx, long ny, long nz, long n_slices, const double *offsets)
{
	r5_image_set *set = calloc(1, sizeof *set);
	assert_non_null(set);
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = nx, dims[1] = ny, dims[2] = nz, dims[R5_DIM_SLICE] = n_slices;
	assert_int_equal(r5_array_alloc_host(dims, &set->images), R5_OK);
	for (long i = 0; i < r5_array_size(set->images); i++)
		set->images->data[i] = (float)(i + 1) * cexpf(I * 0.3f * (float)i);
	double read[3], phase[3], slice[3], centre[3] = {10, -20, 30};
	rotation(20, 15, read, phase, slice);
	set->geometry = calloc((size_t)n_slices, sizeof *set->geometry);
	set->n_slices = n_slices;
	for (long s = 0; s < n_slices; s++) {
		r5_slice_geometry *g = &set->geometry[s];
		for (int i = 0; i < 3; i++) {
			g->position[i] = (float)(centre[i] + offsets[s] * slice[i]);
			g->read_dir[i] = (float)read[i], g->phase_dir[i] = (float)phase[i], g->slice_dir[i] = (float)slice[i];
		}
		g->present = 1;
	}
	set->fov_mm[0] = 240, set->fov_mm[1] = 180, set->fov_mm[2] = nz > 1 ? 60 : 4;
	snprintf(set->pipeline, sizeof set->pipeline, "cartesian");
	snprintf(set->parameters, sizeof set->parameters, "combine=rss");
	r5_header *h = &set->header;
	snprintf(h->patient_name, sizeof h->patient_name, "Doe^Jane");
	snprintf(h->patient_id, sizeof h->patient_id, "P123");
	snprintf(h->patient_birthdate, sizeof h->patient_birthdate, "1970-01-02");
	snprintf(h->vendor, sizeof h->vendor, "ACME");
	h->field_T = 3, h->tr_ms = 5.5f, h->te_ms = 2.2f, h->flip_deg = 12;
	return set;
}

static void free_set(r5_image_set *set)
{
	r5_array_free(set->images);
	free(set->geometry);
	free(set);
}

static int16_t i16(const unsigned char *h, size_t at)
{
	int16_t v;
	memcpy(&v, h + at, sizeof v);
	return v;
}

static float f32(const unsigned char *h, size_t at)
{
	float v;
	memcpy(&v, h + at, sizeof v);
	return v;
}

/* sform of voxel (i, j, k) in RAS */
static void sform_apply(const unsigned char *h, double i, double j, double k, double out[3])
{
	for (int r = 0; r < 3; r++)
		out[r] = f32(h, 280 + 16 * (size_t)r) * i + f32(h, 284 + 16 * (size_t)r) * j +
			 f32(h, 288 + 16 * (size_t)r) * k + f32(h, 292 + 16 * (size_t)r);
}

static void check_header_and_geometry(const r5_image_set *set, long nk, const long *slice_of_k)
{
	unsigned char *bytes = NULL;
	size_t length = 0;
	assert_int_equal(r5_nifti_encode(set, "test", &bytes, &length), R5_OK);
	const long *dims = set->images->dims;
	assert_int_equal(length, 352 + 4 * (size_t)(dims[0] * dims[1] * nk));
	int32_t sizeof_hdr;
	memcpy(&sizeof_hdr, bytes, 4);
	assert_int_equal(sizeof_hdr, 348);
	assert_int_equal(i16(bytes, 40), 3);
	assert_int_equal(i16(bytes, 42), dims[0]);
	assert_int_equal(i16(bytes, 44), dims[1]);
	assert_int_equal(i16(bytes, 46), nk);
	assert_int_equal(i16(bytes, 70), 16); /* float32 */
	assert_int_equal(i16(bytes, 72), 32);
	assert_true(fabsf(f32(bytes, 80) - 240.0f / (float)dims[0]) < 1e-5f);
	assert_true(fabsf(f32(bytes, 84) - 180.0f / (float)dims[1]) < 1e-5f);
	assert_true(f32(bytes, 108) == 352.0f && f32(bytes, 112) == 1.0f && f32(bytes, 116) == 0.0f);
	assert_int_equal(bytes[123], 10); /* mm | s */
	assert_int_equal(i16(bytes, 252), 1);
	assert_int_equal(i16(bytes, 254), 1);
	assert_memory_equal(bytes + 344, "n+1", 4);
	/* quaternion rotation = sform directions / pixdim (columns 0, 1; column 2 times qfac) */
	double b = f32(bytes, 256), c = f32(bytes, 260), d = f32(bytes, 264), a = sqrt(fmax(0, 1 - b * b - c * c - d * d));
	double R[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
			  {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
			  {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}};
	double qfac = f32(bytes, 76);
	assert_true(qfac == 1.0 || qfac == -1.0);
	for (int r = 0; r < 3; r++)
		for (int col = 0; col < 3; col++) {
			double s = f32(bytes, 280 + 16 * (size_t)r + 4 * (size_t)col) / f32(bytes, 80 + 4 * (size_t)col);
			double q = R[r][col] * (col == 2 ? qfac : 1.0);
			assert_true(fabs(s - q) < 1e-4);
		}
	/* voxel centres = the DICOM writer's patient coordinates, RAS = (-L, -P, S) */
	for (long k = 0; k < nk; k++) {
		r5_dicom_plane plane;
		long slice = slice_of_k ? slice_of_k[k] : 0, partition = slice_of_k ? 0 : k;
		assert_int_equal(r5_dicom_plane_of(set, slice, partition, &plane), R5_OK);
		long corners[3][2] = {{0, 0}, {dims[0] - 1, 0}, {3, dims[1] - 1}};
		for (int p = 0; p < 3; p++) {
			double i = (double)corners[p][0], j = (double)corners[p][1], ras[3];
			sform_apply(bytes, i, j, (double)k, ras);
			for (int r = 0; r < 3; r++) {
				double lps = plane.position[r] + i * plane.spacing[1] * plane.orientation[r] +
					     j * plane.spacing[0] * plane.orientation[3 + r];
				assert_true(fabs(ras[r] - (r < 2 ? -lps : lps)) < 1e-3);
			}
		}
		/* voxel values: |z| of that slice, x fastest */
		const r5_array *im = set->images;
		long base = slice_of_k ? slice * im->strides[R5_DIM_SLICE] : k * im->strides[R5_DIM_Z];
		float *voxels = (float *)(void *)(bytes + 352);
		long at = k * dims[0] * dims[1] + 2 * dims[0] + 1;
		assert_true(fabsf(voxels[at] - cabsf(im->data[base + 2 * im->strides[1] + 1])) < 1e-3f);
	}
	/* gzip round trip */
	unsigned char *gz = NULL;
	size_t gz_length = 0;
	assert_int_equal(r5_nifti_gzip(bytes, length, &gz, &gz_length), R5_OK);
	assert_true(gz_length > 18 && gz[0] == 0x1f && gz[1] == 0x8b);
	unsigned char *back = malloc(length);
	z_stream z = {0};
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = gz, z.avail_in = (uInt)gz_length, z.next_out = back, z.avail_out = (uInt)length;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	inflateEnd(&z);
	assert_memory_equal(back, bytes, length);
	free(back);
	free(gz);
	free(bytes);
}

static void test_stack_out_of_order(void **state)
{
	(void)state;
	double offsets[4] = {8, -4, 4, 0}; /* sorted: slices 1, 3, 2, 0 */
	r5_image_set *set = make_set(12, 8, 1, 4, offsets);
	long order[4] = {1, 3, 2, 0};
	check_header_and_geometry(set, 4, order);
	r5_nifti_geometry g;
	long *got = NULL;
	assert_int_equal(r5_nifti_geometry_of(set, &g, &got), R5_OK);
	assert_memory_equal(got, order, sizeof order);
	assert_true(fabs(g.pixdim[2] - 4.0) < 1e-4 && g.qfac == 1.0 && g.max_irregular_mm < 1e-3);
	free(got);
	free_set(set);
}

static void test_slab(void **state)
{
	(void)state;
	double offsets[1] = {0};
	r5_image_set *set = make_set(16, 10, 6, 1, offsets);
	check_header_and_geometry(set, 6, NULL);
	free_set(set);
}

/* The incremental hasher in pieces equals the file hasher over the same bytes, and the known
 * digest of "abc" (FIPS 180-2). */
static void test_sha256_pieces(void **state)
{
	(void)state;
	char path[64], a[65], b[65];
	snprintf(path, sizeof path, "/tmp/r5_sha_%d.bin", (int)getpid());
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	unsigned char bytes[100000];
	for (size_t i = 0; i < sizeof bytes; i++)
		bytes[i] = (unsigned char)(i * 2654435761u >> 13);
	fwrite(bytes, 1, sizeof bytes, f);
	fclose(f);
	assert_int_equal(r5_sha256_file(path, a), R5_OK);
	r5_sha256 *h = NULL;
	assert_int_equal(r5_sha256_begin(&h), R5_OK);
	assert_int_equal(r5_sha256_update(h, bytes, 12345), R5_OK);
	assert_int_equal(r5_sha256_update(h, bytes + 12345, 0), R5_OK);
	assert_int_equal(r5_sha256_update(h, bytes + 12345, sizeof bytes - 12345), R5_OK);
	assert_int_equal(r5_sha256_end(&h, b), R5_OK);
	assert_null(h);
	assert_string_equal(a, b);
	assert_int_equal(r5_sha256_begin(&h), R5_OK);
	assert_int_equal(r5_sha256_update(h, "abc", 3), R5_OK);
	assert_int_equal(r5_sha256_end(&h, b), R5_OK);
	assert_string_equal(b, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	r5_sha256_free(NULL);
	unlink(path);
}

static void test_sidecar(void **state)
{
	(void)state;
	double offsets[1] = {0};
	r5_image_set *set = make_set(8, 8, 1, 1, offsets);
	snprintf(set->header.institution, sizeof set->header.institution, "General Hospital");
	char *json = NULL;
	r5_bids_options opt = {"ab12", 1, "cd34"};
	assert_int_equal(r5_bids_sidecar(set, &opt, &json), R5_OK);
	assert_non_null(strstr(json, "\"RepetitionTime\": 0.0055"));
	assert_non_null(strstr(json, "\"EchoTime\": 0.0022"));
	assert_non_null(strstr(json, "\"FlipAngle\": 12"));
	assert_non_null(strstr(json, "\"MagneticFieldStrength\": 3"));
	assert_non_null(strstr(json, "\"InputHash\": \"sha256:ab12\""));
	assert_non_null(strstr(json, "\"InputStreamHash\": \"sha256:cd34\""));
	assert_non_null(strstr(json, "\"ReconstructionPipeline\": \"cartesian\""));
	assert_null(strstr(json, "Doe"));
	assert_null(strstr(json, "P123"));
	assert_null(strstr(json, "1970"));
	assert_null(strstr(json, "General Hospital"));
	free(json);
	assert_string_equal(r5_bids_suffix(&set->header), "T1w");
	set->header.tr_ms = 4000, set->header.te_ms = 90;
	assert_string_equal(r5_bids_suffix(&set->header), "T2w");
	free_set(set);
}

static void test_bad_input(void **state)
{
	(void)state;
	r5_image_set empty = {0};
	unsigned char *bytes = NULL;
	size_t length = 0;
	assert_int_equal(r5_nifti_encode(&empty, NULL, &bytes, &length), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "no images"));
	double offsets[2] = {0, 10};
	r5_image_set *slabs = make_set(8, 8, 4, 2, offsets);
	assert_int_equal(r5_nifti_encode(slabs, NULL, &bytes, &length), R5_ENOTSUP);
	assert_non_null(strstr(r5_last_error(), "2 slabs"));
	free_set(slabs);
	double same[2] = {0, 0};
	r5_image_set *stacked = make_set(8, 8, 1, 2, same);
	assert_int_equal(r5_nifti_encode(stacked, NULL, &bytes, &length), R5_EINVAL);
	assert_null(bytes);
	free_set(stacked);
	r5_image_set *one = make_set(8, 8, 1, 1, offsets);
	assert_int_equal(r5_bids_write_dataset(one, NULL, "/nonexistent-dir", "a_b", NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "subject label"));
	free_set(one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stack_out_of_order),
		cmocka_unit_test(test_slab),
		cmocka_unit_test(test_sha256_pieces),
		cmocka_unit_test(test_sidecar),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
