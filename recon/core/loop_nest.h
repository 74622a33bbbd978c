/* The loop nest of a strided (R5_DIMS-dimensional) back-end operation, shared by the CPU and
 * CUDA back ends so that both walk the same nest: dimensions of size 1 are dropped and
 * neighbours merged where every array is contiguous across them. nest.dims[0] is the innermost
 * (fastest) loop; the CUDA back end passes the struct to kernels by value. */
#ifndef R5_CORE_LOOP_NEST_H
#define R5_CORE_LOOP_NEST_H

#include <string.h>

#include "hd.h"

#ifndef R5_DIMS /* backend.h (C) and gpu/cuda_abi.h (C++) both define it */
#define R5_DIMS 16
#endif

struct r5_loop_nest {
	int rank;
	long dims[R5_DIMS];
	long str[3][R5_DIMS]; /* strides (elements) of up to three arrays */
};

/* Builds the nest for n_arrays (1..3) arrays; returns the element count, -1 for a dimension
 * that is not positive. */
static inline long r5_loop_nest_make(struct r5_loop_nest *nest, const long dims[R5_DIMS], int n_arrays,
				     const long *const strides[3])
{
	memset(nest, 0, sizeof *nest);
	long total = 1;
	for (int d = 0; d < R5_DIMS; d++) {
		if (dims[d] <= 0)
			return -1;
		total *= dims[d];
		if (dims[d] == 1)
			continue;
		int r = nest->rank;
		int merge = r > 0;
		for (int a = 0; a < n_arrays && merge; a++)
			merge = strides[a][d] == nest->str[a][r - 1] * nest->dims[r - 1];
		if (merge) {
			nest->dims[r - 1] *= dims[d];
			continue;
		}
		nest->dims[r] = dims[d];
		for (int a = 0; a < n_arrays; a++)
			nest->str[a][r] = strides[a][d];
		nest->rank++;
	}
	if (nest->rank == 0) {
		nest->rank = 1;
		nest->dims[0] = 1;
	}
	return total;
}

/* Offsets of the arrays at outer index o (o counts over all dimensions but the innermost). */
R5_HD void r5_loop_nest_outer_offsets(const struct r5_loop_nest *nest, int n_arrays, long o, long off[3])
{
	for (int a = 0; a < n_arrays; a++)
		off[a] = 0;
	for (int r = 1; r < nest->rank; r++) {
		long idx = o % nest->dims[r];
		o /= nest->dims[r];
		for (int a = 0; a < n_arrays; a++)
			off[a] += idx * nest->str[a][r];
	}
}

#endif
