/* FFTW_MEASURE planning with a wisdom file (recon/cpu/cpu_fft.h). Measuring runs transforms on
 * the planner's arrays, so a plan measured on the caller's data would destroy it: every case
 * here transforms random data in place and out of place, forward and inverse, SIMD-aligned and
 * not, once with FFTW_ESTIMATE and once measured, and asserts the results agree to 1e-6
 * relative (float FFTs by different algorithms) and that an out-of-place input is bit for bit
 * unchanged. Then: the wisdom file is valid FFTW wisdom; a fresh process state plans from it
 * without measuring; a corrupt file is logged and replaced; bad paths are refused; four
 * processes writing one file at once lose none of each other's plans; a transform above the
 * measuring cap is planned from the wisdom or FFTW_ESTIMATE without scratch; a MEASURE out of
 * time gives FFTW_ESTIMATE's plan, and a longer limit measures the shape again. */
#include <complex.h>
#include <fftw3.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "recon/core/dims.h"
#include "recon/core/log.h"
#include "recon/cpu/cpu_backend.h"
#include "recon/cpu/cpu_fft.h"

/* shapes [x, y, z, coils] and the transformed dimensions; the third is above the 16384-value
 * threshold where plans become multithreaded; odd sizes on purpose */
static const struct fft_case {
	long dims[4];
	unsigned long flags;
} cases[] = {
	{{32, 48, 1, 4}, 2UL},
	{{27, 30, 1, 3}, 3UL},
	{{20, 24, 16, 3}, 6UL},
	{{64, 1, 1, 8}, 1UL},
};
#define N_CASES (sizeof cases / sizeof cases[0])
#define N_VARIANTS 8 /* inverse x in place x unaligned */

/* The measuring time limit of every test but the one about it: generous, so that counts of
 * measured plans do not depend on the machine's load (the default is 2 s). */
#define TEST_SECONDS 60.0

static char dir[64], path[128];

static void fill_random(float complex *v, long n, unsigned seed)
{
	unsigned long s = seed * 2654435761u + 1u;
	for (long i = 0; i < n; i++) {
		s = s * 6364136223846793005ul + 1442695040888963407ul;
		float re = (float)((s >> 33) % 2001) / 1000.0f - 1.0f;
		s = s * 6364136223846793005ul + 1442695040888963407ul;
		float im = (float)((s >> 33) % 2001) / 1000.0f - 1.0f;
		v[i] = re + I * im;
	}
}

/* One variant of one case through the back end's FFT slots with a fresh plan object; the
 * result into result (n values). Unaligned arrays start 8 bytes past a 64-byte boundary. */
static void transform(const struct fft_case *c, int variant, float complex *result)
{
	int inverse = variant & 1, in_place = variant >> 1 & 1, unaligned = variant >> 2 & 1;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	memcpy(dims, c->dims, sizeof c->dims);
	long n = r5_dims_size(dims);
	void *state = NULL, *plan = NULL;
	assert_int_equal(r5_cpu_state_create(&state, 0), R5_OK);
	assert_int_equal(r5_cpu_fft_plan_make(state, &plan, dims, c->flags), R5_OK);
	size_t bytes = (size_t)(n + 8) * sizeof(float complex) / 64 * 64 + 64;
	float complex *in_block = aligned_alloc(64, bytes), *out_block = aligned_alloc(64, bytes);
	float complex *copy = malloc((size_t)n * sizeof(float complex));
	assert_non_null(in_block);
	assert_non_null(out_block);
	assert_non_null(copy);
	float complex *in = in_block + unaligned, *out = in_place ? in : out_block + unaligned;
	fill_random(in, n, (unsigned)(variant + 1));
	memcpy(copy, in, (size_t)n * sizeof *copy);
	assert_int_equal(r5_cpu_fft_exec(state, plan, out, in, inverse), R5_OK);
	if (!in_place) /* neither planning nor executing may touch the input */
		assert_memory_equal(in, copy, (size_t)n * sizeof *copy);
	memcpy(result, out, (size_t)n * sizeof *result);
	r5_cpu_fft_plan_destroy(state, plan);
	r5_cpu_state_destroy(state);
	free(in_block);
	free(out_block);
	free(copy);
}

static long case_size(const struct fft_case *c)
{
	return c->dims[0] * c->dims[1] * c->dims[2] * c->dims[3];
}

/* Every variant of one case with the wisdom path (measured, from wisdom, or whatever the bounds
 * make it) against FFTW_ESTIMATE. */
static void check_case_against_estimate(const struct fft_case *c)
{
	long n = case_size(c);
	float complex *ref = malloc((size_t)n * sizeof *ref), *got = malloc((size_t)n * sizeof *got);
	assert_non_null(ref);
	assert_non_null(got);
	for (int v = 0; v < N_VARIANTS; v++) {
		assert_int_equal(r5_cpu_fft_configure(NULL), R5_OK);
		transform(c, v, ref);
		assert_int_equal(r5_cpu_fft_configure(path), R5_OK);
		transform(c, v, got);
		double err = 0, norm = 0;
		for (long i = 0; i < n; i++) {
			err += pow(cabs(got[i] - ref[i]), 2);
			norm += pow(cabs(ref[i]), 2);
		}
		double rel = sqrt(err / norm);
		if (!(rel <= 1e-6))
			fail_msg("case %ldx%ldx%ldx%ld variant %d: measured vs estimate relative error %.3g", c->dims[0],
				 c->dims[1], c->dims[2], c->dims[3], v, rel);
	}
	free(ref);
	free(got);
}

/* Every variant of cases[first..N_CASES) measured (or from wisdom) against FFTW_ESTIMATE. */
static void check_against_estimate(size_t first)
{
	for (size_t k = first; k < N_CASES; k++)
		check_case_against_estimate(&cases[k]);
}

static int wisdom_file_valid(void)
{
	return fftwf_import_wisdom_from_filename(path);
}

static void measured_equals_estimate(void **state)
{
	(void)state;
	r5_cpu_fft_stats before, after;
	r5_cpu_fft_get_stats(&before);
	check_against_estimate(0);
	r5_cpu_fft_get_stats(&after);
	/* every variant is new to the wisdom: measured (its estimate twin is not counted here) */
	assert_int_equal(after.plans_measured - before.plans_measured, N_CASES * N_VARIANTS);
	assert_int_equal(after.wisdom_writes - before.wisdom_writes, N_CASES * N_VARIANTS);
	assert_int_equal(after.wisdom_writes_failed, 0);
	assert_int_equal(access(path, R_OK), 0);
	assert_true(wisdom_file_valid());
}

/* A fresh process's FFTW knows nothing: forget the wisdom; the file must bring it all back. */
static void plans_come_from_the_file(void **state)
{
	(void)state;
	fftwf_forget_wisdom();
	r5_cpu_fft_stats before, after;
	r5_cpu_fft_get_stats(&before);
	check_against_estimate(0);
	r5_cpu_fft_get_stats(&after);
	assert_int_equal(after.plans_measured, before.plans_measured);
	assert_int_equal(after.plans_from_wisdom - before.plans_from_wisdom, N_CASES * N_VARIANTS);
	assert_int_equal(after.wisdom_reads_failed, before.wisdom_reads_failed);
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Garbage and truncated wisdom: logged, ignored, and replaced by valid wisdom. */
static void corrupt_file_tolerated(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"not wisdom at all \x01\x02\xff",
		"(fftw-3.3.10 fftwf_wisdom #x12345678 #x0 #x0 #x0\n  (fftwf_codelet_n1fv_32_avx2 0 #x10bdd #x10bdd #x0 #x8",
	};
	for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
		write_file(bad[b]);
		fftwf_forget_wisdom();
		r5_cpu_fft_stats before, after;
		r5_cpu_fft_get_stats(&before);
		check_against_estimate(N_CASES - 1); /* the smallest case is enough */
		r5_cpu_fft_get_stats(&after);
		assert_true(after.wisdom_reads_failed > before.wisdom_reads_failed);
		assert_int_equal(after.plans_measured - before.plans_measured, N_VARIANTS);
		assert_true(wisdom_file_valid());
	}
}

/* Above the cap nothing is measured and no scratch allocated: a shape new to the wisdom is
 * FFTW_ESTIMATE (the reference plans are too: 2 x N_VARIANTS), one in it comes from it. */
static void over_cap_not_measured(void **state)
{
	(void)state;
	assert_int_equal(r5_cpu_fft_set_measure_cap(-1), R5_EINVAL);
	const struct fft_case big = {{36, 40, 1, 2}, 3UL}; /* 2880 values, in no other case */
	assert_int_equal(r5_cpu_fft_set_measure_cap(2048), R5_OK);
	r5_cpu_fft_stats before, after;
	r5_cpu_fft_get_stats(&before);
	check_case_against_estimate(&big);
	r5_cpu_fft_get_stats(&after);
	assert_int_equal(after.plans_measured, before.plans_measured);
	assert_int_equal(after.plans_from_wisdom, before.plans_from_wisdom);
	assert_int_equal(after.plans_over_cap - before.plans_over_cap, N_VARIANTS);
	assert_int_equal(after.plans_estimate - before.plans_estimate, 2 * N_VARIANTS);
	assert_true(after.scratch_bytes == before.scratch_bytes);
	assert_int_equal(after.wisdom_writes, before.wisdom_writes);

	/* the smallest case (512 values) measured under the default cap, then above a cap of 256 */
	assert_int_equal(r5_cpu_fft_set_measure_cap(R5_CPU_FFT_MEASURE_CAP), R5_OK);
	check_against_estimate(N_CASES - 1);
	assert_int_equal(r5_cpu_fft_set_measure_cap(256), R5_OK);
	r5_cpu_fft_get_stats(&before);
	check_against_estimate(N_CASES - 1);
	r5_cpu_fft_get_stats(&after);
	assert_int_equal(after.plans_from_wisdom - before.plans_from_wisdom, N_VARIANTS);
	assert_int_equal(after.plans_measured, before.plans_measured);
	assert_int_equal(after.plans_over_cap, before.plans_over_cap);
	assert_true(after.scratch_bytes == before.scratch_bytes);
	assert_int_equal(r5_cpu_fft_set_measure_cap(R5_CPU_FFT_MEASURE_CAP), R5_OK);
}

/* A microsecond limit: FFTW's ESTIMATE stage never times out, its MEASURE stage does at its
 * first clock check, so every variant is FFTW_ESTIMATE's plan and nothing counts as measured;
 * the file stays valid wisdom (holding the timeouts). A longer limit measures it again. */
static void time_limit_bounds_measuring(void **state)
{
	(void)state;
	assert_int_equal(r5_cpu_fft_set_measure_seconds(0), R5_EINVAL);
	assert_int_equal(r5_cpu_fft_set_measure_seconds(-1), R5_EINVAL);
	assert_int_equal(r5_cpu_fft_set_measure_seconds(INFINITY), R5_EINVAL);
	assert_int_equal(r5_cpu_fft_set_measure_seconds(NAN), R5_EINVAL);
	const struct fft_case c = {{44, 30, 1, 2}, 1UL}; /* in no other case */
	assert_int_equal(r5_cpu_fft_set_measure_seconds(1e-6), R5_OK);
	r5_cpu_fft_stats before, after;
	r5_cpu_fft_get_stats(&before);
	check_case_against_estimate(&c);
	r5_cpu_fft_get_stats(&after);
	assert_int_equal(after.plans_measured, before.plans_measured);
	assert_int_equal(after.plans_timed_out - before.plans_timed_out, N_VARIANTS);
	assert_int_equal(after.plans_estimate - before.plans_estimate, 2 * N_VARIANTS);
	assert_true(wisdom_file_valid());

	assert_int_equal(r5_cpu_fft_set_measure_seconds(TEST_SECONDS), R5_OK);
	r5_cpu_fft_get_stats(&before);
	check_case_against_estimate(&c);
	r5_cpu_fft_get_stats(&after);
	assert_int_equal(after.plans_measured - before.plans_measured, N_VARIANTS);
	assert_int_equal(after.plans_timed_out, before.plans_timed_out);
	assert_true(wisdom_file_valid());
}

static void bad_paths_refused(void **state)
{
	(void)state;
	assert_int_equal(r5_cpu_fft_configure("/nonexistent-r5-folder/sub/wisdom"), R5_EIO);
	assert_non_null(strstr(r5_last_error(), "/nonexistent-r5-folder/sub"));
	char folder_only[160];
	snprintf(folder_only, sizeof folder_only, "%s/", dir);
	assert_int_equal(r5_cpu_fft_configure(folder_only), R5_EINVAL);
	char longer[5000];
	memset(longer, 'a', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	assert_int_equal(r5_cpu_fft_configure(longer), R5_EINVAL);
	/* "" = FFTW_ESTIMATE: nothing measured, nothing written */
	r5_cpu_fft_stats before, after;
	assert_int_equal(r5_cpu_fft_configure(""), R5_OK);
	r5_cpu_fft_get_stats(&before);
	float complex result[64 * 8];
	transform(&cases[3], 0, result);
	r5_cpu_fft_get_stats(&after);
	assert_int_equal(after.plans_estimate - before.plans_estimate, 1);
	assert_int_equal(after.plans_measured, before.plans_measured);
	assert_int_equal(after.wisdom_writes, before.wisdom_writes);
}

/* Four processes measure five shapes each of their own into the one file at the same time
 * (single-threaded plans: the children are forked). Afterwards every one of the twenty shapes
 * plans from the file: no writer lost another's wisdom, and the file is never half written. */
#define N_WRITERS 4
#define SHAPES_EACH 5

static struct fft_case writer_case(int writer, int shape)
{
	struct fft_case c = {{40 + 2 * (writer * SHAPES_EACH + shape), 36, 1, 2}, 2UL};
	return c;
}

static void concurrent_writers(void **state)
{
	(void)state;
	unlink(path);
	pid_t pids[N_WRITERS];
	for (int w = 0; w < N_WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			fftwf_forget_wisdom();
			int failed = r5_cpu_fft_configure(path) != R5_OK;
			float complex *result = malloc(160 * 36 * 2 * sizeof *result);
			for (int s = 0; s < SHAPES_EACH && !failed; s++) {
				struct fft_case c = writer_case(w, s);
				transform(&c, 2, result); /* forward, in place, aligned */
			}
			r5_cpu_fft_stats st;
			r5_cpu_fft_get_stats(&st);
			_exit(failed || st.wisdom_writes != SHAPES_EACH ? 1 : 0);
		}
	}
	for (int w = 0; w < N_WRITERS; w++) {
		int status = 0;
		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	fftwf_forget_wisdom();
	assert_int_equal(r5_cpu_fft_configure(path), R5_OK);
	r5_cpu_fft_stats before, after;
	r5_cpu_fft_get_stats(&before);
	float complex *result = malloc(160 * 36 * 2 * sizeof *result);
	for (int w = 0; w < N_WRITERS; w++)
		for (int s = 0; s < SHAPES_EACH; s++) {
			struct fft_case c = writer_case(w, s);
			transform(&c, 2, result);
		}
	free(result);
	r5_cpu_fft_get_stats(&after);
	assert_int_equal(after.plans_from_wisdom - before.plans_from_wisdom, N_WRITERS * SHAPES_EACH);
	assert_int_equal(after.plans_measured, before.plans_measured);
}

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/r5-wisdom-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/fftw-wisdom", dir);
	return r5_cpu_fft_set_measure_seconds(TEST_SECONDS) == R5_OK ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	char lock[160];
	snprintf(lock, sizeof lock, "%s.lock", path);
	unlink(path);
	unlink(lock);
	return rmdir(dir);
}

int main(void)
{
	r5_log_set_level(R5_LOG_ERROR); /* the corrupt-file warnings are expected */
	/* the forking test first, before any multithreaded plan has started OpenMP threads */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(concurrent_writers),
		cmocka_unit_test(measured_equals_estimate),
		cmocka_unit_test(plans_come_from_the_file),
		cmocka_unit_test(corrupt_file_tolerated),
		cmocka_unit_test(over_cap_not_measured),
		cmocka_unit_test(time_limit_bounds_measuring),
		cmocka_unit_test(bad_paths_refused),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
