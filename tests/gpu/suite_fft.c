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
