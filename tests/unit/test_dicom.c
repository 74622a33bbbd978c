/* Unit tests of the DICOM writer (recon/io/dicom*.c): Part 10 structure parsed back (preamble,
 * group 2 length, tag order, even lengths, explicit VR, required attributes), UID format,
 * Image Plane geometry on a double-oblique (20°, 15°) 2D stack and 3D slab (patient coordinates
 * of chosen voxels from IPP/IOP/PixelSpacing within 0.1 voxel, slice order by position), text
 * clean-up, and bad input rejected with a message. Image sets are built by hand. */
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

#include "recon/io/dicom.h"
#include "recon/io/dicom_enc.h"

#define PI 3.14159265358979323846

/* --- a minimal Part 10 reader (explicit VR little endian, no sequences) --- */

typedef struct parsed_element {
	uint32_t tag;
	char vr[3];
	size_t offset, length;
} parsed_element;

typedef struct parsed {
	parsed_element elements[256];
	int n;
	const unsigned char *bytes;
} parsed;

static int long_vr(const char *vr)
{
	return !strcmp(vr, "OB") || !strcmp(vr, "OW") || !strcmp(vr, "SQ") || !strcmp(vr, "UT") || !strcmp(vr, "UN");
}

/* Parses and checks structure; returns 0 when well formed. */
static int parse(const unsigned char *bytes, size_t length, parsed *out)
{
	memset(out, 0, sizeof *out);
	out->bytes = bytes;
	if (length < 132 || memcmp(bytes + 128, "DICM", 4))
		return -1;
	for (int i = 0; i < 128; i++)
		if (bytes[i])
			return -2;
	size_t p = 132;
	uint32_t previous = 0;
	while (p < length && out->n < 256) {
		parsed_element *e = &out->elements[out->n];
		e->tag = ((uint32_t)(bytes[p] | bytes[p + 1] << 8) << 16) | (uint32_t)(bytes[p + 2] | bytes[p + 3] << 8);
		memcpy(e->vr, bytes + p + 4, 2);
		if (long_vr(e->vr)) {
			e->length = bytes[p + 8] | bytes[p + 9] << 8 | bytes[p + 10] << 16 | (size_t)bytes[p + 11] << 24;
			e->offset = p + 12;
		} else {
			e->length = bytes[p + 6] | bytes[p + 7] << 8;
			e->offset = p + 8;
		}
		if (out->n > 0 && e->tag <= previous)
			return -3; /* not ascending */
		if (e->length & 1)
			return -4; /* odd length */
		previous = e->tag;
		p = e->offset + e->length;
		out->n++;
	}
	return p == length ? 0 : -5;
}

static const parsed_element *find(const parsed *d, uint32_t tag)
{
	for (int i = 0; i < d->n; i++)
		if (d->elements[i].tag == tag)
			return &d->elements[i];
	return NULL;
}

/* Text value (trailing padding removed) into text. */
static const char *text_of(const parsed *d, uint32_t tag, char *text, size_t size)
{
	const parsed_element *e = find(d, tag);
	text[0] = 0;
	if (!e)
		return NULL;
	size_t n = e->length < size - 1 ? e->length : size - 1;
	memcpy(text, d->bytes + e->offset, n);
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == 0))
		n--;
	text[n] = 0;
	return text;
}

static int ds_values(const parsed *d, uint32_t tag, double *values, int max)
{
	char text[512];
	if (!text_of(d, tag, text, sizeof text))
		return 0;
	int n = 0;
	for (char *p = text; n < max;) {
		values[n++] = strtod(p, &p);
		if (*p != '\\')
			break;
		p++;
	}
	return n;
}

static unsigned us_value(const parsed *d, uint32_t tag)
{
	const parsed_element *e = find(d, tag);
	return e ? (unsigned)(d->bytes[e->offset] | d->bytes[e->offset + 1] << 8) : 0;
}

/* --- image sets built by hand --- */

static void rotation(double alpha_deg, double beta_deg, double read[3], double phase[3], double slice[3])
{
	/* R = Rx(alpha) Ry(beta); columns are the read, phase and slice directions */
	double a = alpha_deg * PI / 180, b = beta_deg * PI / 180;
	double R[3][3] = {{cos(b), 0, sin(b)},
			  {sin(a) * sin(b), cos(a), -sin(a) * cos(b)},
			  {-cos(a) * sin(b), sin(a), cos(a) * cos(b)}};
	for (int i = 0; i < 3; i++) {
		read[i] = R[i][0];
		phase[i] = R[i][1];
		slice[i] = R[i][2];
	}
}

typedef struct test_set {
	r5_image_set set;
	double read[3], phase[3], slice[3];
} test_set;

/* nx x ny x nz images, n_slices slices at centre + slice_offsets[s] * slice_dir, oblique. */
static test_set *make_set(long nx, long ny, long nz, long n_slices, const double *slice_offsets, const double centre[3],
			  const float fov[3])
{
	test_set *t = calloc(1, sizeof *t);
	assert_non_null(t);
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = nx;
	dims[1] = ny;
	dims[2] = nz;
	dims[R5_DIM_SLICE] = n_slices;
	assert_int_equal(r5_array_alloc_host(dims, &t->set.images), R5_OK);
	long n = r5_array_size(t->set.images);
	for (long i = 0; i < n; i++)
		t->set.images->data[i] = (float)(1 + i % 7) * cexpf(I * 0.1f * (float)(i % 13));
	rotation(20, 15, t->read, t->phase, t->slice);
	t->set.geometry = calloc((size_t)n_slices, sizeof *t->set.geometry);
	t->set.n_slices = n_slices;
	for (long s = 0; s < n_slices; s++) {
		r5_slice_geometry *g = &t->set.geometry[s];
		for (int i = 0; i < 3; i++) {
			g->position[i] = (float)(centre[i] + slice_offsets[s] * t->slice[i]);
			g->read_dir[i] = (float)t->read[i];
			g->phase_dir[i] = (float)t->phase[i];
			g->slice_dir[i] = (float)t->slice[i];
		}
		g->present = 1;
	}
	memcpy(t->set.fov_mm, fov, sizeof t->set.fov_mm);
	snprintf(t->set.pipeline, sizeof t->set.pipeline, "cartesian");
	snprintf(t->set.parameters, sizeof t->set.parameters, "combine=rss");
	r5_header *h = &t->set.header;
	snprintf(h->patient_name, sizeof h->patient_name, "Doe^Jane");
	snprintf(h->patient_id, sizeof h->patient_id, "P123");
	snprintf(h->patient_position, sizeof h->patient_position, "HFS");
	snprintf(h->vendor, sizeof h->vendor, "recon5t phantom");
	snprintf(h->study_date, sizeof h->study_date, "2024-05-06");
	snprintf(h->study_time, sizeof h->study_time, "12:34:56");
	h->field_T = 3;
	h->larmor_hz = 127740000;
	h->tr_ms = 5.5f;
	h->te_ms = 2.2f;
	h->flip_deg = 12;
	return t;
}

static void free_set(test_set *t)
{
	r5_array_free(t->set.images);
	r5_array_free(t->set.gfactor);
	free(t->set.geometry);
	free(t);
}

static void encode(r5_dicom_writer *w, r5_dicom_kind kind, long index, unsigned char **bytes, size_t *length,
		   parsed *d)
{
	assert_int_equal(r5_dicom_writer_encode(w, kind, index, bytes, length), R5_OK);
	assert_int_equal(parse(*bytes, *length, d), 0);
}

/* --- tests --- */

static void test_uid_format(void **state)
{
	char uids[50][65];
	for (int i = 0; i < 50; i++) {
		assert_int_equal(r5_dicom_uid_generate(uids[i]), R5_OK);
		assert_true(r5_dicom_uid_valid(uids[i]));
		assert_true(strlen(uids[i]) <= 44);
		assert_memory_equal(uids[i], "2.25.", 5);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(uids[i], uids[j]);
	}
	assert_false(r5_dicom_uid_valid(""));
	assert_false(r5_dicom_uid_valid("1.02.3"));
	assert_false(r5_dicom_uid_valid("1..2"));
	assert_false(r5_dicom_uid_valid("1.2."));
	assert_false(r5_dicom_uid_valid("1.2a"));
	assert_true(r5_dicom_uid_valid("1.0.2"));
	char long_uid[80];
	memset(long_uid, '1', 65);
	long_uid[65] = 0;
	assert_false(r5_dicom_uid_valid(long_uid));
}

static void test_ds_format(void **state)
{
	const double values[] = {0, -0.0, 1.0 / 3.0, -123.456789012345, 1e-12, 6.02e23, -0.98480775301220802, 255.99999999};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char text[17];
		r5_dcm_format_ds(values[i], text);
		assert_true(strlen(text) <= 16);
		double back = strtod(text, NULL);
		assert_true(fabs(back - values[i]) <= 1e-9 * fmax(1.0, fabs(values[i])));
	}
}

static void test_structure(void **state)
{
	const double offsets[] = {-5, 0, 5};
	const double centre[3] = {10, -20, 30};
	const float fov[3] = {240, 180, 4};
	test_set *t = make_set(12, 8, 1, 3, offsets, centre, fov);
	r5_dicom_writer *w;
	assert_int_equal(r5_dicom_writer_create(&t->set, NULL, &w), R5_OK);
	assert_int_equal(r5_dicom_writer_count(w, R5_DICOM_MAGNITUDE), 3);
	assert_int_equal(r5_dicom_writer_count(w, R5_DICOM_GFACTOR), 0);
	unsigned char *bytes;
	size_t length;
	parsed d;
	encode(w, R5_DICOM_MAGNITUDE, 1, &bytes, &length, &d);
	/* group 2 length = bytes of the group 2 elements after it */
	const parsed_element *group_length = find(&d, R5_DCM_TAG(0x0002, 0x0000));
	assert_non_null(group_length);
	size_t end_of_meta = 0;
	for (int i = 0; i < d.n; i++)
		if (d.elements[i].tag >> 16 == 2)
			end_of_meta = d.elements[i].offset + d.elements[i].length;
	uint32_t declared = bytes[group_length->offset] | bytes[group_length->offset + 1] << 8;
	assert_int_equal(declared, end_of_meta - (group_length->offset + 4));
	/* every Type 1 / Type 2 attribute of the modules written */
	static const uint32_t required[] = {
		0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00080008, 0x00080016, 0x00080018,
		0x00080020, 0x00080030, 0x00080050, 0x00080060, 0x00080070, 0x00080090, 0x00100010, 0x00100020,
		0x00100030, 0x00100040, 0x00180020, 0x00180021, 0x00180022, 0x00180023, 0x00180050, 0x00180080,
		0x00180081, 0x00180091, 0x00185100, 0x0020000D, 0x0020000E, 0x00200010, 0x00200011, 0x00200013,
		0x00200032, 0x00200037, 0x00200052, 0x00201040, 0x00280002, 0x00280004, 0x00280010, 0x00280011,
		0x00280030, 0x00280100, 0x00280101, 0x00280102, 0x00280103, 0x00281050, 0x00281051, 0x7FE00010};
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		if (!find(&d, required[i]))
			fail_msg("missing (%04X,%04X)", required[i] >> 16, required[i] & 0xFFFF);
	}
	char text[256];
	assert_string_equal(text_of(&d, 0x00080016, text, sizeof text), "1.2.840.10008.5.1.4.1.1.4");
	assert_string_equal(text_of(&d, 0x00020010, text, sizeof text), "1.2.840.10008.1.2.1");
	assert_string_equal(text_of(&d, 0x00100010, text, sizeof text), "Doe^Jane");
	assert_string_equal(text_of(&d, 0x00080020, text, sizeof text), "20240506");
	assert_string_equal(text_of(&d, 0x00080030, text, sizeof text), "123456");
	assert_string_equal(text_of(&d, 0x00185100, text, sizeof text), "HFS");
	assert_string_equal(text_of(&d, 0x00200013, text, sizeof text), "2");
	assert_non_null(strstr(text_of(&d, 0x00082111, text, sizeof text), "cartesian"));
	assert_non_null(strstr(text_of(&d, 0x00181020, text, sizeof text), "recon5t"));
	double value;
	assert_int_equal(ds_values(&d, 0x00180087, &value, 1), 1);
	assert_true(fabs(value - 3) < 1e-6);
	assert_int_equal(ds_values(&d, 0x00180084, &value, 1), 1);
	assert_true(fabs(value - 127.74) < 1e-6);
	assert_int_equal(us_value(&d, 0x00280010), 8);  /* Rows = ny */
	assert_int_equal(us_value(&d, 0x00280011), 12); /* Columns = nx */
	assert_int_equal(find(&d, 0x7FE00010)->length, 8 * 12 * 2);
	/* meta SOP instance equals the data set's, and the UIDs are those the writer reports */
	char meta_uid[80], sop_uid[80];
	assert_string_equal(text_of(&d, 0x00020003, meta_uid, sizeof meta_uid), text_of(&d, 0x00080018, sop_uid, sizeof sop_uid));
	assert_string_equal(text_of(&d, 0x0020000D, text, sizeof text), r5_dicom_writer_study_uid(w));
	assert_string_equal(text_of(&d, 0x0020000E, text, sizeof text), r5_dicom_writer_series_uid(w, R5_DICOM_MAGNITUDE));
	/* same index again: same SOP instance UID; a phase series: a different series, same study */
	unsigned char *again, *phase;
	size_t again_length, phase_length;
	parsed d2, d3;
	encode(w, R5_DICOM_MAGNITUDE, 1, &again, &again_length, &d2);
	assert_string_equal(text_of(&d2, 0x00080018, text, sizeof text), sop_uid);
	encode(w, R5_DICOM_PHASE, 1, &phase, &phase_length, &d3);
	assert_string_not_equal(text_of(&d3, 0x0020000E, text, sizeof text), r5_dicom_writer_series_uid(w, R5_DICOM_MAGNITUDE));
	assert_string_equal(text_of(&d3, 0x0020000D, text, sizeof text), r5_dicom_writer_study_uid(w));
	assert_string_equal(text_of(&d3, 0x00200011, text, sizeof text), "1001");
	free(again);
	free(phase);
	free(bytes);
	assert_int_equal(r5_dicom_writer_encode(w, R5_DICOM_MAGNITUDE, 3, &bytes, &length), R5_EINVAL);
	r5_dicom_writer_destroy(w);
	free_set(t);
}

/* Patient coordinates of voxel (column i, row j) by PS3.3 C.7.6.2.1.1. */
static void voxel_position(const parsed *d, long i, long j, double out[3])
{
	double ipp[3], iop[6], spacing[2];
	assert_int_equal(ds_values(d, 0x00200032, ipp, 3), 3);
	assert_int_equal(ds_values(d, 0x00200037, iop, 6), 6);
	assert_int_equal(ds_values(d, 0x00280030, spacing, 2), 2);
	for (int k = 0; k < 3; k++)
		out[k] = ipp[k] + iop[k] * spacing[1] * (double)i + iop[3 + k] * spacing[0] * (double)j;
}

static double distance3(const double a[3], const double b[3])
{
	return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

/* Known physical centre of voxel (i, j, k) under the ISMRMRD-centre / FFT-centre convention. */
static void known_position(const test_set *t, const double centre[3], long i, long j, long k, double out[3])
{
	const r5_array *a = t->set.images;
	double d[3];
	for (int m = 0; m < 3; m++)
		d[m] = t->set.fov_mm[m] / (double)a->dims[m];
	for (int m = 0; m < 3; m++)
		out[m] = centre[m] + (double)(i - a->dims[0] / 2) * d[0] * t->read[m] +
			 (double)(j - a->dims[1] / 2) * d[1] * t->phase[m] +
			 (a->dims[2] > 1 ? (double)(k - a->dims[2] / 2) * d[2] * t->slice[m] : 0.0);
}

static void test_geometry_oblique_2d(void **state)
{
	/* slices given out of order: the stack must still sort by position */
	const double offsets[] = {6, -6, 0, 12};
	const double centre[3] = {-12.5, 33.0, 7.25};
	const float fov[3] = {220, 165, 3};
	test_set *t = make_set(64, 48, 1, 4, offsets, centre, fov);
	/* a bright marker at column 40, row 7 of slice 2 */
	long marker_i = 40, marker_j = 7;
	t->set.images->data[t->set.images->strides[R5_DIM_SLICE] * 2 + marker_j * 64 + marker_i] = 1000;
	r5_dicom_writer *w;
	assert_int_equal(r5_dicom_writer_create(&t->set, NULL, &w), R5_OK);
	double worst = 0, voxel = 165.0 / 48;
	double location[4];
	for (long s = 0; s < 4; s++) {
		unsigned char *bytes;
		size_t length;
		parsed d;
		encode(w, R5_DICOM_MAGNITUDE, s, &bytes, &length, &d);
		double slice_centre[3];
		for (int m = 0; m < 3; m++)
			slice_centre[m] = centre[m] + offsets[s] * t->slice[m];
		const long probes[][2] = {{0, 0}, {63, 0}, {0, 47}, {63, 47}, {32, 24}, {17, 41}};
		for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
			double from_dicom[3], truth[3];
			voxel_position(&d, probes[p][0], probes[p][1], from_dicom);
			known_position(t, slice_centre, probes[p][0], probes[p][1], 0, truth);
			double error = distance3(from_dicom, truth);
			worst = error > worst ? error : worst;
		}
		assert_int_equal(ds_values(&d, 0x00201041, &location[s], 1), 1);
		if (s == 2) { /* the marker is the brightest stored pixel, at row 7 column 40 */
			const parsed_element *pixels = find(&d, 0x7FE00010);
			const unsigned char *p = bytes + pixels->offset;
			long at = (marker_j * 64 + marker_i) * 2;
			assert_int_equal(p[at] | p[at + 1] << 8, 32767);
		}
		double thickness, between;
		ds_values(&d, 0x00180050, &thickness, 1);
		ds_values(&d, 0x00180088, &between, 1);
		assert_true(fabs(thickness - 3) < 1e-9 && fabs(between - 6) < 1e-4);
		free(bytes);
	}
	printf("2D double-oblique: worst voxel position error %.2e mm (%.2e voxel)\n", worst, worst / voxel);
	assert_true(worst < 0.1 * voxel);
	/* SliceLocation orders the stack as the physical offsets along slice_dir do */
	for (int a = 0; a < 4; a++)
		for (int b = 0; b < 4; b++)
			if (offsets[a] < offsets[b])
				assert_true(location[a] < location[b]);
	assert_true(fabs((location[3] - location[0]) - 6.0) < 1e-3);
	r5_dicom_writer_destroy(w);
	free_set(t);
}

static void test_geometry_oblique_3d(void **state)
{
	const double offsets[] = {0};
	const double centre[3] = {4, -8, 15};
	const float fov[3] = {192, 160, 48};
	test_set *t = make_set(32, 20, 12, 1, offsets, centre, fov);
	r5_dicom_writer *w;
	assert_int_equal(r5_dicom_writer_create(&t->set, NULL, &w), R5_OK);
	assert_int_equal(r5_dicom_writer_count(w, R5_DICOM_MAGNITUDE), 12);
	double worst = 0, previous_location = -1e9;
	for (long k = 0; k < 12; k++) {
		unsigned char *bytes;
		size_t length;
		parsed d;
		encode(w, R5_DICOM_MAGNITUDE, k, &bytes, &length, &d);
		const long probes[][2] = {{0, 0}, {31, 19}, {16, 10}, {5, 13}};
		for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
			double from_dicom[3], truth[3];
			voxel_position(&d, probes[p][0], probes[p][1], from_dicom);
			known_position(t, centre, probes[p][0], probes[p][1], k, truth);
			double error = distance3(from_dicom, truth);
			worst = error > worst ? error : worst;
		}
		double location, thickness;
		ds_values(&d, 0x00201041, &location, 1);
		ds_values(&d, 0x00180050, &thickness, 1);
		assert_true(fabs(thickness - 4) < 1e-9);
		assert_true(location > previous_location + 3.999);
		previous_location = location;
		char text[16];
		assert_string_equal(text_of(&d, 0x00180023, text, sizeof text), "3D");
		free(bytes);
	}
	printf("3D double-oblique: worst voxel position error %.2e mm (%.2e voxel)\n", worst, worst / 4.0);
	assert_true(worst < 0.1 * 4.0);
	/* the volume centre (N/2 in every direction) is the ISMRMRD position */
	r5_dicom_plane plane;
	assert_int_equal(r5_dicom_plane_of(&t->set, 0, 6, &plane), R5_OK);
	double centre_voxel[3];
	for (int m = 0; m < 3; m++)
		centre_voxel[m] = plane.position[m] + 16 * plane.spacing[1] * plane.orientation[m] +
				  10 * plane.spacing[0] * plane.orientation[3 + m];
	assert_true(distance3(centre_voxel, centre) < 1e-4);
	r5_dicom_writer_destroy(w);
	free_set(t);
}

static void test_request_and_cleanup(void **state)
{
	const double offsets[] = {0};
	const double centre[3] = {0, 0, 0};
	const float fov[3] = {100, 100, 5};
	test_set *t = make_set(4, 4, 1, 1, offsets, centre, fov);
	r5_dicom_request req = {0};
	req.patient_name = "Evil\\Name^With a very long family name that goes on and on beyond sixty-four";
	req.patient_id = "ID\x01" "7";
	req.patient_sex = "female";
	req.patient_birth_date = "1970-01-02";
	req.study_uid = "1.2.3.4";
	req.accession_number = "ACC-1";
	r5_dicom_writer *w;
	assert_int_equal(r5_dicom_writer_create(&t->set, &req, &w), R5_OK);
	unsigned char *bytes;
	size_t length;
	parsed d;
	encode(w, R5_DICOM_MAGNITUDE, 0, &bytes, &length, &d);
	char text[256];
	text_of(&d, 0x00100010, text, sizeof text);
	assert_null(strchr(text, '\\'));
	assert_true(strlen(text) <= 64);
	assert_string_equal(text_of(&d, 0x00100020, text, sizeof text), "ID 7");
	assert_string_equal(text_of(&d, 0x00100040, text, sizeof text), "F");
	assert_string_equal(text_of(&d, 0x00100030, text, sizeof text), "19700102");
	assert_string_equal(text_of(&d, 0x0020000D, text, sizeof text), "1.2.3.4");
	assert_string_equal(text_of(&d, 0x00080050, text, sizeof text), "ACC-1");
	free(bytes);
	r5_dicom_writer_destroy(w);
	/* an invalid study UID from the client is replaced, not written */
	req.study_uid = "1.02.x";
	assert_int_equal(r5_dicom_writer_create(&t->set, &req, &w), R5_OK);
	assert_true(r5_dicom_uid_valid(r5_dicom_writer_study_uid(w)));
	assert_memory_equal(r5_dicom_writer_study_uid(w), "2.25.", 5);
	r5_dicom_writer_destroy(w);
	free_set(t);
}

static void test_bad_input(void **state)
{
	r5_dicom_writer *w = (r5_dicom_writer *)1;
	r5_image_set empty = {0};
	assert_int_equal(r5_dicom_writer_create(&empty, NULL, &w), R5_EINVAL);
	assert_null(w);
	assert_non_null(strstr(r5_last_error(), "no images"));
	const double offsets[] = {0};
	const double centre[3] = {0, 0, 0};
	const float fov[3] = {100, 100, 5};
	test_set *t = make_set(4, 4, 1, 1, offsets, centre, fov);
	t->set.geometry[0].phase_dir[0] = t->set.geometry[0].read_dir[0];
	t->set.geometry[0].phase_dir[1] = t->set.geometry[0].read_dir[1];
	t->set.geometry[0].phase_dir[2] = t->set.geometry[0].read_dir[2] + 0.1f;
	assert_int_equal(r5_dicom_writer_create(&t->set, NULL, &w), R5_OK);
	unsigned char *bytes = NULL;
	size_t length;
	assert_int_equal(r5_dicom_writer_encode(w, R5_DICOM_MAGNITUDE, 0, &bytes, &length), R5_EINVAL);
	assert_null(bytes);
	assert_non_null(strstr(r5_last_error(), "orthogonal"));
	r5_dicom_writer_destroy(w);
	free_set(t);
	r5_dicom_writer_destroy(NULL);
}

static void test_write_set_files(void **state)
{
	const double offsets[] = {-3, 3};
	const double centre[3] = {0, 0, 0};
	const float fov[3] = {100, 80, 3};
	test_set *t = make_set(10, 8, 1, 2, offsets, centre, fov);
	assert_int_equal(r5_array_alloc_host(t->set.images->dims, &t->set.gfactor), R5_OK);
	for (long i = 0; i < r5_array_size(t->set.gfactor); i++)
		t->set.gfactor->data[i] = 1.0f + 0.01f * (float)(i % 50);
	char dir[] = "/tmp/r5-test-dicom-XXXXXX";
	assert_non_null(mkdtemp(dir));
	long n = 0;
	unsigned all = R5_DICOM_KIND_FLAG(R5_DICOM_MAGNITUDE) | R5_DICOM_KIND_FLAG(R5_DICOM_PHASE) |
		       R5_DICOM_KIND_FLAG(R5_DICOM_GFACTOR);
	assert_int_equal(r5_dicom_write_set(&t->set, NULL, all, dir, &n), R5_OK);
	assert_int_equal(n, 6);
	for (int k = 0; k < R5_DICOM_N_KINDS; k++)
		for (long i = 0; i < 2; i++) {
			char name[64], path[256];
			r5_dicom_instance_path((r5_dicom_kind)k, i, name, sizeof name);
			snprintf(path, sizeof path, "%s/%s", dir, name);
			FILE *f = fopen(path, "rb");
			assert_non_null(f);
			unsigned char bytes[4096];
			size_t length = fread(bytes, 1, sizeof bytes, f);
			fclose(f);
			parsed d;
			assert_int_equal(parse(bytes, length, &d), 0);
			if (k == R5_DICOM_GFACTOR && i == 0) { /* stored = g x 1000: g[0] = 1.00 */
				const unsigned char *p = bytes + find(&d, 0x7FE00010)->offset;
				assert_int_equal(p[0] | p[1] << 8, 1000);
			}
			unlink(path);
		}
	for (int k = 0; k < R5_DICOM_N_KINDS; k++) {
		char path[256];
		snprintf(path, sizeof path, "%s/%s", dir, r5_dicom_kind_name((r5_dicom_kind)k));
		rmdir(path);
	}
	rmdir(dir);
	assert_int_equal(r5_dicom_write_set(&t->set, NULL, all, "/proc/no/such/place", &n), R5_EIO);
	free_set(t);
}

/* --- Enhanced MR (dicom_enhanced.c) and the encoder's sequences --- */

/* One level of explicit VR LE elements in [p, p + length): value offset and length of tag. */
static int element_in(const unsigned char *p, size_t length, uint32_t tag, size_t *value_offset, size_t *value_length)
{
	size_t at = 0;
	while (at + 8 <= length) {
		uint32_t t = ((uint32_t)(p[at] | p[at + 1] << 8) << 16) | (uint32_t)(p[at + 2] | p[at + 3] << 8);
		char vr[3] = {(char)p[at + 4], (char)p[at + 5], 0};
		size_t header = long_vr(vr) || !strcmp(vr, "UC") || !strcmp(vr, "UR") ? 12 : 8;
		size_t n = header == 12 ? (size_t)(p[at + 8] | p[at + 9] << 8 | p[at + 10] << 16 | (size_t)p[at + 11] << 24)
					: (size_t)(p[at + 6] | p[at + 7] << 8);
		if (t == tag) {
			*value_offset = at + header;
			*value_length = n;
			return 1;
		}
		at += header + n;
	}
	return 0;
}

/* Item k of a sequence value (explicit item lengths): offset and length of its elements. */
static int item_in(const unsigned char *sq, size_t length, long k, size_t *offset, size_t *item_length)
{
	size_t at = 0;
	for (long i = 0; at + 8 <= length; i++) {
		assert_int_equal(sq[at] | sq[at + 1] << 8 | sq[at + 2] << 16 | (uint32_t)sq[at + 3] << 24, 0xE000FFFEu);
		size_t n = sq[at + 4] | sq[at + 5] << 8 | sq[at + 6] << 16 | (size_t)sq[at + 7] << 24;
		if (i == k) {
			*offset = at + 8;
			*item_length = n;
			return 1;
		}
		at += 8 + n;
	}
	return 0;
}

/* Text of `tag` inside sequence `outer` (item 0 unless per-frame) -> group sequence -> item 0. */
static void group_text(const r5_dcm_dataset *ds, uint32_t outer, long frame, uint32_t group, uint32_t tag, char *text,
		       size_t size)
{
	const r5_dcm_element *sq = r5_dcm_find(ds, outer);
	assert_non_null(sq);
	size_t item, item_length, g, g_length, inner, inner_length, v, v_length;
	assert_true(item_in(sq->value, sq->length, frame, &item, &item_length));
	assert_true(element_in(sq->value + item, item_length, group, &g, &g_length));
	const unsigned char *group_value = sq->value + item + g;
	assert_true(item_in(group_value, g_length, 0, &inner, &inner_length));
	assert_true(element_in(group_value + inner, inner_length, tag, &v, &v_length));
	size_t n = v_length < size - 1 ? v_length : size - 1;
	memcpy(text, group_value + inner + v, n);
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == 0))
		n--;
	text[n] = 0;
}

static void test_sequence_encoding(void **state)
{
	r5_dcm_dataset ds, items[2], inner;
	r5_dcm_init(&ds);
	r5_dcm_init(&items[0]);
	r5_dcm_init(&items[1]);
	r5_dcm_init(&inner);
	r5_dcm_put_text(&inner, R5_DCM_TAG(0x0008, 0x0100), "SH", "123");
	r5_dcm_put_sequence(&items[0], R5_DCM_TAG(0x0008, 0x2218), &inner, 1);
	r5_dcm_put_text(&items[0], R5_DCM_TAG(0x0020, 0x9072), "CS", "U"); /* after the SQ: sorted on output */
	const uint32_t pointer = R5_DCM_TAG(0x0020, 0x9057);
	r5_dcm_put_at(&items[1], R5_DCM_TAG(0x0020, 0x9165), &pointer, 1);
	r5_dcm_put_sequence(&ds, R5_DCM_TAG(0x5200, 0x9229), items, 2);
	r5_dcm_put_sequence(&ds, R5_DCM_TAG(0x0040, 0x0555), NULL, 0);
	r5_dcm_put_us(&ds, R5_DCM_TAG(0x0028, 0x0010), 7);
	unsigned char *bytes;
	size_t length;
	assert_int_equal(r5_dcm_encode(&ds, "1.2.3", "1.2.3.4", &bytes, &length), R5_OK);
	r5_dcm_dataset back;
	assert_int_equal(r5_dcm_decode(bytes, length, &back), R5_OK);
	assert_int_equal(back.n, 3);
	assert_null(r5_dcm_find(&back, R5_DCM_TAG(0x0002, 0x0010))); /* group 2 left out */
	assert_int_equal(r5_dcm_find(&back, R5_DCM_TAG(0x0040, 0x0555))->length, 0);
	const r5_dcm_element *sq = r5_dcm_find(&back, R5_DCM_TAG(0x5200, 0x9229));
	assert_string_equal(sq->vr, "SQ");
	/* item 0: (0008,2218) SQ [ item [ (0008,0100) SH "123 " ] ] then (0020,9072) CS "U " */
	assert_int_equal(sq->length, (8 + (12 + 8 + 8 + 4) + (8 + 2)) + (8 + 12));
	size_t item, item_length, v, v_length;
	assert_true(item_in(sq->value, sq->length, 0, &item, &item_length));
	assert_int_equal(item_length, 12 + 8 + 8 + 4 + 8 + 2);
	assert_true(element_in(sq->value + item, item_length, R5_DCM_TAG(0x0008, 0x2218), &v, &v_length));
	assert_int_equal(v, 12); /* (0008,2218) sorts first: its value follows a 12-byte header at 0 */
	assert_true(element_in(sq->value + item, item_length, R5_DCM_TAG(0x0020, 0x9072), &v, &v_length));
	assert_memory_equal(sq->value + item + v, "U ", 2);
	assert_true(item_in(sq->value, sq->length, 1, &item, &item_length));
	assert_true(element_in(sq->value + item, item_length, R5_DCM_TAG(0x0020, 0x9165), &v, &v_length));
	const unsigned char at_bytes[4] = {0x20, 0x00, 0x57, 0x90}; /* group, element, little endian */
	assert_memory_equal(sq->value + item + v, at_bytes, 4);
	const r5_dcm_element *rows = r5_dcm_find(&back, R5_DCM_TAG(0x0028, 0x0010));
	assert_int_equal(rows->value[0] | rows->value[1] << 8, 7);
	free(bytes);
	r5_dcm_clear(&back);
	/* a failed item fails the sequence; a file that is not Part 10 is refused */
	r5_dcm_put_text(&inner, R5_DCM_TAG(0x0008, 0x0100), "SH", "much more than sixteen characters");
	r5_dcm_put_sequence(&ds, R5_DCM_TAG(0x0008, 0x2218), &inner, 1);
	assert_int_equal(ds.error, R5_ERANGE);
	const unsigned char junk[200] = {0};
	assert_int_equal(r5_dcm_decode(junk, sizeof junk, &back), R5_EINVAL);
	r5_dcm_clear(&back);
	r5_dcm_clear(&ds);
	r5_dcm_clear(&items[0]);
	r5_dcm_clear(&items[1]);
	r5_dcm_clear(&inner);
}

/* Encodes enhanced instance `index`, checks frames against the classic writer's instances of
 * the same images: per-frame ImagePositionPatient text, pixels, shared orientation. Returns the
 * In-Stack Position Numbers. */
static void check_enhanced(const test_set *t, long index, long n_frames, const long *classic_indices, long *stack_positions)
{
	r5_dicom_enhanced *e;
	r5_dicom_writer *w;
	assert_int_equal(r5_dicom_enhanced_create(&t->set, NULL, &e), R5_OK);
	assert_int_equal(r5_dicom_writer_create(&t->set, NULL, &w), R5_OK);
	assert_int_equal(r5_dicom_enhanced_frames(e), n_frames);
	unsigned char *bytes;
	size_t length;
	assert_int_equal(r5_dicom_enhanced_encode(e, R5_DICOM_MAGNITUDE, index, &bytes, &length), R5_OK);
	r5_dcm_dataset ds;
	assert_int_equal(r5_dcm_decode(bytes, length, &ds), R5_OK);
	char text[256], want[256];
	const r5_dcm_element *sop = r5_dcm_find(&ds, R5_DCM_TAG(0x0008, 0x0016));
	assert_memory_equal(sop->value, "1.2.840.10008.5.1.4.1.1.4.1", 27);
	const r5_dcm_element *frames = r5_dcm_find(&ds, R5_DCM_TAG(0x0028, 0x0008));
	snprintf(want, sizeof want, "%ld", n_frames);
	assert_memory_equal(frames->value, want, strlen(want));
	const r5_dcm_element *pixels = r5_dcm_find(&ds, 0x7FE00010);
	size_t frame_bytes = (size_t)(t->set.images->dims[0] * t->set.images->dims[1] * 2);
	assert_int_equal(pixels->length, frame_bytes * (size_t)n_frames);
	for (long f = 0; f < n_frames; f++) {
		unsigned char *classic;
		size_t classic_length;
		parsed d;
		encode(w, R5_DICOM_MAGNITUDE, classic_indices[f], &classic, &classic_length, &d);
		group_text(&ds, R5_DCM_TAG(0x5200, 0x9230), f, R5_DCM_TAG(0x0020, 0x9113), R5_DCM_TAG(0x0020, 0x0032), text,
			   sizeof text);
		assert_string_equal(text, text_of(&d, 0x00200032, want, sizeof want));
		group_text(&ds, R5_DCM_TAG(0x5200, 0x9229), 0, R5_DCM_TAG(0x0020, 0x9116), R5_DCM_TAG(0x0020, 0x0037), text,
			   sizeof text);
		assert_string_equal(text, text_of(&d, 0x00200037, want, sizeof want));
		assert_memory_equal(pixels->value + (size_t)f * frame_bytes, classic + find(&d, 0x7FE00010)->offset, frame_bytes);
		group_text(&ds, R5_DCM_TAG(0x5200, 0x9230), f, R5_DCM_TAG(0x0020, 0x9111), R5_DCM_TAG(0x0020, 0x9057), text,
			   sizeof text);
		stack_positions[f] = (long)((unsigned char)text[0] | (unsigned char)text[1] << 8);
		free(classic);
	}
	group_text(&ds, R5_DCM_TAG(0x5200, 0x9229), 0, R5_DCM_TAG(0x0028, 0x9110), R5_DCM_TAG(0x0028, 0x0030), text,
		   sizeof text);
	r5_dicom_plane plane;
	assert_int_equal(r5_dicom_plane_of(&t->set, 0, 0, &plane), R5_OK);
	assert_true(fabs(strtod(text, NULL) - plane.spacing[0]) < 1e-9);
	free(bytes);
	r5_dcm_clear(&ds);
	assert_int_equal(r5_dicom_enhanced_encode(e, R5_DICOM_MAGNITUDE, r5_dicom_enhanced_count(e, R5_DICOM_MAGNITUDE),
						  &bytes, &length),
			 R5_EINVAL);
	assert_int_equal(r5_dicom_enhanced_count(e, R5_DICOM_GFACTOR), 0);
	r5_dicom_writer_destroy(w);
	r5_dicom_enhanced_destroy(e);
}

static void test_enhanced_3d(void **state)
{
	/* oblique 3D slab, two contrasts: two instances of 6 frames; frames of instance 1 are the
	 * classic instances 6..11 (partition fastest) */
	const double offsets[] = {0};
	const double centre[3] = {4, -8, 15};
	const float fov[3] = {160, 100, 24};
	test_set *t = make_set(16, 10, 6, 1, offsets, centre, fov);
	long dims[R5_DIMS];
	memcpy(dims, t->set.images->dims, sizeof dims);
	dims[R5_DIM_TE] = 2;
	r5_array_free(t->set.images);
	assert_int_equal(r5_array_alloc_host(dims, &t->set.images), R5_OK);
	for (long i = 0; i < r5_array_size(t->set.images); i++)
		t->set.images->data[i] = (float)(1 + i % 11) * cexpf(I * 0.2f * (float)(i % 5));
	r5_dicom_enhanced *e;
	assert_int_equal(r5_dicom_enhanced_create(&t->set, NULL, &e), R5_OK);
	assert_int_equal(r5_dicom_enhanced_count(e, R5_DICOM_MAGNITUDE), 2);
	r5_dicom_enhanced_destroy(e);
	const long classic[6] = {6, 7, 8, 9, 10, 11};
	long positions[6];
	check_enhanced(t, 1, 6, classic, positions);
	for (long f = 0; f < 6; f++)
		assert_int_equal(positions[f], f + 1); /* slice_dir = read x phase: partitions in order */
	free_set(t);
	r5_dicom_enhanced_destroy(NULL);
}

static void test_enhanced_2d_stack(void **state)
{
	/* three oblique slices acquired out of order: frames keep the slice order, In-Stack
	 * Position Numbers rank them along the normal */
	const double offsets[] = {5, -5, 0};
	const double centre[3] = {10, -20, 30};
	const float fov[3] = {120, 96, 3};
	test_set *t = make_set(12, 8, 1, 3, offsets, centre, fov);
	const long classic[3] = {0, 1, 2};
	long positions[3];
	check_enhanced(t, 0, 3, classic, positions);
	assert_int_equal(positions[0], 3);
	assert_int_equal(positions[1], 1);
	assert_int_equal(positions[2], 2);
	char dir[] = "/tmp/r5-test-dicom-enh-XXXXXX";
	assert_non_null(mkdtemp(dir));
	long n = 0;
	assert_int_equal(r5_dicom_write_enhanced(&t->set, NULL, R5_DICOM_KIND_FLAG(R5_DICOM_MAGNITUDE), dir, &n), R5_OK);
	assert_int_equal(n, 1);
	char name[64], path[256];
	r5_dicom_enhanced_path(R5_DICOM_MAGNITUDE, 0, name, sizeof name);
	assert_string_equal(name, "magnitude/MF_00001.dcm");
	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/magnitude", dir);
	rmdir(path);
	rmdir(dir);
	assert_int_equal(r5_dicom_write_enhanced(&t->set, NULL, R5_DICOM_KIND_FLAG(R5_DICOM_MAGNITUDE),
						 "/proc/no/such/place", &n),
			 R5_EIO);
	free_set(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uid_format),          cmocka_unit_test(test_ds_format),
		cmocka_unit_test(test_structure),           cmocka_unit_test(test_geometry_oblique_2d),
		cmocka_unit_test(test_geometry_oblique_3d), cmocka_unit_test(test_request_and_cleanup),
		cmocka_unit_test(test_bad_input),           cmocka_unit_test(test_write_set_files),
		cmocka_unit_test(test_sequence_encoding),   cmocka_unit_test(test_enhanced_3d),
		cmocka_unit_test(test_enhanced_2d_stack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
