/* Pulseq reader (recon/io/pulseq.c): the four files of ../shared/data/pulseq (three signatures
 * re-computed and verified, bart's unsigned one read with a warning), Pulseq's shape compression
 * on a hand-written file, a 1.3 file with [DELAYS], and the errors that name line and event:
 * wrong hash, a block naming a missing event, a shape whose decompressed length disagrees, an
 * unsupported version. */
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
#include "recon/io/pulseq.h"

static const char *shared_file(char *path, size_t size, const char *name)
{
	const char *shared = getenv("R5_SHARED");
	snprintf(path, size, "%s/data/pulseq/%s", shared ? shared : "../shared", name);
	return path;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *text = malloc((size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return text;
}

static void test_shared_files(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		int signed_;
		long blocks;
		const char *fov;
	} files[] = {
		{"se_2D_sinc_img.seq", 1, 640, "0.128 0.128 0.03"},
		{"04_03_basic_epi_96x96_pep.seq", 1, 195, "0.22 0.22 0.004"},
		{"04_03_ramp_sampling_epi_96x96_pep.seq", 1, 100, "0.22 0.22 0.004"},
		{"raga_radial_bart.seq", 0, 377, "0.256 0.256 0.006"},
	};
	char path[4096];
	size_t len = 0;
	char *probe = slurp(shared_file(path, sizeof path, files[0].name), &len);
	if (!probe) {
		print_message("SKIP: %s not readable\n", path);
		skip();
	}
	free(probe);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		r5_seq *seq = NULL;
		shared_file(path, sizeof path, files[i].name);
		r5_status st = r5_seq_read(path, &seq);
		if (st != R5_OK)
			print_message("%s\n", r5_last_error());
		assert_int_equal(st, R5_OK);
		assert_int_equal(seq->major, 1);
		assert_int_equal(seq->minor, 4);
		assert_int_equal(seq->n_blocks, files[i].blocks);
		assert_string_equal(r5_seq_definition_get(seq, "FOV"), files[i].fov);
		assert_true(fabs(seq->grad_raster_s - 1e-5) < 1e-12);
		assert_int_equal(seq->signature, files[i].signed_ ? R5_SEQ_SIGNATURE_VERIFIED : R5_SEQ_SIGNATURE_NONE);
		/* round trip: the md5 re-computed from the bytes is the one the file states */
		char *text = slurp(path, &len);
		char hex[33];
		size_t signed_len = 0;
		assert_int_equal(r5_seq_md5(text, len, hex, &signed_len), R5_OK);
		const char *hash = strstr(text, "\nHash ");
		if (files[i].signed_) {
			assert_non_null(hash);
			assert_memory_equal(hash + 6, hex, 32);
			assert_memory_equal(text + signed_len, "\n[SIGNATURE]", 12);
		}
		double total = 0;
		if (r5_seq_definition_numbers(seq, "TotalDuration", &total, 1) == 1)
			assert_true(fabs(r5_seq_duration(seq) - total) < 1e-6 * total);
		print_message("%-40s %5ld blocks %3ld shapes %4ld ADC events, %.4f s, md5 %s (%s)\n", files[i].name,
			seq->n_blocks, seq->n_shapes, seq->n_adc, r5_seq_duration(seq), hex,
			files[i].signed_ ? "verified" : "no hash");
		free(text);
		r5_seq_free(seq);
	}
}

/* A file that the tests can change line by line. */
static const char small_seq[] =
	"# test\n"
	"[VERSION]\nmajor 1\nminor 4\nrevision 1\n\n"
	"[DEFINITIONS]\nFOV 0.2 0.2 0.005\nName small test\nGradientRasterTime 1e-05\n\n"
	"[BLOCKS]\n"
	"1 100 1 0 0 0 0 0\n"
	"2 50 0 1 2 0 1 1\n"
	"3 20 0 3 0 0 0 0\n\n"
	"[RF]\n1 250 1 2 0 10 0 0\n\n"
	"[GRADIENTS]\n3 1000 3 0 0\n\n"
	"[TRAP]\n1 100000 20 300 20 0\n2 -50000 10 0 10 0\n\n"
	"[ADC]\n1 64 4000 30 0 0\n\n"
	"[EXTENSIONS]\n1 1 2 0\n\nextension LABELSET 1\n1 0 LIN\n2 5 LIN\n\n"
	"[SHAPES]\n\n"
	"shape_id 1\nnum_samples 8\n0\n0.25\n0.25\n4\n-0.5\n\n"
	"shape_id 2\nnum_samples 8\n0\n0\n6\n\n"
	"shape_id 3\nnum_samples 5\n0\n0.5\n1\n0.5\n0\n";

static r5_status parse(const char *text, r5_seq **seq) { return r5_seq_parse(text, strlen(text), "t.seq", seq); }

/* small_seq with the first `from` replaced by `to`. */
static char *edit(const char *from, const char *to)
{
	const char *at = strstr(small_seq, from);
	assert_non_null(at);
	size_t head = (size_t)(at - small_seq), n = strlen(small_seq) - strlen(from) + strlen(to);
	char *s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, small_seq, head);
	strcpy(s + head, to);
	strcat(s, at + strlen(from));
	return s;
}

static void test_small_file(void **state)
{
	(void)state;
	r5_seq *seq = NULL;
	assert_int_equal(parse(small_seq, &seq), R5_OK);
	assert_int_equal(seq->signature, R5_SEQ_SIGNATURE_NONE);
	assert_string_equal(r5_seq_definition_get(seq, "Name"), "small test");
	double fov[3];
	assert_int_equal(r5_seq_definition_numbers(seq, "FOV", fov, 3), 3);
	assert_true(fov[2] == 0.005);
	assert_true(fabs(seq->rf_raster_s - 1e-6) < 1e-15); /* Pulseq's default */
	const r5_seq_shape *sh = r5_seq_find_shape(seq, 1);
	assert_non_null(sh);
	/* derivative 0 .25 .25 .25 .25 .25 .25 -0.5 -> shape 0 .25 .5 .75 1 1.25 1.5 1 */
	const double want[8] = {0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1};
	assert_int_equal(sh->n, 8);
	for (int i = 0; i < 8; i++)
		assert_true(fabs(sh->values[i] - want[i]) < 1e-12);
	sh = r5_seq_find_shape(seq, 2);
	for (int i = 0; i < 8; i++)
		assert_true(sh->values[i] == 0);
	const r5_seq_grad *g = r5_seq_find_grad(seq, 1);
	assert_int_equal(g->kind, R5_SEQ_GRAD_TRAP);
	assert_true(fabs(g->flat_s - 300e-6) < 1e-15);
	assert_int_equal(r5_seq_find_grad(seq, 3)->kind, R5_SEQ_GRAD_SHAPED);
	const r5_seq_adc *adc = r5_seq_find_adc(seq, 1);
	assert_true(fabs(adc->dwell_s - 4e-6) < 1e-18 && adc->n_samples == 64);
	const r5_seq_ext_spec *spec = r5_seq_find_ext_spec(seq, 1);
	assert_string_equal(spec->name, "LABELSET");
	assert_int_equal(spec->n_rows, 2);
	assert_string_equal(spec->rows[1].text, "5 LIN");
	assert_true(fabs(r5_seq_duration(seq) - 170e-5) < 1e-12);
	r5_seq_free(seq);

	/* signed: the hash is of everything before "\n[SIGNATURE]" */
	char hex[33];
	assert_int_equal(r5_seq_md5(small_seq, strlen(small_seq), hex, NULL), R5_OK);
	char *signed_seq = malloc(strlen(small_seq) + 200);
	assert_non_null(signed_seq);
	sprintf(signed_seq, "%s\n[SIGNATURE]\n# comment\nType md5\nHash %s\n", small_seq, hex);
	assert_int_equal(parse(signed_seq, &seq), R5_OK);
	assert_int_equal(seq->signature, R5_SEQ_SIGNATURE_VERIFIED);
	r5_seq_free(seq);
	char *flip = strstr(signed_seq, "Name small");
	flip[5] = 'S';
	assert_int_equal(parse(signed_seq, &seq), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	assert_non_null(strstr(r5_last_error(), "signature mismatch"));
	assert_null(seq);
	free(signed_seq);
}

static void test_version_13(void **state)
{
	(void)state;
	static const char v13[] =
		"[VERSION]\nmajor 1\nminor 3\nrevision 1\n"
		"[DEFINITIONS]\nGradientRasterTime 1e-05\n"
		"[BLOCKS]\n1 1 0 1 0 0 0 0\n2 0 0 0 0 0 1 0\n3 2 0 0 0 0 0\n"
		"[DELAYS]\n1 100\n2 2000\n"
		"[GRADIENTS]\n1 1000 1 10\n"
		"[ADC]\n1 100 1000 5 0 0\n"
		"[SHAPES]\nshape_id 1\nnum_samples 4\n1\n1\n1\n1\n";
	r5_seq *seq = NULL;
	assert_int_equal(parse(v13, &seq), R5_OK);
	/* block 1: delay 100 us vs gradient 10 + 40 us; block 2: ADC 5 + 100 us; block 3: 2 ms */
	assert_true(fabs(seq->blocks[0].duration_s - 100e-6) < 1e-12);
	assert_true(fabs(seq->blocks[1].duration_s - 105e-6) < 1e-12);
	assert_true(fabs(seq->blocks[2].duration_s - 2e-3) < 1e-12);
	assert_true(fabs(r5_seq_find_grad(seq, 1)->delay_s - 10e-6) < 1e-15);
	r5_seq_free(seq);
}

static void expect_error(const char *text, r5_status code, const char *needle)
{
	r5_seq *seq = (r5_seq *)1;
	r5_status st = parse(text, &seq);
	print_message("%s\n", r5_last_error());
	assert_int_equal(st, code);
	assert_null(seq);
	if (!strstr(r5_last_error(), needle))
		fail_msg("'%s' does not say '%s'", r5_last_error(), needle);
}

static void test_errors(void **state)
{
	(void)state;
	struct {
		const char *from, *to;
		r5_status code;
		const char *needle;
	} cases[] = {
		{"2 50 0 1 2 0 1 1", "2 50 0 1 2 0 7 1", R5_EINVAL, "line 14: block 2 names ADC event 7"},
		{"2 50 0 1 2 0 1 1", "2 50 0 1 9 0 1 1", R5_EINVAL, "block 2 names gradient (y) 9"},
		{"num_samples 8\n0\n0\n6", "num_samples 9\n0\n0\n6", R5_EINVAL, "shape 2 decompresses to 8 samples, num_samples says 9"},
		{"num_samples 8\n0\n0.25\n0.25\n4", "num_samples 8\n0\n0.25\n0.25\n9", R5_EINVAL, "line 39: shape 1: bad run length"},
		{"[RF]\n1 250 1 2 0", "[RF]\n1 250 1 3 0", R5_EINVAL, "RF event 1: phase shape 3 has 5 samples"},
		{"[RF]\n1 250 1 2 0", "[RF]\n1 250 4 2 0", R5_EINVAL, "RF event 1 names magnitude shape 4"},
		{"minor 4", "minor 5", R5_ENOTSUP, "Pulseq version 1.5.1 is not supported"},
		{"major 1", "major 2", R5_ENOTSUP, "version 2.4.1"},
		{"[ADC]\n1 64 4000", "[ADC]\n1 64 -4000", R5_EINVAL, "positive dwell"},
		{"[ADC]\n1 64 4000", "[ADC]\n1 64 40000", R5_EINVAL, "block 2 lasts 0.0005 s but its events need"},
		{"1 100000 20", "1 100000 2x0", R5_EINVAL, "line 24: [TRAP] row needs 6 numbers"},
		{"2 -50000 10 0 10 0", "1 -50000 10 0 10 0", R5_EINVAL, "gradient event ([GRADIENTS] and [TRAP] share ids) id 1 defined twice"},
		{"1 1 2 0", "1 1 3 0", R5_EINVAL, "names LABELSET row 3"},
		{"# test\n[VERSION]", "[BLOCKS]\n[VERSION]", R5_EINVAL, "line 1: [BLOCKS] comes before [VERSION]"},
		{"shape_id 3\nnum_samples 5", "shape_id 3\nnum_samples 99999999", R5_EINVAL, "1 <= N <= 2^24"},
		{"FOV 0.2", "AdcRasterTime -1\nFOV 0.2", R5_EINVAL, "AdcRasterTime must be one positive time"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = edit(cases[i].from, cases[i].to);
		expect_error(text, cases[i].code, cases[i].needle);
		free(text);
	}
	expect_error("", R5_EINVAL, "no [VERSION]");
	expect_error("hello\n", R5_EINVAL, "line 1: 'hello' outside any section");
	char nul[] = "[VERSION]\nmajor 1\0\n";
	r5_seq *seq = NULL;
	assert_int_equal(r5_seq_parse(nul, sizeof nul - 1, "nul.seq", &seq), R5_EINVAL);
	assert_null(seq);
	assert_int_equal(r5_seq_read("/nonexistent/x.seq", &seq), R5_EIO);
}

int main(void)
{
	r5_log_set_level(R5_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_files),
		cmocka_unit_test(test_small_file),
		cmocka_unit_test(test_version_13),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
