/* Non-Cartesian scans (recon/io/scan.h): ISMRMRD acquisitions with traj -> spokes in arrival
 * order ([1, n_read, n_spokes, coils] and [3, n_read, n_spokes]), the builder's spoke accessors
 * and byte count; every refusal (trajectory missing, trajectory_dimensions not 2/3 or changing,
 * a coordinate out of the encoded range, spokes of different lengths, a Cartesian scan that
 * turns non-Cartesian, more than one slice); BART .cfl + trajectory; r5_recon_run dispatch
 * (auto -> grid, frames in dim 10, pipelines that do not take the scan, grid on a Cartesian
 * scan, frame_spokes beyond the scan, a radial header without trajectory); the memory
 * estimate. */
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

#include "recon/io/cfl.h"
#include "recon/io/scan.h"
#include "recon/linop/traj.h"
#include "recon/pipeline/memory_estimate.h"
#include "recon/pipeline/pipeline.h"

#include "cpu_fixture.h"

#define N 32       /* encoded matrix */
#define READ 64    /* 2x oversampled spokes */
#define SPOKES 40
#define COILS 3
#define PI 3.14159265358979323846

static char xml[2048];

static const char *radial_xml_described(const char *trajectory, const char *description)
{
	snprintf(xml, sizeof xml,
		 "<?xml version=\"1.0\"?><ismrmrdHeader xmlns=\"http://www.ismrm.org/ISMRMRD\">"
		 "<acquisitionSystemInformation><receiverChannels>%d</receiverChannels></acquisitionSystemInformation>"
		 "<encoding><encodedSpace><matrixSize><x>%d</x><y>%d</y><z>1</z></matrixSize><fieldOfView_mm><x>200</x>"
		 "<y>200</y><z>5</z></fieldOfView_mm></encodedSpace><reconSpace><matrixSize><x>%d</x><y>%d</y><z>1</z>"
		 "</matrixSize><fieldOfView_mm><x>200</x><y>200</y><z>5</z></fieldOfView_mm></reconSpace>"
		 "<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>%d</maximum><center>0</center>"
		 "</kspace_encoding_step_1></encodingLimits><trajectory>%s</trajectory>%s</encoding></ismrmrdHeader>",
		 COILS, N, N, N, N, SPOKES - 1, trajectory, description);
	return xml;
}

static const char *radial_xml(const char *trajectory) { return radial_xml_described(trajectory, ""); }

static ISMRMRD_AcquisitionHeader spoke_head(long spoke, int samples, int traj_dims)
{
	ISMRMRD_AcquisitionHeader h;
	ismrmrd_init_acquisition_header(&h);
	h.number_of_samples = (uint16_t)samples;
	h.active_channels = h.available_channels = COILS;
	h.trajectory_dimensions = (uint16_t)traj_dims;
	h.center_sample = (uint16_t)(samples / 2);
	h.sample_time_us = 2.5f;
	h.idx.kspace_encode_step_1 = (uint16_t)spoke;
	h.scan_counter = (uint32_t)(1000 + spoke);
	h.read_dir[0] = h.phase_dir[1] = h.slice_dir[2] = 1.0f;
	h.position[2] = 7.0f;
	return h;
}

/* golden-angle spoke s: k = (i - READ/2) N / READ along angle s * 111.25 deg; traj_dims floats
 * per sample; data[c][i] = a smooth function of k (a Gaussian blob's transform) + a tag */
static void make_spoke(long s, int traj_dims, float *traj, float complex *data, int samples)
{
	double a = (double)s * 111.246117975 * PI / 180.0;
	for (int i = 0; i < samples; i++) {
		double r = (double)(i - samples / 2) * (double)N / (double)samples;
		double kx = r * cos(a), ky = r * sin(a);
		traj[traj_dims * i] = (float)kx;
		traj[traj_dims * i + 1] = (float)ky;
		if (traj_dims == 3)
			traj[traj_dims * i + 2] = 0.0f;
		for (int c = 0; c < COILS; c++)
			data[c * samples + i] =
				(float complex)((1.0 + 0.1 * c) * exp(-0.02 * (kx * kx + ky * ky)) * cexp(0.3 * I * c));
	}
}

/* adds spokes first..first+n-1; returns the first status that is not R5_OK */
static r5_status add_spokes(r5_scan_builder *b, long first, long n, int traj_dims)
{
	float traj[3 * READ];
	float complex data[COILS * READ];
	for (long s = first; s < first + n; s++) {
		ISMRMRD_AcquisitionHeader h = spoke_head(s, READ, traj_dims);
		make_spoke(s, traj_dims, traj, data, READ);
		r5_status st = r5_scan_builder_add(b, &h, data, traj);
		if (st != R5_OK)
			return st;
	}
	return R5_OK;
}

static r5_scan *radial_scan(void)
{
	const char *x = radial_xml("radial");
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	assert_int_equal(add_spokes(b, 0, SPOKES, 2), R5_OK);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	return scan;
}

static void test_spokes_kept(void **state)
{
	(void)state;
	const char *x = radial_xml("radial");
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	long bytes0 = r5_scan_builder_bytes(b);
	/* a noise scan first: kept apart */
	ISMRMRD_AcquisitionHeader noise = spoke_head(0, 16, 0);
	ismrmrd_set_flag(&noise.flags, ISMRMRD_ACQ_IS_NOISE_MEASUREMENT);
	float complex noise_data[COILS * 16];
	for (int i = 0; i < COILS * 16; i++)
		noise_data[i] = (float)(i % 7) - 3.0f;
	assert_int_equal(r5_scan_builder_add(b, &noise, noise_data, NULL), R5_OK);
	assert_int_equal(r5_scan_builder_is_noncartesian(b), 0);
	assert_int_equal(add_spokes(b, 0, 10, 2), R5_OK);
	assert_int_equal(r5_scan_builder_is_noncartesian(b), 1);
	long n_read = 0, coils = 0;
	assert_int_equal(r5_scan_builder_spoke_count(b, &n_read, &coils), 10);
	assert_int_equal(n_read, READ);
	assert_int_equal(coils, COILS);
	assert_true(r5_scan_builder_bytes(b) >= bytes0 + 10L * READ * (COILS * 8 + 12));
	assert_null(r5_scan_builder_peek(b)->kspace); /* spokes are read through the accessor */
	/* spokes 3..5 as they came */
	long dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
	dims[1] = READ, dims[2] = 3, dims[3] = COILS;
	r5_array *part = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &part), R5_OK);
	float coords[3 * READ * 3], traj[3 * READ];
	float complex data[COILS * READ];
	assert_int_equal(r5_scan_builder_spokes(b, 3, 3, part, coords), R5_OK);
	make_spoke(4, 3, traj, data, READ);
	for (int i = 0; i < READ; i++) {
		assert_true(coords[3 * (READ + i)] == traj[3 * i] && coords[3 * (READ + i) + 1] == traj[3 * i + 1]);
		assert_true(coords[3 * (READ + i) + 2] == 0.0f);
		for (int c = 0; c < COILS; c++)
			assert_true(part->data[i + READ * (1 + 3 * c)] == data[c * READ + i]);
	}
	assert_int_equal(r5_scan_builder_spokes(b, 8, 3, part, NULL), R5_EINVAL); /* only 10 came */
	r5_array_free(part);
	assert_int_equal(add_spokes(b, 10, SPOKES - 10, 2), R5_OK);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	const r5_array *k = scan->kspace, *t = scan->traj;
	assert_non_null(t);
	assert_int_equal(k->dims[0], 1);
	assert_int_equal(k->dims[1], READ);
	assert_int_equal(k->dims[2], SPOKES);
	assert_int_equal(k->dims[3], COILS);
	assert_int_equal(t->dims[0], 3);
	assert_int_equal(t->dims[1], READ);
	assert_int_equal(t->dims[2], SPOKES);
	assert_int_equal(scan->readout_oversampling, 2);
	assert_int_equal(scan->n_acquisitions, SPOKES);
	assert_non_null(scan->noise);
	assert_int_equal(scan->noise->dims[0], 16);
	/* spoke 17 coil 2, BART layout */
	make_spoke(17, 3, traj, data, READ);
	for (int i = 0; i < READ; i++) {
		assert_true(k->data[i + READ * (17 + SPOKES * 2)] == data[2 * READ + i]);
		assert_true(crealf(t->data[3 * (i + READ * 17) + 1]) == traj[3 * i + 1]);
		assert_true(cimagf(t->data[3 * (i + READ * 17)]) == 0.0f);
	}
	assert_true(scan->geometry[0].present && scan->geometry[0].position[2] == 7.0f);
	r5_scan_free(scan);
}

static void expect(r5_status got, r5_status want, const char *text);

/* adds spokes first..first+n-1 without traj (trajectory_dimensions 0) */
static r5_status add_spokes_no_traj(r5_scan_builder *b, long first, long n)
{
	float traj[3 * READ];
	float complex data[COILS * READ];
	for (long s = first; s < first + n; s++) {
		ISMRMRD_AcquisitionHeader h = spoke_head(s, READ, 0);
		make_spoke(s, 2, traj, data, READ);
		r5_status st = r5_scan_builder_add(b, &h, data, NULL);
		if (st != R5_OK)
			return st;
	}
	return R5_OK;
}

/* r5_scan_builder_release_spokes: a stream 10x longer than the budget holds (1 MiB, about 455
 * spokes) goes through when each batch's due windows (13 spokes every 7, as realtime's) are read
 * and the spokes before the next window released: windows keep their absolute spoke numbers and
 * contents, the bytes held fall at a release and stay bounded, a released spoke is refused, and
 * so is finish; without releases the same stream hits the budget. */
static void test_release_spokes(void **state)
{
	(void)state;
	const char *x = radial_xml("radial");
	r5_scan_limits limits = {.max_kspace_bytes = 1L << 20};
	const long per_spoke = READ * (COILS * 8 + 12), total = 10 * (1L << 20) / per_spoke, fs = 13, step = 7;
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(x, strlen(x), &limits, &b), R5_OK);
	assert_int_equal(r5_scan_builder_release_spokes(b, 5), R5_OK); /* nothing came yet: nothing happens */
	long dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
	dims[1] = READ, dims[2] = fs, dims[3] = COILS;
	r5_array *window = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &window), R5_OK);
	float *coords = malloc(sizeof *coords * 3 * READ * fs), traj[3 * READ];
	float complex data[COILS * READ];
	assert_non_null(coords);
	long next = 0, max_bytes = 0, falls = 0, frames = 0;
	for (long first = 0, n = 0; first < total; first += n) {
		n = first == 0 ? 150 : first + 10 <= total ? 10 : total - first; /* one big batch, then 10s */
		assert_int_equal(add_spokes(b, first, n, 2), R5_OK);
		long held = r5_scan_builder_bytes(b);
		if (first > 0)
			max_bytes = held > max_bytes ? held : max_bytes;
		for (; next * step + fs <= first + n; next++, frames++) {
			assert_int_equal(r5_scan_builder_spokes(b, next * step, fs, window, coords), R5_OK);
			long s = next * step + fs - 1; /* the window's last spoke, checked in full */
			make_spoke(s, 3, traj, data, READ);
			for (int i = 0; i < READ; i++) {
				assert_true(coords[3 * (READ * (fs - 1) + i) + 1] == traj[3 * i + 1]);
				for (int c = 0; c < COILS; c++)
					assert_true(window->data[i + READ * (fs - 1 + fs * c)] == data[c * READ + i]);
			}
		}
		assert_int_equal(r5_scan_builder_release_spokes(b, next * step), R5_OK);
		falls += r5_scan_builder_bytes(b) < held;
	}
	assert_int_equal(r5_scan_builder_spoke_count(b, NULL, NULL), total); /* released ones still count */
	assert_int_equal(frames, (total - fs) / step + 1);
	assert_true(falls > 0);
	/* after the big batch went: the 64-spoke minimum buffer (a window and a batch fit), small parts */
	assert_true(max_bytes <= 64 * per_spoke + 65536);
	expect(r5_scan_builder_spokes(b, next * step - 1, 2, NULL, coords), R5_EINVAL, "released");
	assert_int_equal(r5_scan_builder_release_spokes(b, 3), R5_OK); /* below what went: nothing happens */
	assert_int_equal(r5_scan_builder_spokes(b, next * step, 1, NULL, coords), R5_OK);
	assert_int_equal(r5_scan_builder_release_spokes(b, total + 100), R5_OK); /* beyond: all of them */
	expect(r5_scan_builder_spokes(b, total - 1, 1, NULL, coords), R5_EINVAL, "released");
	assert_int_equal(add_spokes(b, total, 1, 2), R5_OK); /* spoke number total: its own number */
	assert_int_equal(r5_scan_builder_spokes(b, total, 1, NULL, coords), R5_OK);
	make_spoke(total, 3, traj, data, READ);
	assert_true(coords[3 * (READ - 1) + 1] == traj[3 * (READ - 1) + 1]);
	r5_scan *scan = NULL;
	expect(r5_scan_builder_finish(b, &scan), R5_EINVAL, "released");
	assert_null(scan);
	/* the same stream without releases: the budget refuses it */
	b = NULL;
	assert_int_equal(r5_scan_builder_create(x, strlen(x), &limits, &b), R5_OK);
	r5_status st = R5_OK;
	long added = 0;
	for (; added < total && st == R5_OK; added += 10)
		st = add_spokes(b, added, 10, 2);
	expect(st, R5_ENOMEM, "memory budget");
	assert_true(added < total / 5);
	r5_scan_builder_destroy(b);
	r5_array_free(window);
	free(coords);
}

/* the header says cartesian, the acquisitions carry 3D trajectories: a non-Cartesian scan */
static void test_cartesian_header_with_traj(void **state)
{
	(void)state;
	const char *x = radial_xml("cartesian");
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	assert_int_equal(add_spokes(b, 0, 5, 3), R5_OK);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	assert_non_null(scan->traj);
	assert_int_equal(scan->kspace->dims[2], 5);
	r5_scan_free(scan);
}

static void expect(r5_status got, r5_status want, const char *text)
{
	assert_int_equal(got, want);
	if (!strstr(r5_last_error(), text))
		fail_msg("message '%s' lacks '%s'", r5_last_error(), text);
}

/* A scan of n spokes without traj (trajectory_dimensions 0) under this header; its trajectory
 * [3, READ, n] or NULL with the status in *status. */
static r5_scan *header_traj_scan(const char *trajectory, const char *description, long n, r5_status *status)
{
	const char *x = radial_xml_described(trajectory, description);
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	*status = add_spokes_no_traj(b, 0, n);
	r5_scan *scan = NULL;
	if (*status == R5_OK)
		*status = r5_scan_builder_finish(b, &scan);
	else
		r5_scan_builder_destroy(b);
	return scan;
}

/* traj equals r5_traj_radial(kind, tiny, READ, n_set, 0, N/2) spoke for spoke (spoke s of the
 * scan against spoke s mod period of the set when period > 0) */
static void expect_traj(const r5_scan *scan, r5_traj_kind kind, int tiny, long n_set, long period)
{
	long n = scan->traj->dims[2];
	float *want = malloc(sizeof *want * 3 * READ * (size_t)(n_set > n ? n_set : n));
	assert_non_null(want);
	assert_int_equal(r5_traj_radial(kind, tiny, READ, period ? n_set : n, 0, N / 2.0, want), R5_OK);
	for (long s = 0; s < n; s++) {
		long w = period ? s % period : s;
		for (long j = 0; j < 3 * READ; j++)
			if (crealf(scan->traj->data[3 * READ * s + j]) != want[3 * READ * w + j])
				fail_msg("spoke %ld value %ld: %g, traj.h %g", s, j, (double)crealf(scan->traj->data[3 * READ * s + j]),
					 (double)want[3 * READ * w + j]);
	}
	free(want);
}

/* Trajectories from the header (scan.h): golden angle (identifier, or ISMRMRD's goldenangle
 * trajectory), tiny golden, an angle increment, a uniform set repeated; refusals. */
static void test_header_trajectory(void **state)
{
	(void)state;
	r5_status st = R5_OK;
	const char *golden = "<trajectoryDescription><identifier>radial_golden_angle</identifier></trajectoryDescription>";
	r5_scan *scan = header_traj_scan("radial", golden, SPOKES, &st);
	assert_int_equal(st, R5_OK);
	assert_int_equal(scan->traj->dims[1], READ);
	assert_int_equal(scan->readout_oversampling, 2);
	expect_traj(scan, R5_TRAJ_RADIAL_GOLDEN, 0, SPOKES, 0);
	r5_scan_free(scan);
	scan = header_traj_scan("goldenangle", "", 7, &st); /* ISMRMRD's own trajectory name says enough */
	assert_int_equal(st, R5_OK);
	expect_traj(scan, R5_TRAJ_RADIAL_GOLDEN, 0, 7, 0);
	r5_scan_free(scan);
	scan = header_traj_scan("radial", "<trajectoryDescription><identifier>radial_tiny_golden_angle</identifier>"
				"<userParameterLong><name>tiny_golden_index</name><value>7</value></userParameterLong>"
				"</trajectoryDescription>", 9, &st);
	assert_int_equal(st, R5_OK);
	expect_traj(scan, R5_TRAJ_RADIAL_TINY_GOLDEN, 7, 9, 0);
	r5_scan_free(scan);
	scan = header_traj_scan("radial", "<trajectoryDescription><identifier>radial</identifier><userParameterDouble>"
				"<name>angle_increment_deg</name><value>111.2461180</value></userParameterDouble>"
				"</trajectoryDescription>", 5, &st);
	assert_int_equal(st, R5_OK);
	expect_traj(scan, R5_TRAJ_RADIAL_GOLDEN, 0, 5, 0);
	r5_scan_free(scan);
	/* a uniform set of 10 over 180 degrees, acquired twice: spoke 12 is spoke 2 again */
	scan = header_traj_scan("radial", "<trajectoryDescription><identifier>radial_uniform</identifier>"
				"<userParameterLong><name>spokes</name><value>10</value></userParameterLong>"
				"</trajectoryDescription>", 20, &st);
	assert_int_equal(st, R5_OK);
	expect_traj(scan, R5_TRAJ_RADIAL_UNIFORM, 0, 10, 10);
	r5_scan_free(scan);
	scan = header_traj_scan("radial", "<trajectoryDescription><identifier>radial</identifier><userParameterDouble>"
				"<name>angle_increment_deg</name><value>18</value></userParameterDouble>"
				"</trajectoryDescription>", 20, &st);
	assert_int_equal(st, R5_OK);
	expect_traj(scan, R5_TRAJ_RADIAL_UNIFORM, 0, 10, 10);
	r5_scan_free(scan);
	/* refusals: trajectory missing, naming why */
	struct {
		const char *trajectory, *description, *words;
	} bad[] = {
		{"radial", "", "no trajectoryDescription"},
		{"spiral", "", "only radial and goldenangle"},
		{"radial", "<trajectoryDescription><identifier>HargreavesVDS2000</identifier></trajectoryDescription>",
		 "not one recon5t computes"},
		{"radial", "<trajectoryDescription><identifier>radial_tiny_golden_angle</identifier></trajectoryDescription>",
		 "tiny_golden_index"},
		{"radial", "<trajectoryDescription><identifier>radial</identifier><userParameterDouble><name>"
			   "angle_increment_deg</name><value>50</value></userParameterDouble></trajectoryDescription>",
		 "50 degrees"},
		{"radial", "<trajectoryDescription><identifier>radial_golden_angle</identifier><userParameterDouble><name>"
			   "angle_increment_deg</name><value>23.6</value></userParameterDouble></trajectoryDescription>",
		 "disagrees"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		scan = header_traj_scan(bad[i].trajectory, bad[i].description, 3, &st);
		assert_null(scan);
		expect(st, R5_EINVAL, "trajectory missing");
		expect(st, R5_EINVAL, bad[i].words);
	}
	/* a non-square encoded matrix: the computed spokes would leave the y range (R5_ENOTSUP) */
	char wide[sizeof xml], *y = NULL;
	snprintf(wide, sizeof wide, "%s", radial_xml_described("radial", golden));
	char tag[32];
	snprintf(tag, sizeof tag, "<y>%d</y>", N);
	assert_non_null(y = strstr(wide, tag));
	memmove(y + 4, y + strlen(tag) - 4, strlen(y + strlen(tag) - 4) + 1); /* <y>N</y> -> <y>2</y> */
	y[3] = '2';
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(wide, strlen(wide), NULL, &b), R5_OK);
	expect(add_spokes_no_traj(b, 0, 1), R5_ENOTSUP, "square encoded matrix");
	r5_scan_builder_destroy(b);
	/* a spoke that carries traj after header-computed ones: refused */
	const char *x = radial_xml_described("radial", golden);
	b = NULL;
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	assert_int_equal(add_spokes_no_traj(b, 0, 3), R5_OK);
	expect(add_spokes(b, 3, 1, 2), R5_EINVAL, "throughout");
	r5_scan_builder_destroy(b);
}

static void test_refusals(void **state)
{
	(void)state;
	const char *x = radial_xml("radial");
	r5_scan_builder *b = NULL;
	float traj[3 * READ];
	float complex data[COILS * READ];
	ISMRMRD_AcquisitionHeader h;

	/* trajectory missing: a radial header, an acquisition without traj */
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	h = spoke_head(0, READ, 0);
	make_spoke(0, 2, traj, data, READ);
	expect(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL, "trajectory missing");
	assert_non_null(strstr(r5_last_error(), "scan_counter 1000"));
	h = spoke_head(0, READ, 2);
	expect(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL, "no traj array");
	r5_scan_builder_destroy(b);

	/* trajectory_dimensions 1, and 4 */
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	h = spoke_head(0, READ, 1);
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "trajectory_dimensions 1");
	r5_scan_builder_destroy(b);

	/* trajectory_dimensions changing, and a spoke without one after spokes with */
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	assert_int_equal(add_spokes(b, 0, 3, 2), R5_OK);
	expect(add_spokes(b, 3, 1, 3), R5_EINVAL, "trajectory_dimensions 3, earlier spokes had 2");
	h = spoke_head(4, READ, 0);
	expect(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL, "trajectory missing");
	/* spokes of different lengths */
	h = spoke_head(5, READ / 2, 2);
	make_spoke(5, 2, traj, data, READ / 2);
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "spokes of different lengths");
	assert_non_null(strstr(r5_last_error(), "a spoke of 32 samples, earlier spokes had 64"));
	/* a coordinate outside [-N/2, N/2]: names the acquisition, the dimension, the value, the range */
	h = spoke_head(6, READ, 2);
	make_spoke(6, 2, traj, data, READ);
	traj[2 * 9 + 1] = 16.5f;
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL,
	       "(scan_counter 1006): trajectory sample 9 has k1 = 16.5 cycles/FOV, outside [-16, 16]");
	traj[2 * 9 + 1] = NAN;
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "k1 = nan");
	/* exactly +N/2 is in range (BART trajectories end there) */
	traj[2 * 9 + 1] = 16.0f;
	assert_int_equal(r5_scan_builder_add(b, &h, data, traj), R5_OK);
	/* a second slice: not supported */
	h = spoke_head(7, READ, 2);
	h.idx.slice = 1;
	make_spoke(7, 2, traj, data, READ);
	expect(r5_scan_builder_add(b, &h, data, traj), R5_ENOTSUP, "more than one slice");
	r5_scan_builder_destroy(b);

	/* stack of stars: a 2D trajectory in a 3D encoded matrix */
	char *stars = strdup(x), *z = strstr(stars, "<z>1</z>");
	assert_non_null(z);
	memcpy(z, "<z>8</z>", 8);
	assert_int_equal(r5_scan_builder_create(stars, strlen(stars), NULL, &b), R5_OK);
	expect(add_spokes(b, 0, 1, 2), R5_ENOTSUP, "stack-of-stars scans are not supported yet");
	r5_scan_builder_destroy(b);
	free(stars);

	/* a Cartesian scan (no trajectories) then a spoke */
	const char *cart = radial_xml("cartesian");
	assert_int_equal(r5_scan_builder_create(cart, strlen(cart), NULL, &b), R5_OK);
	h = spoke_head(0, N, 0);
	h.idx.kspace_encode_step_1 = 3;
	assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_OK);
	expect(add_spokes(b, 1, 1, 2), R5_EINVAL, "Cartesian or non-Cartesian throughout");
	r5_scan_builder_destroy(b);

	/* the memory budget counts spokes */
	r5_scan_limits limits = {.max_kspace_bytes = 20L * READ * COILS * 8};
	assert_int_equal(r5_scan_builder_create(x, strlen(x), &limits, &b), R5_OK);
	expect(add_spokes(b, 0, SPOKES, 2), R5_ENOMEM, "exceed the memory budget");
	r5_scan_builder_destroy(b);
}

static void write_cfl(const char *path, const long dims[R5_DIMS], const float complex *values)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_OK);
	memcpy(a->data, values, sizeof(float complex) * (size_t)r5_array_size(a));
	assert_int_equal(r5_cfl_write(path, a), R5_OK);
	r5_array_free(a);
}

static void test_cfl_traj(void **state)
{
	(void)state;
	r5_scan *ref = radial_scan();
	const char *kp = "/tmp/r5_test_nc_ksp.cfl", *tp = "/tmp/r5_test_nc_traj.cfl", *bad = "/tmp/r5_test_nc_bad.cfl";
	write_cfl(kp, ref->kspace->dims, ref->kspace->data);
	write_cfl(tp, ref->traj->dims, ref->traj->data);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_from_cfl_traj(kp, tp, &scan), R5_OK);
	assert_int_equal(scan->header.enc_matrix[0], N); /* max |k| = 16 */
	assert_int_equal(scan->header.enc_matrix[1], N);
	assert_int_equal(scan->header.enc_matrix[2], 1);
	assert_memory_equal(scan->traj->data, ref->traj->data, sizeof(float complex) * (size_t)r5_array_size(ref->traj));
	r5_scan_free(scan);
	/* a trajectory of other spokes */
	long dims[R5_DIMS];
	r5_dims_copy(dims, ref->traj->dims);
	dims[2] = SPOKES - 1;
	write_cfl(bad, dims, ref->traj->data);
	expect(r5_scan_from_cfl_traj(kp, bad, &scan), R5_EINVAL, "n_read and n_spokes must match");
	assert_null(scan);
	/* a k-space given as trajectory: dims [1 ...] */
	expect(r5_scan_from_cfl_traj(kp, kp, &scan), R5_EINVAL, "a BART trajectory is [3 n_read n_spokes]");
	/* complex coordinates */
	r5_array *t = NULL;
	assert_int_equal(r5_array_alloc_host(ref->traj->dims, &t), R5_OK);
	memcpy(t->data, ref->traj->data, sizeof(float complex) * (size_t)r5_array_size(t));
	t->data[3 * 5 + 1] += 0.5f * I;
	assert_int_equal(r5_cfl_write(bad, t), R5_OK);
	expect(r5_scan_from_cfl_traj(kp, bad, &scan), R5_EINVAL, "imaginary parts 0");
	r5_array_free(t);
	unlink(kp), unlink(tp), unlink(bad);
	unlink("/tmp/r5_test_nc_ksp.hdr"), unlink("/tmp/r5_test_nc_traj.hdr"), unlink("/tmp/r5_test_nc_bad.hdr");
	r5_scan_free(ref);
}

static void test_recon_dispatch(void **state)
{
	(void)state;
	r5_scan *scan = radial_scan();
	r5_image_set *set = NULL;
	/* auto -> sense (one frame, several coils: NLINV maps + CG-SENSE), on the encoded matrix */
	assert_int_equal(r5_recon_run(ctx, scan, NULL, NULL, &set), R5_OK);
	assert_string_equal(set->pipeline, "sense");
	assert_int_equal(set->images->dims[0], N);
	assert_int_equal(set->images->dims[1], N);
	assert_int_equal(set->images->dims[10], 1);
	/* the blob's transform exp(-0.02 |k|^2) peaks at the centre of the image */
	long peak = 0;
	for (long i = 0; i < N * N; i++)
		if (cabsf(set->images->data[i]) > cabsf(set->images->data[peak]))
			peak = i;
	assert_int_equal(peak, N / 2 + N * (N / 2));
	/* delay=ring (grid's key): the data have no gradient delay, so the estimate and the change
	 * are small */
	r5_image_set_free(set);
	r5_recon_params q = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&q, "pipeline", "grid"), R5_OK);
	assert_int_equal(r5_recon_run(ctx, scan, &q, NULL, &set), R5_OK);
	r5_image_set *delayed = NULL;
	assert_int_equal(r5_recon_params_set(&q, "delay", "ring"), R5_OK);
	assert_int_equal(r5_recon_run(ctx, scan, &q, NULL, &delayed), R5_OK);
	double diff = 0, ref = 0;
	for (long i = 0; i < N * N; i++) {
		double d = cabsf(delayed->images->data[i] - set->images->data[i]), a = cabsf(set->images->data[i]);
		diff += d * d;
		ref += a * a;
	}
	print_message("delay=ring on delay-free spokes: relative change %.4f\n", sqrt(diff / ref));
	assert_true(sqrt(diff / ref) < 0.05);
	r5_image_set_free(delayed);
	r5_image_set_free(set);
	/* frames of 10 spokes every 5: 7 frames in dim 10 */
	r5_recon_params p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "frame_spokes", "10"), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "frame_step", "5"), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "combine", "adaptive"), R5_OK);
	assert_int_equal(r5_recon_run(ctx, scan, &p, NULL, &set), R5_OK);
	assert_int_equal(set->images->dims[10], 7);
	r5_image_set_free(set);
	double bytes = 0;
	assert_int_equal(r5_recon_memory_estimate(scan, &p, &bytes), R5_OK);
	assert_true(bytes > (double)r5_array_size(scan->kspace) * 8);
	/* density none and pipe run; frames larger than the scan are refused */
	assert_int_equal(r5_recon_params_set(&p, "dcf", "pipe"), R5_OK);
	assert_int_equal(r5_recon_run(ctx, scan, &p, NULL, &set), R5_OK);
	r5_image_set_free(set);
	assert_int_equal(r5_recon_params_set(&p, "frame_spokes", "41"), R5_OK);
	expect(r5_recon_run(ctx, scan, &p, NULL, &set), R5_EINVAL, "frame_spokes=41 is more than the scan's 40 spokes");
	assert_null(set);
	assert_int_equal(r5_recon_params_set(&p, "dcf", "bogus"), R5_EINVAL);
	/* a key grid does not read, a pipeline that does not take the scan */
	p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "pipeline", "grid"), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "maps", "2"), R5_OK);
	expect(r5_recon_run(ctx, scan, &p, NULL, &set), R5_EINVAL, "does not apply to pipeline grid");
	p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "pipeline", "grappa"), R5_OK);
	expect(r5_recon_run(ctx, scan, &p, NULL, &set), R5_ENOTSUP, "does not take a non-Cartesian scan");
	/* a radial header on a scan without trajectory */
	r5_array *traj = scan->traj;
	scan->traj = NULL;
	expect(r5_recon_run(ctx, scan, NULL, NULL, &set), R5_EINVAL, "trajectory missing");
	scan->traj = traj;
	r5_scan_free(scan);
	/* grid on a Cartesian scan */
	const char *cart = radial_xml("cartesian");
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(cart, strlen(cart), NULL, &b), R5_OK);
	float complex data[COILS * N];
	for (int i = 0; i < COILS * N; i++)
		data[i] = 1.0f;
	for (int y = 0; y < N / 2; y++) { /* k1 centre 0 in the header: rows 16..31 */
		ISMRMRD_AcquisitionHeader h = spoke_head(y, N, 0);
		assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_OK);
	}
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "pipeline", "grid"), R5_OK);
	expect(r5_recon_run(ctx, scan, &p, NULL, &set), R5_EINVAL, "for non-Cartesian scans");
	r5_scan_free(scan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spokes_kept),
		cmocka_unit_test(test_release_spokes),
		cmocka_unit_test(test_header_trajectory),
		cmocka_unit_test(test_cartesian_header_with_traj),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_cfl_traj),
		cmocka_unit_test(test_recon_dispatch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
