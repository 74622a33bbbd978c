/* GPU suite: the raw FFT slots (plan_make / exec / destroy) against FFTW on the CPU — subsets of
 * dimensions (single, consecutive, non-consecutive, more than three consecutive, size-1 flagged),
 * batches, odd sizes, forward and inverse, in place and out of place. */
#include <stdio.h>
#include <string.h>

#include "recon/core/dims.h"

#include "gpu_suite.h"

static r5_status run_fft(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			 double complex *scalar)
{
	void *plan = NULL;
	R5_TRY(b->fft_plan_make(s, &plan, j->dims, (unsigned long)j->flags));
	float complex *out = buf[j->out];
	r5_status st = b->fft_exec(s, plan, out, buf[0], j->inverse);
	/* the plan may be destroyed only after the transform ran */
	if (st == R5_OK)
		st = b->sync(s);
	b->fft_plan_destroy(s, plan);
	return st;
}

static void fft_case(struct pair *p, const long *dims, int rank, unsigned flags, int inverse, int in_place)
{
	struct job j;
	memset(&j, 0, sizeof j);
	j.run = run_fft, j.flags = (int)flags, j.inverse = inverse, j.full = 1;
	r5_dims_ones(j.dims);
	for (int d = 0; d < rank; d++)
		j.dims[d] = dims[d];
	long n = r5_dims_size(j.dims);
	j.tol = n > (1L << 20) ? TOL_LOOSE : TOL;
	j.op = inverse ? (in_place ? "fft inv in-place" : "fft inv") : (in_place ? "fft fwd in-place" : "fft fwd");
	j.n_bufs = in_place ? 1 : 2;
	j.len[0] = j.len[1] = n;
	j.init[0] = INIT_RANDOM, j.init[1] = INIT_NAN;
	j.out = in_place ? 0 : 1;
	int used = 0;
	used += snprintf(j.shape + used, sizeof j.shape - (size_t)used, "{");
	for (int d = 0; d < rank; d++)
		if (flags >> d & 1)
			used += snprintf(j.shape + used, sizeof j.shape - (size_t)used, "%s%d", used > 1 ? "," : "", d);
	used += snprintf(j.shape + used, sizeof j.shape - (size_t)used, "} ");
	suite_shape(j.shape + used, sizeof j.shape - (size_t)used, dims, rank);
	suite_run_job(p, &j);
}

void suite_fft(struct pair *p)
{
	const unsigned subsets[] = {0x1, 0x2, 0x3, 0x7, 0x6, 0x5};
	const long even[4] = {64, 48, 10, 3}, odd[4] = {35, 27, 9, 2};
	for (size_t i = 0; i < sizeof subsets / sizeof subsets[0]; i++) {
		fft_case(p, even, 4, subsets[i], (int)(i & 1), (int)(i >> 1 & 1));
		fft_case(p, odd, 4, subsets[i], (int)!(i & 1), (int)!(i >> 1 & 1));
	}
	const long five[5] = {8, 6, 5, 4, 3};
	fft_case(p, five, 5, 0xF, 0, 0);  /* four consecutive: split into 3 + 1 passes */
	fft_case(p, five, 5, 0x1F, 1, 1);
	fft_case(p, five, 5, 0x1A, 0, 0); /* {1,3,4}: inner batch on both passes */
	const long unit[4] = {32, 1, 16, 4};
	fft_case(p, unit, 4, 0x7, 0, 0);  /* a flagged size-1 dimension is ignored */
	fft_case(p, unit, 4, 0x0, 0, 0);  /* nothing flagged: a copy */
	const long coils2d[4] = {256, 256, 1, 32}, vol3d[4] = {128, 128, 128, 2};
	fft_case(p, coils2d, 4, 0x3, 0, 1);
	fft_case(p, coils2d, 4, 0x3, 1, 0);
	fft_case(p, vol3d, 4, 0x7, 1, 1);
	fft_case(p, vol3d, 4, 0x6, 0, 0);
}

/* --- host replay of the CUDA back end's cuFFT layout (gpu/fft_layout.h), no device needed --- */

#include <math.h>
#include <stdlib.h>

#include "gpu/fft_layout.h"

#define R5_PI_SUITE 3.14159265358979323846

/* DFT along axis `axis` of a row-major array (sizes n[0..rank-1], n[0] slowest), in place. */
static void dft_axis(double complex *x, const long long *n, int rank, int axis, int inverse, double complex *line)
{
	long long stride = 1, count = 1, len = n[axis];
	for (int a = axis + 1; a < rank; a++)
		stride *= n[a];
	for (int a = 0; a < rank; a++)
		count *= n[a];
	double sign = inverse ? 1.0 : -1.0;
	for (long long start = 0; start < count; start++) {
		if ((start / stride) % len != 0)
			continue; /* not the first element of a line */
		for (long long k = 0; k < len; k++) {
			double complex sum = 0;
			for (long long j = 0; j < len; j++)
				sum += x[start + j * stride] * cexp(sign * 2.0 * R5_PI_SUITE * I * (double)((j * k) % len) / len);
			line[k] = sum;
		}
		for (long long k = 0; k < len; k++)
			x[start + k * stride] = line[k];
	}
}

/* cuFFT's advanced-layout address of element idx (row-major over n[], n[0] slowest) of one
 * batch, from the documented formula ((k0*inembed[1] + k1)*inembed[2] + k2)*istride. */
static long long cufft_address(const struct r5_fft_pass_layout *l, long long idx)
{
	long long k[3], addr = 0;
	for (int a = l->rank - 1; a >= 0; a--) {
		k[a] = idx % l->n[a];
		idx /= l->n[a];
	}
	for (int a = 0; a < l->rank; a++)
		addr = (a ? addr * l->inembed[a] : 0) + k[a];
	return addr * l->istride;
}

/* Applies one pass exactly as cuFFT's advanced layout defines it, execution after execution;
 * counts how often each element is touched (a layout must touch every element exactly once, or
 * cuFFT's batches would race) and returns 0 when one is touched twice, never or out of range. */
static int replay_pass(float complex *x, long total, const struct r5_fft_pass_layout *l, int inverse)
{
	long long nfft = 1, maxn = 1;
	for (int a = 0; a < l->rank; a++) {
		nfft *= l->n[a];
		maxn = l->n[a] > maxn ? l->n[a] : maxn;
	}
	double complex *tmp = malloc(sizeof *tmp * (size_t)nfft), *line = malloc(sizeof *line * (size_t)maxn);
	unsigned char *touched = calloc((size_t)total, 1);
	int ok = 1;
	for (long loop = 0; loop < l->loops && ok; loop++) {
		for (long long b = 0; b < l->batch && ok; b++) {
			long long base = r5_fft_pass_offset(l, loop) + b * l->idist;
			for (long long idx = 0; idx < nfft && ok; idx++) {
				long long at = base + cufft_address(l, idx);
				ok = at >= 0 && at < total && !touched[at];
				if (ok) {
					touched[at] = 1;
					tmp[idx] = x[at];
				}
			}
			for (int a = 0; a < l->rank && ok; a++)
				dft_axis(tmp, l->n, l->rank, a, inverse, line);
			for (long long idx = 0; idx < nfft && ok; idx++)
				x[base + cufft_address(l, idx)] = (float complex)tmp[idx];
		}
	}
	for (long i = 0; i < total && ok; i++)
		ok = touched[i];
	free(touched);
	free(tmp);
	free(line);
	return ok;
}

/* Replays the layout of (dims, flags) against FFTW; also checks the number of passes and of
 * cufftExec calls where the caller states them (-1: not checked). */
static int layout_case_counted(const struct r5_backend *cpu, void *cs, const long *dims4, int rank, unsigned flags,
			       int inverse, int want_passes, long want_execs)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < rank; d++)
		dims[d] = dims4[d];
	long n = r5_dims_size(dims);
	float complex *ref = host_fill(n, INIT_RANDOM), *x = malloc(sizeof *x * (size_t)n);
	memcpy(x, ref, sizeof *x * (size_t)n);
	void *plan = NULL;
	int ok = cpu->fft_plan_make(cs, &plan, dims, flags) == R5_OK &&
		 cpu->fft_exec(cs, plan, ref, ref, inverse) == R5_OK;
	cpu->fft_plan_destroy(cs, plan);
	struct r5_fft_pass_layout passes[R5_FFT_LAYOUT_DIMS];
	int n_passes = r5_fft_layout(dims, flags, passes), covered = 1;
	long execs = 0;
	for (int p = 0; p < n_passes; p++) {
		covered &= replay_pass(x, n, &passes[p], inverse);
		execs += passes[p].loops;
	}
	double num = 0, den = 0;
	for (long i = 0; i < n; i++) {
		num += cabs(x[i] - ref[i]) * cabs(x[i] - ref[i]);
		den += cabs(ref[i]) * cabs(ref[i]);
	}
	double rel = sqrt(num / den);
	int counted = (want_passes < 0 || want_passes == n_passes) && (want_execs < 0 || want_execs == execs);
	if (!ok || !covered || !counted || !(rel <= TOL)) {
		char shape[64];
		suite_shape(shape, sizeof shape, dims4, rank);
		printf("FAIL: cuFFT layout replay, flags 0x%x on %s: rel err %.2e vs FFTW, %d passes, %ld executions"
		       "%s%s\n",
		       flags, shape, rel, n_passes, execs, covered ? "" : ", an element touched twice or never",
		       counted ? "" : " (not the expected count)");
		ok = 0;
	}
	free(ref);
	free(x);
	return ok;
}

static int layout_case(const struct r5_backend *cpu, void *cs, const long *dims4, int rank, unsigned flags,
		       int inverse)
{
	return layout_case_counted(cpu, cs, dims4, rank, flags, inverse, -1, -1);
}

/* Layouts with stated pass and execution counts (one cufftExec per pass wherever the untransformed
 * dimensions form one run; otherwise the smaller runs are loops). */
static int layout_counts(const struct r5_backend *b, void *s, int *cases)
{
	const long five[5] = {8, 6, 5, 4, 3}, vol[4] = {12, 10, 8, 3}, seven[7] = {4, 3, 5, 2, 3, 2, 3};
	int ok = 1;
	ok &= layout_case_counted(b, s, vol, 4, 0x7, 0, 1, 1);    /* 3D x coils: one plan, one exec */
	ok &= layout_case_counted(b, s, vol, 4, 0x6, 1, 1, 3);    /* {y,z}: batch x (12), loop coils (3) */
	ok &= layout_case_counted(b, s, vol, 4, 0x5, 0, 1, 3);    /* {x,z}: one rank-2 plan, batch y */
	ok &= layout_case_counted(b, s, vol, 4, 0x9, 1, 1, 1);    /* {x,c}: batch over y,z (80) */
	ok &= layout_case_counted(b, s, five, 5, 0x1A, 0, 1, 5);  /* {1,3,4}: was 2 passes, 9 execs */
	ok &= layout_case_counted(b, s, five, 5, 0x15, 1, 1, 4);  /* {0,2,4}: batch 6, loop 4 */
	ok &= layout_case_counted(b, s, five, 5, 0x1F, 0, 2, 2);  /* 3 + 2 dimensions */
	ok &= layout_case_counted(b, s, seven, 7, 0x7E, 1, 2, 5); /* {1..6}: 3 (batch 18, loop x) + 3 */
	ok &= layout_case_counted(b, s, seven, 7, 0x55, 0, 2, 7); /* {0,2,4,6}: 3 (6 execs) + 1 */
	*cases += 9;
	/* the replay itself must catch a wrong layout: a batch distance off by one overlaps batches */
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	memcpy(dims, vol, sizeof vol);
	struct r5_fft_pass_layout pass[R5_FFT_LAYOUT_DIMS];
	r5_fft_layout(dims, 0x5, pass);
	pass[0].idist += 1;
	float complex *x = host_fill(r5_dims_size(dims), INIT_RANDOM);
	if (replay_pass(x, r5_dims_size(dims), &pass[0], 0)) {
		printf("FAIL: cuFFT layout replay accepted a layout with a wrong idist\n");
		ok = 0;
	}
	free(x);
	(*cases)++;
	return ok;
}

int suite_fft_layout_check(void)
{
	r5_ctx *ctx = NULL;
	if (r5_ctx_create(&ctx, "cpu", 0) != R5_OK)
		return 0;
	const struct r5_backend *b = r5_ctx_backend(ctx);
	void *s = r5_ctx_state(ctx);
	const unsigned subsets[] = {0x1, 0x2, 0x3, 0x7, 0x6, 0x5, 0x4, 0x8, 0xF, 0x9};
	const long even[4] = {16, 12, 10, 3}, odd[4] = {15, 9, 7, 2}, five[5] = {8, 6, 5, 4, 3}, unit[4] = {12, 1, 10, 4};
	int ok = 1, cases = 0;
	for (size_t i = 0; i < sizeof subsets / sizeof subsets[0]; i++, cases += 2) {
		ok &= layout_case(b, s, even, 4, subsets[i], (int)(i & 1));
		ok &= layout_case(b, s, odd, 4, subsets[i], (int)!(i & 1));
	}
	const unsigned five_subsets[] = {0xF, 0x1F, 0x1A, 0x1E, 0x11, 0x15};
	for (size_t i = 0; i < sizeof five_subsets / sizeof five_subsets[0]; i++, cases++)
		ok &= layout_case(b, s, five, 5, five_subsets[i], (int)(i & 1));
	ok &= layout_case(b, s, unit, 4, 0x7, 0) & layout_case(b, s, unit, 4, 0x2, 1) & layout_case(b, s, unit, 4, 0x0, 0);
	cases += 3;
	ok &= layout_counts(b, s, &cases);
	r5_ctx_destroy(ctx);
	printf("cuFFT layout replayed on the host against FFTW: %d cases, %s\n", cases, ok ? "all agree" : "FAILED");
	return ok;
}
