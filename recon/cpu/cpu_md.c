/* CPU back end: the multi-dimensional slots of the reconstruction kit — circular shift,
 * reductions over dimensions, strided axpby — as OpenMP loops over the index and accumulator
 * math shared with the CUDA back end (recon/core/md_math.h, loop_nest.h, complex_math.h). */
#include <complex.h>
#include <string.h>

#include "../core/complex_math.h"
#include "../core/loop_nest.h"
#include "../core/md_math.h"
#include "cpu_backend.h"

/* Rows along the first nest dimension: each row is copied as two runs, the part that moves
 * right by the shift and the part that wraps around to the start. */
r5_status r5_cpu_zcircshift(void *state, const long dims[R5_DIMS], const long shifts[R5_DIMS], float complex *out,
			    const float complex *in)
{
	struct r5_shift_nest nest;
	long total = r5_shift_nest_make(&nest, dims, shifts);
	long n0 = nest.dims[0], s0 = nest.shifts[0], rows = total / n0;
#pragma omp parallel for schedule(static) if (total > 32768)
	for (long r = 0; r < rows; r++) {
		float complex *dst = out + r5_shift_nest_dst(&nest, 1, r);
		const float complex *src = in + r * n0;
		memcpy(dst + s0, src, (size_t)(n0 - s0) * sizeof *src);
		memcpy(dst, src + n0 - s0, (size_t)s0 * sizeof *src);
	}
	return R5_OK;
}

/* --- reductions --- */

/* Few outputs and many values each: every output's range is cut into this many chunks at most
 * (each of at least REDUCE_CHUNK_MIN values), reduced in parallel and merged in chunk order, so
 * the result does not depend on the number of threads. */
#define REDUCE_MAX_CHUNKS 64
#define REDUCE_CHUNK_MIN 8192
#define REDUCE_FEW_OUTPUTS 16

static void reduce_one(int op, const struct r5_reduce_nest *nest, long o, float complex *out,
		       const float complex *in, long chunks)
{
	long out_off = r5_nest_offset(&nest->keep, 0, o), in_off = r5_nest_offset(&nest->keep, 1, o);
	struct r5_acc acc = r5_acc_zero();
	if (chunks <= 1) {
		acc = r5_reduce_range(op, in + in_off, &nest->red, 0, nest->n_red, acc);
	} else {
		struct r5_acc partial[REDUCE_MAX_CHUNKS];
		long per = (nest->n_red + chunks - 1) / chunks;
#pragma omp parallel for schedule(static)
		for (long k = 0; k < chunks; k++) {
			long begin = k * per, end = begin + per < nest->n_red ? begin + per : nest->n_red;
			partial[k] = r5_reduce_range(op, in + in_off, &nest->red, begin, end, r5_acc_zero());
		}
		for (long k = 0; k < chunks; k++)
			acc = r5_acc_merge(op, acc, partial[k]);
	}
	out[out_off] = r5_acc_result(op, acc);
}

r5_status r5_cpu_zreduce_md(void *state, r5_reduce_op op, const long dims[R5_DIMS], const long out_str[R5_DIMS],
			    float complex *out, const long in_str[R5_DIMS], const float complex *in)
{
	struct r5_reduce_nest nest;
	long total = r5_reduce_nest_make(&nest, dims, out_str, in_str);
	if (total < 0)
		return r5_set_error(R5_EINVAL, "cpu zreduce_md: non-positive dimension");
	if (op != R5_REDUCE_SUM && op != R5_REDUCE_MAXABS)
		return r5_set_error(R5_EINVAL, "cpu zreduce_md: unknown operation %d", (int)op);
	if (nest.n_out < REDUCE_FEW_OUTPUTS && total > 32768) {
		long chunks = nest.n_red / REDUCE_CHUNK_MIN;
		chunks = chunks < 1 ? 1 : chunks > REDUCE_MAX_CHUNKS ? REDUCE_MAX_CHUNKS : chunks;
		for (long o = 0; o < nest.n_out; o++)
			reduce_one((int)op, &nest, o, out, in, chunks);
		return R5_OK;
	}
#pragma omp parallel for schedule(static) if (total > 32768)
	for (long o = 0; o < nest.n_out; o++)
		reduce_one((int)op, &nest, o, out, in, 1);
	return R5_OK;
}

/* --- strided axpby --- */

/* One row of y = a x + b y, real a and b (y not read when b is 0); unit strides get loops the
 * compiler vectorises. */
static void zaxpby_real_row(long n, float a, const float complex *x, long sx, float b, float complex *y, long sy)
{
	const float complex zero = r5_cf_make(0.0f, 0.0f);
	if (sx == 1 && sy == 1 && b == 0.0f) {
		for (long i = 0; i < n; i++)
			y[i] = r5_cf_axpby_re(a, x[i], 0.0f, zero);
	} else if (sx == 1 && sy == 1) {
		for (long i = 0; i < n; i++)
			y[i] = r5_cf_axpby_re(a, x[i], b, y[i]);
	} else {
		for (long i = 0; i < n; i++)
			y[i * sy] = r5_cf_axpby_re(a, x[i * sx], b, b == 0.0f ? zero : y[i * sy]);
	}
}

r5_status r5_cpu_zaxpby_md(void *state, const long dims[R5_DIMS], float complex alpha, const long x_str[R5_DIMS],
			   const float complex *x, float complex beta, const long y_str[R5_DIMS], float complex *y)
{
	struct r5_loop_nest nest;
	const long *const strides[3] = {y_str, x_str, NULL};
	long total = r5_loop_nest_make(&nest, dims, 2, strides);
	if (total < 0)
		return r5_set_error(R5_EINVAL, "cpu zaxpby_md: non-positive dimension");
	long inner = nest.dims[0], outer = total / inner;
	long sy = nest.str[0][0], sx = nest.str[1][0];
	if (r5_cf_im(alpha) == 0.0f && r5_cf_im(beta) == 0.0f) {
		/* real coefficients (finite differences, strided sums): as r5_cpu_zaxpby's fast path, the
		 * same values for finite x and y, y not read when beta is 0 */
		float a = r5_cf_re(alpha), b = r5_cf_re(beta);
#pragma omp parallel for schedule(static) if (total > 32768)
		for (long o = 0; o < outer; o++) {
			long off[3];
			r5_loop_nest_outer_offsets(&nest, 2, o, off);
			zaxpby_real_row(inner, a, x + off[1], sx, b, y + off[0], sy);
		}
		return R5_OK;
	}
#pragma omp parallel for schedule(static) if (total > 32768)
	for (long o = 0; o < outer; o++) {
		long off[3];
		r5_loop_nest_outer_offsets(&nest, 2, o, off);
		float complex *py = y + off[0];
		const float complex *px = x + off[1];
		for (long i = 0; i < inner; i++)
			py[i * sy] = r5_cf_axpby(alpha, px[i * sx], beta, py[i * sy]);
	}
	return R5_OK;
}
