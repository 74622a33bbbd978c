/* seq-report's numbers (recon/io/pulseq_report.c) on trajectories this test makes by hand, so
 * that the cases the shared files do not have are checked: Cartesian lines undersampled by 2 with
 * and without a fully sampled centre (lines acquired, R, the centre run, the sampling mask with
 * k1 = N/2 wrapped), EPI alternation, radial spokes with one angle missing and half of them read
 * backwards (angles modulo pi, the largest gap twice the even one, Nyquist's pi/2 N), centre-out
 * half spokes (modulo 2 pi, pi N), the JSON form (null where undefined) and the PNG's refusals.
 * k is in 1/m with a 1 m FOV, so cycles per FOV equal k. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recon/core/log.h"
#include "recon/io/pulseq_report.h"

#define PI 3.14159265358979323846

typedef struct maker {
	r5_seq_kspace ks;
	long cap_readouts, cap_samples;
} maker;

static void start(maker *m)
{
	memset(m, 0, sizeof *m);
	m->ks.fov_m[0] = m->ks.fov_m[1] = m->ks.fov_m[2] = 1.0;
	m->ks.n_slices = 1;
	m->ks.n_excitations = 1;
}

/* A straight readout of n samples from a to b (cycles), sample i at a + (b - a) i / (n - 1). */
static void readout(maker *m, long n, const double a[2], const double b[2])
{
	r5_seq_kspace *ks = &m->ks;
	if (ks->n_readouts == m->cap_readouts) {
		m->cap_readouts = m->cap_readouts ? 2 * m->cap_readouts : 64;
		ks->readouts = realloc(ks->readouts, sizeof *ks->readouts * (size_t)m->cap_readouts);
		assert_non_null(ks->readouts);
	}
	while (ks->n_samples + n > m->cap_samples) {
		m->cap_samples = m->cap_samples ? 2 * m->cap_samples : 4096;
		ks->k = realloc(ks->k, sizeof(double[3]) * (size_t)m->cap_samples);
		ks->t = realloc(ks->t, sizeof(double) * (size_t)m->cap_samples);
		assert_true(ks->k && ks->t);
	}
	r5_seq_readout *ro = &ks->readouts[ks->n_readouts++];
	memset(ro, 0, sizeof *ro);
	ro->first = ks->n_samples, ro->n = n, ro->dwell_s = 1e-5;
	for (long i = 0; i < n; i++) {
		double u = n > 1 ? (double)i / (double)(n - 1) : 0.0, *k = ks->k + 3 * (ks->n_samples + i);
		k[0] = a[0] + u * (b[0] - a[0]), k[1] = a[1] + u * (b[1] - a[1]), k[2] = 0.0;
		ks->t[ks->n_samples + i] = 1e-5 * (double)(ks->n_samples + i);
	}
	ks->n_samples += n;
}

static void report_of(const maker *m, r5_seq_report *r)
{
	r5_seq seq;
	memset(&seq, 0, sizeof seq);
	seq.major = 1, seq.minor = 4;
	assert_int_equal(r5_seq_report_compute("hand-made", &seq, &m->ks, R5_SEQ_REPORT_SIGNATURE_MISSING, r), R5_OK);
}

/* 32 x 32 Cartesian lines at k1 = -16..15, readout k0 = -16..15: every even line, plus the odd
 * ones with |k1| < 8 when `centre`; every other readout reversed when `epi`. */
static void cartesian(maker *m, int centre, int epi)
{
	start(m);
	for (int j = -16; j < 16; j++) {
		if (j % 2 && !(centre && abs(j) < 8))
			continue;
		int back = epi && m->ks.n_readouts % 2;
		double a[2] = {back ? 15 : -16, j}, b[2] = {back ? -16 : 15, j};
		readout(m, 32, a, b);
	}
}

static void test_undersampled_lines(void **state)
{
	maker m;
	r5_seq_report r;
	cartesian(&m, 1, 0);
	report_of(&m, &r);
	assert_int_equal(r.grid.kind, R5_SEQ_CARTESIAN);
	assert_int_equal(r.grid.matrix[0], 32);
	assert_int_equal(r.grid.matrix[1], 32);
	assert_int_equal(r.n_lines, 16 + 8);
	assert_int_equal(r.n_grid_lines, 32);
	assert_true(fabs(r.accel - 32.0 / 24.0) < 1e-12);
	assert_int_equal(r.centre_lines[0], 17); /* -8..8: +-8 are even lines */
	assert_true(r.centre_full);
	assert_false(r.readout_half_sample);
	assert_true(fabs(r.density - 24.0 * 32.0 / (32.0 * 31.0)) < 1e-12); /* k1 spans -16..14: 31 lines */
	assert_non_null(strstr(r.pipeline_text, "R 1.33"));
	assert_true(isnan(r.radial_accel));
	unsigned char mask[32];
	assert_int_equal(r5_seq_report_line_mask(&m.ks, &r.grid, mask), R5_OK);
	long ones = 0;
	for (int y = 0; y < 32; y++)
		ones += mask[y];
	assert_int_equal(ones, 24);
	assert_int_equal(mask[0], 1);  /* k1 = -16 */
	assert_int_equal(mask[16], 1); /* k1 = 0 */
	assert_int_equal(mask[16 + 9], 0);
	r5_seq_kspace_free(&m.ks);

	cartesian(&m, 0, 0);
	report_of(&m, &r);
	assert_int_equal(r.n_lines, 16);
	assert_true(fabs(r.accel - 2.0) < 1e-12);
	assert_int_equal(r.centre_lines[0], 1);
	assert_false(r.centre_full);
	assert_non_null(strstr(r.pipeline_text, "too narrow"));
	r5_seq_kspace_free(&m.ks);
}

static void test_epi_alternation(void **state)
{
	maker m;
	r5_seq_report r;
	cartesian(&m, 1, 1);
	report_of(&m, &r);
	assert_int_equal(r.grid.kind, R5_SEQ_EPI);
	assert_int_equal(r.grid.n_reversed, 12);
	assert_int_equal(r.n_lines, 24);
	assert_string_equal(r.pipeline, "cartesian");
	r5_seq_kspace_free(&m.ks);
}

/* 64 spokes through the centre, pi/64 apart, spoke 10 left out, odd spokes read backwards. */
static void test_radial_gap(void **state)
{
	maker m;
	r5_seq_report r;
	start(&m);
	for (int s = 0; s < 64; s++) {
		if (s == 10)
			continue;
		double angle = PI * s / 64.0, c = cos(angle), d = sin(angle), sign = s % 2 ? -1.0 : 1.0;
		double a[2] = {-32.0 * c * sign, -32.0 * d * sign}, b[2] = {31.5 * c * sign, 31.5 * d * sign};
		readout(&m, 128, a, b);
	}
	report_of(&m, &r);
	assert_int_equal(r.grid.kind, R5_SEQ_NONCARTESIAN);
	assert_true(r.radial);
	assert_int_equal(r.n_spokes, 63);
	assert_int_equal(r.n_angles, 63);
	assert_true(fabs(r.max_gap_rad - 2.0 * PI / 64.0) < 1e-9);
	assert_true(fabs(r.even_gap_rad - PI / 63.0) < 1e-12);
	assert_int_equal(r.grid.matrix[0], 64);
	assert_true(fabs(r.nyquist_spokes - PI / 2.0 * 64.0) < 1e-9);
	assert_true(fabs(r.radial_accel - PI / 2.0 * 64.0 / 63.0) < 1e-9);
	assert_true(isnan(r.accel));
	assert_string_equal(r.pipeline, "non-cartesian");
	/* JSON: numbers, and null for the lines of a non-Cartesian scan */
	char path[] = "/tmp/test_seq_report_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w+");
	assert_int_equal(r5_seq_report_write_json(f, &r), R5_OK);
	rewind(f);
	char text[8192];
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	unlink(path);
	assert_non_null(strstr(text, "\"lines\": null"));
	assert_non_null(strstr(text, "\"distinct_angles\": 63"));
	assert_non_null(strstr(text, "\"resolution_nominal_mm\": [15.625"));
	assert_non_null(strstr(text, "\"total_duration_s\": null"));
	/* the picture: a size outside 64..8192 is refused before anything is written */
	assert_int_equal(r5_seq_report_png("/tmp/never-written.png", &m.ks, &r.grid, 16), R5_EINVAL);
	assert_int_equal(access("/tmp/never-written.png", F_OK), -1);
	r5_seq_kspace_free(&m.ks);
}

/* 48 centre-out spokes 2 pi / 48 apart: angles modulo 2 pi, Nyquist pi N. */
static void test_half_spokes(void **state)
{
	maker m;
	r5_seq_report r;
	start(&m);
	for (int s = 0; s < 48; s++) {
		double angle = 2.0 * PI * s / 48.0, a[2] = {0.0, 0.0}, b[2] = {32.0 * cos(angle), 32.0 * sin(angle)};
		readout(&m, 64, a, b);
	}
	report_of(&m, &r);
	assert_true(r.radial);
	assert_int_equal(r.n_angles, 48);
	assert_true(fabs(r.max_gap_rad - 2.0 * PI / 48.0) < 1e-9);
	assert_true(fabs(r.nyquist_spokes - PI * 64.0) < 1e-9);
	r5_seq_kspace_free(&m.ks);
}

/* A 3D Cartesian grid, 16 x 8 x 6 (k2 = -3..2): lines per k1-k2, the centre runs along both, and
 * a picture of two panels (kx-ky, ky-kz) side by side. */
static void test_3d_and_png(void **state)
{
	maker m;
	r5_seq_report r;
	start(&m);
	for (int l = -3; l < 3; l++)
		for (int j = -4; j < 4; j++) {
			double a[2] = {-8, j}, b[2] = {7, j};
			long first = m.ks.n_samples;
			readout(&m, 16, a, b);
			for (long i = first; i < m.ks.n_samples; i++)
				m.ks.k[3 * i + 2] = l;
		}
	report_of(&m, &r);
	assert_false(r.two_d);
	assert_int_equal(r.n_axes, 3);
	assert_int_equal(r.grid.kind, R5_SEQ_CARTESIAN);
	assert_int_equal(r.grid.matrix[2], 6);
	assert_int_equal(r.n_lines, 48);
	assert_int_equal(r.n_grid_lines, 48);
	assert_int_equal(r.centre_lines[0], 8);
	assert_int_equal(r.centre_lines[1], 6);
	assert_true(r.centre_full); /* fewer than 12 lines, but every one of the grid */
	char path[] = "/tmp/test_seq_report_png_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(r5_seq_report_png(path, &m.ks, &r.grid, 128), R5_OK);
	unsigned char head[24];
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
	fclose(f);
	unlink(path);
	assert_memory_equal(head, "\x89PNG\r\n\x1a\n", 8);
	long width = (long)head[16] << 24 | (long)head[17] << 16 | head[18] << 8 | head[19];
	long height = (long)head[20] << 24 | (long)head[21] << 16 | head[22] << 8 | head[23];
	assert_int_equal(width, 256);
	assert_int_equal(height, 128);
	r5_seq_kspace_free(&m.ks);
}

int main(void)
{
	r5_log_set_level(R5_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_undersampled_lines),
		cmocka_unit_test(test_epi_alternation),
		cmocka_unit_test(test_radial_gap),
		cmocka_unit_test(test_half_spokes),
		cmocka_unit_test(test_3d_and_png),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
