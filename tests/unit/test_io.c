/* recon/io unit tests: header parsing, BART cfl, the scan builder (placement, validation,
 * memory budget, noise, readout oversampling removal), ISMRMRD file round trips and bad files. */
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

#define PI 3.14159265358979323846

#include "recon/io/cfl.h"
#include "recon/io/header.h"
#include "recon/io/ismrmrd_images.h"
#include "recon/io/png.h"
#include "recon/io/scan.h"

/* header with encoded x = enc_x, recon x = rec_x, ny lines, channels (0: element left out) */
static char *make_xml(long enc_x, long rec_x, long ny, int channels, int with_ns)
{
	char *xml = malloc(8192);
	char ch[128] = "";
	if (channels > 0)
		snprintf(ch, sizeof ch, "<receiverChannels>%d</receiverChannels>", channels);
	snprintf(xml, 8192,
		 "<?xml version=\"1.0\"?>\n<ismrmrdHeader%s>"
		 "<subjectInformation><patientName>Doe^Jane</patientName><patientWeight_kg>61.5</patientWeight_kg>"
		 "<patientID>P123</patientID><patientGender>F</patientGender></subjectInformation>"
		 "<studyInformation><studyDate>2024-01-02</studyDate><studyTime>10:11:12</studyTime><studyID>S7</studyID>"
		 "<accessionNumber>A9</accessionNumber><referringPhysicianName>Dr^Who</referringPhysicianName>"
		 "<studyDescription>head</studyDescription><studyInstanceUID>1.2.3.4</studyInstanceUID></studyInformation>"
		 "<measurementInformation><measurementID>M1</measurementID><seriesDate>2024-01-02</seriesDate>"
		 "<patientPosition>HFS</patientPosition><initialSeriesNumber>5</initialSeriesNumber>"
		 "<protocolName>t1_se</protocolName><seriesDescription>ax t1</seriesDescription>"
		 "<seriesInstanceUIDRoot>1.2.3.5</seriesInstanceUIDRoot><frameOfReferenceUID>1.2.3.6</frameOfReferenceUID>"
		 "<sequenceName>se</sequenceName></measurementInformation>"
		 "<acquisitionSystemInformation><systemVendor>ACME</systemVendor><systemModel>X1</systemModel>"
		 "<systemFieldStrength_T>2.89</systemFieldStrength_T><relativeReceiverNoiseBandwidth>0.79</relativeReceiverNoiseBandwidth>"
		 "%s<institutionName>Lab</institutionName><stationName>MR1</stationName></acquisitionSystemInformation>"
		 "<experimentalConditions><H1resonanceFrequency_Hz>123200000</H1resonanceFrequency_Hz></experimentalConditions>"
		 "<encoding><encodedSpace><matrixSize><x>%ld</x><y>%ld</y><z>1</z></matrixSize>"
		 "<fieldOfView_mm><x>%ld</x><y>%ld</y><z>5</z></fieldOfView_mm></encodedSpace>"
		 "<reconSpace><matrixSize><x>%ld</x><y>%ld</y><z>1</z></matrixSize>"
		 "<fieldOfView_mm><x>%ld</x><y>%ld</y><z>5</z></fieldOfView_mm></reconSpace>"
		 "<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>%ld</maximum><center>%ld</center>"
		 "</kspace_encoding_step_1><slice><minimum>0</minimum><maximum>1</maximum><center>0</center></slice>"
		 "<average><minimum>0</minimum><maximum>1</maximum><center>0</center></average></encodingLimits>"
		 "<trajectory>cartesian</trajectory><parallelImaging><accelerationFactor><kspace_encoding_step_1>2"
		 "</kspace_encoding_step_1><kspace_encoding_step_2>1</kspace_encoding_step_2></accelerationFactor>"
		 "<calibrationMode>embedded</calibrationMode></parallelImaging></encoding>"
		 "<sequenceParameters><TR>500</TR><TR>600</TR><TE>12.5</TE><flipAngle_deg>90</flipAngle_deg>"
		 "<sequence_type>SpinEcho</sequence_type></sequenceParameters></ismrmrdHeader>",
		 with_ns ? " xmlns=\"http://www.ismrm.org/ISMRMRD\"" : "", ch, enc_x, ny, enc_x, ny, rec_x, ny, rec_x, ny,
		 ny - 1, ny / 2);
	return xml;
}

static void test_header_full(void **state)
{
	(void)state;
	for (int ns = 0; ns < 2; ns++) {
		char *xml = make_xml(512, 256, 192, 32, ns);
		r5_header h;
		assert_int_equal(r5_header_parse(xml, strlen(xml), &h), R5_OK);
		assert_string_equal(h.patient_name, "Doe^Jane");
		assert_string_equal(h.patient_sex, "F");
		assert_true(fabsf(h.patient_weight_kg - 61.5f) < 1e-6f);
		assert_string_equal(h.study_uid, "1.2.3.4");
		assert_string_equal(h.accession_number, "A9");
		assert_string_equal(h.referring_physician, "Dr^Who");
		assert_string_equal(h.series_uid, "1.2.3.5");
		assert_string_equal(h.frame_of_reference_uid, "1.2.3.6");
		assert_string_equal(h.patient_position, "HFS");
		assert_string_equal(h.sequence_name, "se");
		assert_int_equal(h.series_number, 5);
		assert_string_equal(h.vendor, "ACME");
		assert_string_equal(h.station, "MR1");
		assert_true(fabsf(h.field_T - 2.89f) < 1e-6f);
		assert_int_equal(h.n_channels, 32);
		assert_int_equal(h.larmor_hz, 123200000);
		assert_int_equal(h.enc_matrix[0], 512);
		assert_int_equal(h.enc_matrix[1], 192);
		assert_int_equal(h.recon_matrix[0], 256);
		assert_true(fabsf(h.enc_fov_mm[0] - 512.0f) < 1e-6f);
		assert_true(fabsf(h.tr_ms - 500.0f) < 1e-6f); /* first of the list */
		assert_true(fabsf(h.te_ms - 12.5f) < 1e-6f);
		assert_string_equal(h.sequence_type, "SpinEcho");
		assert_string_equal(h.trajectory, "cartesian");
		assert_int_equal(h.k1.present, 1);
		assert_int_equal(h.k1.max, 191);
		assert_int_equal(h.k1.center, 96);
		assert_int_equal(h.k2.present, 0);
		assert_int_equal(h.slice.max, 1);
		assert_int_equal(h.accel[0], 2);
		assert_string_equal(h.calib_mode, "embedded");
		assert_non_null(h.xml);
		r5_header copy;
		assert_int_equal(r5_header_copy(&copy, &h), R5_OK);
		assert_ptr_not_equal(copy.xml, h.xml);
		assert_string_equal(copy.xml, h.xml);
		r5_header_clear(&copy);
		r5_header_clear(&h);
		assert_null(h.xml);
		free(xml);
	}
}

static void test_header_errors(void **state)
{
	(void)state;
	r5_header h;
	const char *text = "this is not xml at all";
	assert_int_equal(r5_header_parse(text, strlen(text), &h), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "header is not ISMRMRD XML"));
	const char *other = "<foo/>";
	assert_int_equal(r5_header_parse(other, strlen(other), &h), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "ismrmrdHeader"));
	const char *no_enc = "<ismrmrdHeader xmlns=\"http://www.ismrm.org/ISMRMRD\"><version>1</version></ismrmrdHeader>";
	assert_int_equal(r5_header_parse(no_enc, strlen(no_enc), &h), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "encoding"));
	char *xml = make_xml(256, 256, 128, 8, 1);
	char *x = strstr(xml, "<x>256</x>");
	memcpy(x, "<x>2a6</x>", 10);
	assert_int_equal(r5_header_parse(xml, strlen(xml), &h), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "encoding/encodedSpace/matrixSize/x"));
	assert_null(strstr(r5_last_error(), "2a6")); /* the value is never echoed */
	assert_null(h.xml);
	free(xml);
}

static void test_cfl_roundtrip(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 5;
	dims[1] = 3;
	dims[3] = 2;
	r5_array *a = NULL, *b = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_OK);
	for (long i = 0; i < r5_array_size(a); i++)
		a->data[i] = (float)i - 0.5f * I * (float)i;
	char base[] = "/tmp/r5_test_io_cfl";
	assert_int_equal(r5_cfl_write(base, a), R5_OK);
	assert_int_equal(r5_cfl_read("/tmp/r5_test_io_cfl.cfl", &b), R5_OK);
	assert_true(r5_dims_equal(a->dims, b->dims));
	assert_memory_equal(a->data, b->data, sizeof(float complex) * 30);
	r5_array_free(b);
	/* a .cfl shorter than the .hdr says */
	FILE *f = fopen("/tmp/r5_test_io_cfl.cfl", "wb");
	fwrite(a->data, sizeof(float complex), 10, f);
	fclose(f);
	assert_int_equal(r5_cfl_read(base, &b), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "has 80 bytes"));
	assert_non_null(strstr(r5_last_error(), "need 240"));
	assert_null(b);
	assert_int_equal(r5_cfl_read("/tmp/r5_no_such_file", &b), R5_ENOTFOUND);
	/* absurd dims are refused before reading */
	f = fopen("/tmp/r5_test_io_cfl.hdr", "w");
	fprintf(f, "# Dimensions\n100000 100000 100000 64\n");
	fclose(f);
	assert_int_equal(r5_cfl_read(base, &b), R5_ERANGE);
	r5_array_free(a);
	unlink("/tmp/r5_test_io_cfl.cfl");
	unlink("/tmp/r5_test_io_cfl.hdr");
}

/* acquisition header for line k1 of slice s */
static ISMRMRD_AcquisitionHeader acq_head(int samples, int channels, int k1, int slice)
{
	ISMRMRD_AcquisitionHeader h;
	ismrmrd_init_acquisition_header(&h);
	h.number_of_samples = (uint16_t)samples;
	h.active_channels = h.available_channels = (uint16_t)channels;
	h.center_sample = (uint16_t)(samples / 2);
	h.sample_time_us = 5.0f;
	h.idx.kspace_encode_step_1 = (uint16_t)k1;
	h.idx.slice = (uint16_t)slice;
	h.scan_counter = (uint32_t)k1;
	h.position[2] = 10.0f * (float)slice;
	h.read_dir[0] = h.phase_dir[1] = h.slice_dir[2] = 1.0f;
	return h;
}

static void test_builder_placement(void **state)
{
	(void)state;
	const int nx = 8, ny = 6, nc = 2;
	char *xml = make_xml(nx, nx, ny, nc, 1);
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(xml, strlen(xml), NULL, &b), R5_OK);
	float complex data[16];
	/* out of order, slice 1 first; value encodes (k1, slice, channel, sample) */
	int order[] = {5, 0, 3, 1};
	for (int i = 0; i < 4; i++) {
		ISMRMRD_AcquisitionHeader h = acq_head(nx, nc, order[i], 1);
		for (int c = 0; c < nc; c++)
			for (int s = 0; s < nx; s++)
				data[c * nx + s] = (float)(100 * order[i] + 10 * c + s) + 1.0f * I;
		if (i == 2)
			ismrmrd_set_flag(&h.flags, ISMRMRD_ACQ_IS_REVERSE);
		assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_OK);
	}
	ISMRMRD_AcquisitionHeader noise = acq_head(4, nc, 0, 0);
	ismrmrd_set_flag(&noise.flags, ISMRMRD_ACQ_IS_NOISE_MEASUREMENT);
	for (int i = 0; i < 8; i++)
		data[i] = (float)i;
	assert_int_equal(r5_scan_builder_add(b, &noise, data, NULL), R5_OK);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	const r5_array *k = scan->kspace;
	assert_int_equal(k->dims[0], nx);
	assert_int_equal(k->dims[1], ny);
	assert_int_equal(k->dims[3], nc);
	assert_int_equal(k->dims[13], 2);
	assert_int_equal(k->dims[14], 2);
	/* centre 3 = ny/2: rows equal k1; line k1=3 came reversed */
	long s1 = k->strides[13];
	assert_true(cabsf(k->data[s1 + 5 * k->strides[1] + 1 * k->strides[3] + 2] - (512.0f + 1.0f * I)) < 1e-6f);
	assert_true(cabsf(k->data[s1 + 3 * k->strides[1] + 0 * k->strides[3] + 0] - (307.0f + 1.0f * I)) < 1e-6f);
	assert_true(cabsf(k->data[2 * k->strides[1]]) == 0.0f);
	long pos[R5_DIMS] = {0};
	pos[1] = 5;
	pos[13] = 1;
	assert_int_equal(scan->sampled[r5_scan_mask_index(scan, pos)], 1);
	assert_int_equal(scan->imaging[r5_scan_mask_index(scan, pos)], 1);
	pos[1] = 2;
	assert_int_equal(scan->sampled[r5_scan_mask_index(scan, pos)], 0);
	/* noise kept apart as [samples, coils] */
	assert_non_null(scan->noise);
	assert_int_equal(scan->noise->dims[0], 4);
	assert_int_equal(scan->noise->dims[3], nc);
	assert_true(cabsf(scan->noise->data[4 + 1] - 5.0f) < 1e-6f);
	assert_int_equal(scan->n_noise_acquisitions, 1);
	assert_int_equal(scan->geometry[1].present, 1);
	assert_true(fabsf(scan->geometry[1].position[2] - 10.0f) < 1e-6f);
	assert_int_equal(scan->geometry[0].present, 0);
	r5_scan_free(scan);
	free(xml);
}

static void test_builder_errors(void **state)
{
	(void)state;
	char *xml = make_xml(8, 8, 6, 4, 1);
	r5_scan_builder *b = NULL;
	float complex data[64] = {0};
	assert_int_equal(r5_scan_builder_create(xml, strlen(xml), NULL, &b), R5_OK);
	ISMRMRD_AcquisitionHeader h = acq_head(8, 2, 1, 0);
	h.scan_counter = 17;
	assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "(scan_counter 17) has 2 channels, header says 4"));
	h = acq_head(8, 4, 300, 0);
	assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "k1 = 300 outside encoded matrix 6"));
	h = acq_head(5, 4, 1, 0);
	h.center_sample = 0;
	assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "number_of_samples 5"));
	h = acq_head(8, 4, 1, 3);
	assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "slice 3 outside encodingLimits/slice 0..1"));
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_EINVAL); /* nothing imaging came */
	assert_non_null(strstr(r5_last_error(), "no imaging acquisition"));
	assert_null(scan);
	free(xml);
	/* channels from the data when the header has none: later mismatch named */
	xml = make_xml(8, 8, 6, 0, 1);
	assert_int_equal(r5_scan_builder_create(xml, strlen(xml), NULL, &b), R5_OK);
	h = acq_head(8, 4, 1, 0);
	assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_OK);
	h = acq_head(8, 3, 2, 0);
	assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "has 3 channels, earlier acquisitions had 4"));
	r5_scan_builder_destroy(b);
	free(xml);
}

static void test_builder_budget(void **state)
{
	(void)state;
	char *xml = make_xml(4096, 4096, 4096, 64, 1);
	char *z = strstr(xml, "<z>1</z>");
	char *big = malloc(strlen(xml) + 64);
	/* encodedSpace z = 4096 */
	size_t at = (size_t)(z - xml);
	memcpy(big, xml, at);
	strcpy(big + at, "<z>4096</z>");
	strcat(big, z + 8);
	r5_scan_builder *b = NULL;
	r5_scan_limits limits = {.max_kspace_bytes = 8L << 30};
	assert_int_equal(r5_scan_builder_create(big, strlen(big), &limits, &b), R5_ENOMEM);
	assert_null(b);
	assert_non_null(strstr(r5_last_error(), "matrix 4096x4096x4096 with 64 channels"));
	assert_non_null(strstr(r5_last_error(), "budget is 8.0 GiB"));
	free(big);
	free(xml);
}

/* A point at pixel offset p0 (of the non-oversampled grid n): oversampled readout of 2n samples
 * over twice the FOV, removed by the builder, equals the directly made n-sample k-space. */
static void test_oversampling_removal(void **state)
{
	(void)state;
	const int n = 64, ny = 4, nc = 2, p0 = 5;
	char *xml = make_xml(2 * n, n, ny, nc, 1);
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(xml, strlen(xml), NULL, &b), R5_OK);
	float complex data[2 * 64 * 2];
	for (int k1 = 0; k1 < ny; k1++) {
		ISMRMRD_AcquisitionHeader h = acq_head(2 * n, nc, k1, 0);
		for (int c = 0; c < nc; c++)
			for (int j = 0; j < 2 * n; j++) {
				/* k = (j - n) / (2 FOV): half the step; point at x = p0 * FOV / n */
				double phase = -2.0 * PI * (double)(j - n) * p0 / (2.0 * n);
				data[c * 2 * n + j] = (float)(c + 1) * (float)cos(phase) + (float)(c + 1) * (float)sin(phase) * I;
			}
		assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_OK);
	}
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	assert_int_equal(scan->kspace->dims[0], n);
	assert_int_equal(scan->readout_oversampling, 2);
	assert_true(fabsf(scan->acq_dwell_us - 10.0f) < 1e-6f);
	double err = 0, norm = 0;
	for (int c = 0; c < nc; c++)
		for (int j = 0; j < n; j++) {
			double phase = -2.0 * PI * (double)(j - n / 2) * p0 / n;
			double complex want = (c + 1) * (cos(phase) + sin(phase) * I);
			float complex got = scan->kspace->data[2 * scan->kspace->strides[1] + c * scan->kspace->strides[3] + j];
			err += pow(cabs(got - want), 2);
			norm += pow(cabs(want), 2);
		}
	assert_true(sqrt(err / norm) < 1e-5);
	r5_scan_free(scan);
	free(xml);
}

static void test_ismrmrd_file(void **state)
{
	(void)state;
	const char *path = "/tmp/r5_test_io.h5";
	unlink(path);
	const int nx = 16, ny = 8, nc = 3;
	char *xml = make_xml(nx, nx, ny, nc, 1);
	ISMRMRD_Dataset d;
	assert_int_equal(ismrmrd_init_dataset(&d, path, "dataset"), ISMRMRD_NOERROR);
	assert_int_equal(ismrmrd_open_dataset(&d, true), ISMRMRD_NOERROR);
	assert_int_equal(ismrmrd_write_header(&d, xml), ISMRMRD_NOERROR);
	ISMRMRD_Acquisition acq;
	ismrmrd_init_acquisition(&acq);
	for (int k1 = ny - 1; k1 >= 0; k1--) {
		acq.head = acq_head(nx, nc, k1, 0);
		acq.head.idx.average = (uint16_t)(k1 % 2);
		ismrmrd_make_consistent_acquisition(&acq);
		for (int i = 0; i < nx * nc; i++)
			acq.data[i] = (float)(k1 * 1000 + i);
		assert_int_equal(ismrmrd_append_acquisition(&d, &acq), ISMRMRD_NOERROR);
	}
	ismrmrd_cleanup_acquisition(&acq);
	ismrmrd_close_dataset(&d);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_read_ismrmrd(path, NULL, NULL, &scan), R5_OK);
	r5_array *k = scan->kspace;
	assert_int_equal(scan->n_acquisitions, ny);
	/* k1 = 5, average 1, channel 2, sample 3 */
	long at = 5 * k->strides[1] + 1 * k->strides[14] + 2 * k->strides[3] + 3;
	assert_true(cabsf(k->data[at] - (5000.0f + 2 * nx + 3)) < 1e-3f);
	assert_string_equal(scan->header.protocol_name, "t1_se");
	/* images round trip */
	r5_image_set set = {0};
	set.images = k;
	set.fov_mm[0] = set.fov_mm[1] = 200;
	assert_int_equal(r5_header_copy(&set.header, &scan->header), R5_OK);
	long dims[R5_DIMS];
	r5_dims_copy(dims, k->dims);
	assert_int_equal(r5_ismrmrd_write_array_images("/tmp/r5_test_io_img.h5", NULL, "images", k, &set), R5_OK);
	r5_array *back = NULL;
	assert_int_equal(r5_ismrmrd_read_images("/tmp/r5_test_io_img.h5", NULL, "images", &back), R5_OK);
	assert_true(r5_dims_equal(back->dims, k->dims));
	assert_memory_equal(back->data, k->data, sizeof(float complex) * (size_t)r5_array_size(k));
	r5_array_free(back);
	set.images = NULL;
	assert_int_equal(r5_ismrmrd_read_images("/tmp/r5_test_io_img.h5", NULL, "ground_truth", &back), R5_ENOTFOUND);
	r5_header_clear(&set.header);
	unlink("/tmp/r5_test_io_img.h5");
	r5_scan_free(scan);
	free(xml);
	unlink(path);
}

static void test_bad_files(void **state)
{
	(void)state;
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_read_ismrmrd("/tmp/r5_no_such.h5", NULL, NULL, &scan), R5_ENOTFOUND);
	assert_non_null(strstr(r5_last_error(), "/tmp/r5_no_such.h5"));
	const char *path = "/tmp/r5_test_io_random.h5";
	FILE *f = fopen(path, "wb");
	srand(7);
	for (int i = 0; i < 4096; i++)
		fputc(rand() & 0xff, f);
	fclose(f);
	assert_int_not_equal(r5_scan_read_ismrmrd(path, NULL, NULL, &scan), R5_OK);
	assert_non_null(strstr(r5_last_error(), "not an HDF5 file"));
	assert_null(scan);
	r5_array *img = NULL;
	assert_int_not_equal(r5_ismrmrd_read_images(path, NULL, "images", &img), R5_OK);
	unlink(path);
}

static void test_cfl_scan_and_png(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 1;
	dims[1] = 8;
	dims[2] = 6;
	dims[3] = 2;
	r5_array *k = NULL;
	assert_int_equal(r5_array_zeros(NULL, R5_HOST, dims, &k), R5_OK);
	k->data[3 + 2 * 8 + 8 * 6] = 1.0f; /* (y 3, z 2, coil 1) */
	assert_int_equal(r5_cfl_write("/tmp/r5_test_io_k", k), R5_OK);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_from_cfl("/tmp/r5_test_io_k.cfl", &scan), R5_OK);
	long pos[R5_DIMS] = {0};
	pos[1] = 3;
	pos[2] = 2;
	assert_int_equal(scan->sampled[r5_scan_mask_index(scan, pos)], 1);
	pos[2] = 1;
	assert_int_equal(scan->sampled[r5_scan_mask_index(scan, pos)], 0);
	assert_int_equal(scan->header.n_channels, 2);
	assert_int_equal(scan->header.enc_matrix[1], 8);
	r5_image_set set = {0};
	set.images = k;
	assert_int_equal(r5_png_write_set("/tmp/r5_test_io_png", &set), R5_OK);
	assert_int_equal(access("/tmp/r5_test_io_png/img_s0_c0_r0_p0.png", R_OK), 0);
	unlink("/tmp/r5_test_io_png/img_s0_c0_r0_p0.png");
	unlink("/tmp/r5_test_io_png/img_s0_c0_r0_p0.png");
	r5_scan_free(scan);
	r5_array_free(k);
	unlink("/tmp/r5_test_io_k.cfl");
	unlink("/tmp/r5_test_io_k.hdr");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_full),       cmocka_unit_test(test_header_errors),
		cmocka_unit_test(test_cfl_roundtrip),     cmocka_unit_test(test_builder_placement),
		cmocka_unit_test(test_builder_errors),    cmocka_unit_test(test_builder_budget),
		cmocka_unit_test(test_oversampling_removal), cmocka_unit_test(test_ismrmrd_file),
		cmocka_unit_test(test_bad_files),         cmocka_unit_test(test_cfl_scan_and_png),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
