/* Index and accumulator math of the multi-dimensional slots added for the reconstruction kit
 * (zcircshift, zreduce_md), shared by the CPU back end (recon/cpu/cpu_md.c) and the CUDA back end
 * (gpu/md_cuda.cu) so that both walk the same index map and combine values with the same
 * functions. Plain C that nvcc also compiles; functions marked R5_HD.
 *
 * Circular shift: a "shift nest" is the shift problem with dimensions of size 1 dropped and a
 * dimension whose shift is 0 merged into the next one (index i_d + n_d i_{d+1} shifted by
 * (0, s) is the merged index shifted by n_d s), so a shift along y only of a contiguous array
 * becomes long rows of one dimension.
 *
 * Reductions: the dimensions of a zreduce_md call split into kept ones (output stride not 0)
 * and reduced ones (output stride 0, size > 1), each made a loop nest (loop_nest.h): output
 * element o reads the reduced elements r at in + keep.offset(in, o) + red.offset(in, r). Values
 * are combined in a struct r5_acc (two doubles) by r5_acc_add / r5_acc_merge: SUM adds in
 * double, MAXABS keeps the largest |x| (computed in double: no overflow for large floats) and
 * keeps a NaN once one is seen, so a NaN input never disappears from the result. */
#ifndef R5_CORE_MD_MATH_H
#define R5_CORE_MD_MATH_H

#include <math.h>

#include "backend_enums.h"
#include "complex_math.h"
#include "hd.h"
#include "loop_nest.h"

struct r5_shift_nest {
	int rank;
	long dims[R5_DIMS];
	long shifts[R5_DIMS]; /* 0 <= shifts[r] < dims[r] */
};

/* Builds the nest of a circular shift over `dims` (all positive) by `shifts` (any integers,
 * taken modulo the dimension). Returns the element count. */
static inline long r5_shift_nest_make(struct r5_shift_nest *nest, const long dims[R5_DIMS], const long shifts[R5_DIMS])
{
	long total = 1;
	int r = 0;
	nest->dims[0] = 1;
	nest->shifts[0] = 0;
	for (int d = 0; d < R5_DIMS; d++) {
		long n = dims[d], s = shifts[d] % dims[d];
		total *= n;
		if (n == 1)
			continue;
		if (s < 0)
			s += n;
		if (nest->dims[r] > 1 && nest->shifts[r] == 0) { /* merge into the unshifted one below */
			nest->shifts[r] = s * nest->dims[r];
			nest->dims[r] *= n;
		} else if (nest->dims[r] == 1) {
			nest->dims[r] = n;
			nest->shifts[r] = s;
		} else {
			r++;
			nest->dims[r] = n;
			nest->shifts[r] = s;
		}
	}
	nest->rank = r + 1;
	for (int d = nest->rank; d < R5_DIMS; d++)
		nest->dims[d] = 1, nest->shifts[d] = 0;
	return total;
}

/* Destination offset of linear index i counted over nest dimensions first..rank-1 (contiguous
 * array, so the offset includes the product of the dimensions below `first`). */
R5_HD long r5_shift_nest_dst(const struct r5_shift_nest *nest, int first, long i)
{
	long stride = 1, off = 0;
	for (int r = 0; r < first; r++)
		stride *= nest->dims[r];
	for (int r = first; r < nest->rank; r++) {
		long n = nest->dims[r];
		long idx = i % n + nest->shifts[r];
		i /= n;
		off += (idx >= n ? idx - n : idx) * stride;
		stride *= n;
	}
	return off;
}

/* --- reductions --- */

struct r5_reduce_nest {
	struct r5_loop_nest keep; /* output elements: str[0] out, str[1] in */
	struct r5_loop_nest red;  /* reduced elements: str[0] in */
	long n_out, n_red;
};

/* Builds the two nests of a reduction; returns the element count of in, -1 for a dimension
 * that is not positive. */
static inline long r5_reduce_nest_make(struct r5_reduce_nest *nest, const long dims[R5_DIMS],
				       const long out_str[R5_DIMS], const long in_str[R5_DIMS])
{
	long keep_dims[R5_DIMS], red_dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++) {
		int reduced = dims[d] > 1 && out_str[d] == 0;
		keep_dims[d] = reduced ? 1 : dims[d];
		red_dims[d] = reduced ? dims[d] : 1;
	}
	const long *const keep_str[3] = {out_str, in_str, NULL}, *const red_str[3] = {in_str, NULL, NULL};
	nest->n_out = r5_loop_nest_make(&nest->keep, keep_dims, 2, keep_str);
	nest->n_red = r5_loop_nest_make(&nest->red, red_dims, 1, red_str);
	if (nest->n_out < 0 || nest->n_red < 0)
		return -1;
	return nest->n_out * nest->n_red;
}

/* Offset of linear index i (over all the nest's dimensions) in array a of the nest. */
R5_HD long r5_nest_offset(const struct r5_loop_nest *nest, int a, long i)
{
	long off = 0;
	for (int r = 0; r < nest->rank; r++) {
		off += (i % nest->dims[r]) * nest->str[a][r];
		i /= nest->dims[r];
	}
	return off;
}

struct r5_acc {
	double re, im; /* SUM: the running sum; MAXABS: the largest |x| in re */
};

R5_HD struct r5_acc r5_acc_zero(void)
{
	struct r5_acc a;
	a.re = 0.0;
	a.im = 0.0;
	return a;
}

R5_HD struct r5_acc r5_acc_add(int op, struct r5_acc a, r5_cf x)
{
	double re = (double)r5_cf_re(x), im = (double)r5_cf_im(x);
	if (op == R5_REDUCE_SUM) {
		a.re += re;
		a.im += im;
	} else {
		double m = sqrt(re * re + im * im);
		if (m > a.re || m != m)
			a.re = m;
	}
	return a;
}

R5_HD struct r5_acc r5_acc_merge(int op, struct r5_acc a, struct r5_acc b)
{
	if (op == R5_REDUCE_SUM) {
		a.re += b.re;
		a.im += b.im;
		return a;
	}
	return (b.re > a.re || b.re != b.re) ? b : a;
}

R5_HD r5_cf r5_acc_result(int op, struct r5_acc a)
{
	return r5_cf_make((float)a.re, op == R5_REDUCE_SUM ? (float)a.im : 0.0f);
}

/* Combines the reduced elements [begin, end) of `red` starting at in, in index order. */
R5_HD struct r5_acc r5_reduce_range(int op, const r5_cf *in, const struct r5_loop_nest *red, long begin, long end,
				    struct r5_acc acc)
{
	long inner = red->dims[0], stride = red->str[0][0];
	long i = begin;
	while (i < end) {
		long row = i / inner, col = i % inner;
		long stop = end - i + col < inner ? end - i + col : inner;
		const r5_cf *p = in + r5_nest_offset(red, 0, row * inner);
		for (long c = col; c < stop; c++)
			acc = r5_acc_add(op, acc, p[c * stride]);
		i += stop - col;
	}
	return acc;
}

#endif
