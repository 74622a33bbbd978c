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
