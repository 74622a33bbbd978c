/* The trajectory of a Pulseq sequence (recon/io/pulseq_kspace.c): a sequence this test writes
 * (an excitation whose slice gradient runs past the pulse centre, a trapezoid prephaser, phase
 * encodes of known areas, a raster-shaped gradient on z, a trapezoid readout) against its
 * analytic k-space; the four files of ../shared/data/pulseq: the spin echo on the Cartesian grid
 * after the readout's half-sample offset, the EPI files alternating, the ramp-sampled one with
 * constant k1 per line, and the RAGA radial file's 377 spoke angles covering the half circle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon/core/log.h"
#include "recon/io/pulseq_kspace.h"
#include "text_fixture.h"

#define NX 16
#define NY 8
#define FOV 0.2 /* m: dk = 5 1/m */
#define PI 3.14159265358979323846

/* Line j: block 3j+1 a 9-degree block pulse (100 us, centre 50 us) with a gx trapezoid of
 * 1e5 Hz/m (rise 10, flat 80, fall 10 us: area 4.5 1/m after the centre); block 3j+2 the gx
 * prephaser (-4.5e5 Hz/m, 20/80/20 us: -45 1/m), the gy phase encode ((j - NY/2) 5e4 Hz/m, same
 * timing: (j - NY/2) 5 1/m) and gz shape 3 (1e5 Hz/m x {.25 .75 1 1 .75 .25} on the 10 us raster);
 * block 3j+3 the readout (5e5 Hz/m, 20/160/20 us) and the ADC (16 samples, 10 us, delay 20 us). */
static char *write_sequence(size_t *len)
{
	char *t = NULL;
	*len = 0;
	put(&t, len, "# written by test_pulseq_kspace\n\n[VERSION]\nmajor 1\nminor 4\nrevision 0\n\n");
	put(&t, len, "[DEFINITIONS]\nAdcRasterTime 1e-07\nBlockDurationRaster 1e-05\nFOV %g %g 0.005\n"
		     "GradientRasterTime 1e-05\nRadiofrequencyRasterTime 1e-06\n\n[BLOCKS]\n", FOV, FOV);
	for (int j = 0; j < NY; j++) {
		put(&t, len, "%d 10 1 1 0 0 0 0\n", 3 * j + 1);
		put(&t, len, "%d 12 0 2 %d 4 0 0\n", 3 * j + 2, 10 + j);
		put(&t, len, "%d 20 0 3 0 0 1 0\n", 3 * j + 3);
	}
	put(&t, len, "\n[RF]\n1 250 1 2 0 0 0 0\n\n[GRADIENTS]\n4 100000 3 0 0\n\n[TRAP]\n");
	put(&t, len, "1 100000 10 80 10 0\n2 -450000 20 80 20 0\n3 500000 20 160 20 0\n");
	for (int j = 0; j < NY; j++)
		put(&t, len, "%d %d 20 80 20 0\n", 10 + j, (j - NY / 2) * 50000);
	put(&t, len, "\n[ADC]\n1 %d 10000 20 0 0\n\n[SHAPES]\n\nshape_id 1\nnum_samples 100\n", NX);
	for (int i = 0; i < 100; i++)
		put(&t, len, "1\n");
	put(&t, len, "\nshape_id 2\nnum_samples 100\n");
	for (int i = 0; i < 100; i++)
		put(&t, len, "0\n");
	put(&t, len, "\nshape_id 3\nnum_samples 6\n0.25\n0.75\n1\n1\n0.75\n0.25\n\n");
	return t;
}

/* Area (1/m) of the polyline through (0, 0), the raster centres and the extrapolated last
 * corner, done by hand for shape 3: corners 0, .5, 1, 1, 1, .5, 0 give a last corner 0. */
static double shaped_area(void)
{
	const double t[8] = {0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6}, g[8] = {0, .25, .75, 1, 1, .75, .25, 0};
	double a = 0;
	for (int i = 1; i < 8; i++)
		a += 0.5 * (g[i] + g[i - 1]) * (t[i] - t[i - 1]);
	return a * 1e-5 * 1e5;
}

static void test_written_sequence(void **state)
{
	(void)state;
	size_t len;
	char *text = write_sequence(&len);
	r5_seq *seq = NULL;
	assert_int_equal(r5_seq_parse(text, len, "written.seq", &seq), R5_OK);
	r5_seq_kspace ks;
	assert_int_equal(r5_seq_kspace_compute(seq, &ks), R5_OK);
	assert_int_equal(ks.n_readouts, NY);
	assert_int_equal(ks.n_samples, NX * NY);
	assert_int_equal(ks.n_excitations, NY);
	assert_int_equal(ks.n_refocusing, 0);
	double err = 0, kz = shaped_area();
	for (int j = 0; j < NY; j++) {
		assert_int_equal(ks.readouts[j].n, NX);
		for (int n = 0; n < NX; n++) {
			/* 4.5 after the pulse centre, -45 prephaser, 5 readout ramp, 5 (n + 1/2) on the flat */
			double expect[3] = {4.5 - 45 + 5 + 5 * (n + 0.5), (j - NY / 2) * 5.0, kz};
			for (int d = 0; d < 3; d++)
				err = fmax(err, fabs(ks.k[3 * (ks.readouts[j].first + n) + d] - expect[d]));
			double t_expect = j * 420e-6 + 220e-6 + 20e-6 + (n + 0.5) * 10e-6;
			assert_true(fabs(ks.t[ks.readouts[j].first + n] - t_expect) < 1e-12);
		}
	}
	print_message("written sequence: max |k - analytic| %.3g 1/m (k up to %.1f 1/m)\n", err, 45.0);
	assert_true(err < 45.0 * 6e-8); /* single precision of the largest k */
	r5_seq_grid g;
	r5_seq_kspace_grid(&ks, &g);
	/* cycles: k0 = 0.2 (4.5 - 40 + 5 n + 2.5) = n - 6.6: offset 0.4 */
	assert_int_equal(g.kind, R5_SEQ_CARTESIAN);
	assert_true(fabs(g.offset[0] - 0.4) < 1e-9);
	assert_true(fabs(g.offset[1]) < 1e-9);
	assert_true(g.max_grid_error < 1e-9);
	r5_seq_kspace_free(&ks);
	r5_seq_free(seq);
	free(text);
}

static r5_seq *shared_seq(const char *name)
{
	char path[4096];
	const char *shared = getenv("R5_SHARED");
	snprintf(path, sizeof path, "%s/data/pulseq/%s", shared ? shared : "../shared", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fclose(f);
	r5_seq *seq = NULL;
	assert_int_equal(r5_seq_read(path, &seq), R5_OK);
	return seq;
}

#define SHARED_OR_SKIP(seq, name)                                                     \
	r5_seq *seq = shared_seq(name);                                               \
	if (!seq) {                                                                   \
		print_message("SKIP: %s not in $R5_SHARED/data/pulseq\n", name);     \
		skip();                                                               \
	}

/* The spin echo: 64 excitations and 64 refocusing pulses; every sample within 1e-3 of a grid
 * point once the readout's offset of 1/2 (the (n + 1/2) dwell sample timing on a readout
 * centred between samples 31 and 32) is taken off; no offset on k1. */
static void test_spin_echo_on_grid(void **state)
{
	(void)state;
	SHARED_OR_SKIP(seq, "se_2D_sinc_img.seq");
	r5_seq_kspace ks;
	assert_int_equal(r5_seq_kspace_compute(seq, &ks), R5_OK);
	assert_int_equal(ks.n_readouts, 64);
	assert_int_equal(ks.n_excitations, 64);
	assert_int_equal(ks.n_refocusing, 64);
	r5_seq_grid g;
	r5_seq_kspace_grid(&ks, &g);
	print_message("spin echo: offsets %.5f %.5f cycles, max distance from the grid %.3g cycles, matrix %dx%d\n",
		      g.offset[0], g.offset[1], g.max_grid_error, g.matrix[0], g.matrix[1]);
	assert_int_equal(g.kind, R5_SEQ_CARTESIAN);
	assert_true(fabs(fabs(g.offset[0]) - 0.5) < 1e-3);
	assert_true(fabs(g.offset[1]) < 1e-3);
	assert_true(g.max_grid_error < 1e-3);
	assert_int_equal(g.matrix[0], 64);
	assert_int_equal(g.matrix[1], 64);
	assert_true(g.two_d);
	r5_seq_kspace_free(&ks);
	r5_seq_free(seq);
}

static void test_epi(void **state)
{
	(void)state;
	static const char *const names[2] = {"04_03_basic_epi_96x96_pep.seq", "04_03_ramp_sampling_epi_96x96_pep.seq"};
	for (int f = 0; f < 2; f++) {
		SHARED_OR_SKIP(seq, names[f]);
		r5_seq_kspace ks;
		assert_int_equal(r5_seq_kspace_compute(seq, &ks), R5_OK);
		r5_seq_grid g;
		r5_seq_kspace_grid(&ks, &g);
		print_message("%s: %s, %ld readouts (%ld reversed), matrix %dx%d, grid error %.3g, k1 spread %.3g\n",
			      names[f], r5_seq_kind_name(g.kind), ks.n_readouts, g.n_reversed, g.matrix[0], g.matrix[1],
			      g.max_grid_error, g.line_error);
		assert_int_equal(g.kind, f ? R5_SEQ_EPI_RAMP : R5_SEQ_EPI);
		assert_int_equal(ks.n_readouts, 96);
		assert_int_equal(g.n_reversed, 48);
		assert_int_equal(g.matrix[0], 96);
		assert_int_equal(g.matrix[1], 96);
		r5_seq_kspace_free(&ks);
		r5_seq_free(seq);
	}
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* RAGA (Scholand et al., MRM 2022): 377 spokes whose angles mod pi are distinct and cover the
 * half circle evenly: the largest gap between sorted neighbours (the wrap included) within
 * 1.5 pi / 377. */
static void test_raga_angles(void **state)
{
	(void)state;
	SHARED_OR_SKIP(seq, "raga_radial_bart.seq");
	r5_seq_kspace ks;
	assert_int_equal(r5_seq_kspace_compute(seq, &ks), R5_OK);
	assert_int_equal(ks.n_readouts, 377);
	double angles[377];
	for (long r = 0; r < 377; r++) {
		double a[3], b[3];
		r5_seq_kspace_cycles(&ks, ks.readouts[r].first, a);
		r5_seq_kspace_cycles(&ks, ks.readouts[r].first + ks.readouts[r].n - 1, b);
		double angle = atan2(b[1] - a[1], b[0] - a[0]);
		angles[r] = fmod(angle + 4 * PI, PI);
	}
	qsort(angles, 377, sizeof *angles, compare_doubles);
	double min_gap = INFINITY, max_gap = 0;
	for (int i = 0; i < 377; i++) {
		double gap = i < 376 ? angles[i + 1] - angles[i] : angles[0] + PI - angles[376];
		min_gap = fmin(min_gap, gap), max_gap = fmax(max_gap, gap);
	}
	double step = PI / 377;
	print_message("RAGA: 377 spokes, gaps between sorted angles %.6f..%.6f steps of pi/377\n", min_gap / step,
		      max_gap / step);
	assert_true(min_gap > 0.5 * step); /* distinct */
	assert_true(max_gap <= 1.5 * step);
	r5_seq_grid g;
	r5_seq_kspace_grid(&ks, &g);
	assert_int_equal(g.kind, R5_SEQ_NONCARTESIAN);
	assert_int_equal(g.matrix[0], 256);
	r5_seq_kspace_free(&ks);
	r5_seq_free(seq);
}

int main(void)
{
	r5_log_set_level(R5_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_written_sequence), cmocka_unit_test(test_spin_echo_on_grid),
		cmocka_unit_test(test_epi), cmocka_unit_test(test_raga_angles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
