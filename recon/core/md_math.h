/* Index and accumulator math of the multi-dimensional slots added for the reconstruction kit
 * (zcircshift, zreduce_md), shared by the CPU back end (recon/cpu/cpu_md.c) and the CUDA back end
 * (gpu/md_cuda.cu) so that both walk the same index map and combine values with the same
 * functions. Plain C that nvcc also compiles; functions marked R5_HD.
 *
 * Circular shift: a "shift nest" is the shift problem with dimensions of size 1 dropped and a
 * dimension whose shift is 0 merged into the next one (index i_d + n_d i_{d+1} shifted by
 * (0, s) is the merged index shifted by n_d s), so a shift along y only of a contiguous array
 * becomes long rows of one dimension. */
#ifndef R5_CORE_MD_MATH_H
#define R5_CORE_MD_MATH_H

#include "backend_enums.h"
#include "complex_math.h"
#include "hd.h"

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

#endif
