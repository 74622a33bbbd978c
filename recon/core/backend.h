/* The back-end seam: one table of function pointers that the CPU back end (recon/cpu, FFTW +
 * OpenMP) and the CUDA back end (gpu/, cuFFT + kernels) each fill completely.
 *
 * Algorithms never call a back end directly: they go through the array wrappers (array.h) on an
 * r5_ctx (ctx.h), which check shapes and residency and then call these slots. All pointers
 * handed to a slot live where the back end computes (`residency`): host memory for the CPU,
 * device memory for CUDA. Every slot returns r5_status and sets a message on failure.
 *
 * Element counts are `long` (64-bit); complex data is interleaved single precision.
 * Strided ("_md") slots take R5_DIMS dims and strides counted in elements; a stride of 0
 * broadcasts an input along that dimension. An output stride of 0 where the dimension is larger
 * than 1 means "reduce along it" in zreduce_md and is not allowed in any other slot. `state` is
 * the back end's per-context state made by state_create (device, stream, library handles).
 *
 * Real-valued data (masks, sampling densities, weights, magnitudes, norms, projections) has no
 * type of its own (BART's convention): it is a complex array whose imaginary part is 0, so every
 * slot and operator applies to it unchanged (a real weight times complex data is an ordinary
 * zmul_md). The slots that produce real values write the imaginary part as exactly 0: zunary
 * ABS, ABS2 and SQRT_RE, zclamp (box projection of the real part; the imaginary part of its
 * input is dropped) and zreduce_md MAXABS. Slots that read a real value look at the real part
 * only: zunary SQRT_RE and zclamp. Everything else treats values as complex, so a real array
 * stays real through linear combinations with real coefficients, products of real arrays and
 * sums; sizes and memory are those of complex data (8 bytes an element). */
#ifndef R5_CORE_BACKEND_H
#define R5_CORE_BACKEND_H

#include <complex.h>
#include <stddef.h>

#include "status.h"

/* R5_DIMS, r5_residency and the operation codes (r5_unary_op, zmul flags, r5_reduce_op):
 * backend_enums.h, one declaration for C and nvcc. */
#include "backend_enums.h"

/* The slots, and what each does: backend_slots.h (one list for C and nvcc). */
#define R5_CF float complex
#define R5_DC double complex
#include "backend_slots.h"

struct r5_backend {
	const char *name;       /* "cpu" or "cuda" */
	r5_residency residency; /* where the pointers given to the slots live */
#define R5_BACKEND_FIELD(ret, slot, params) ret(*slot) params;
	R5_BACKEND_SLOTS(R5_BACKEND_FIELD)
#undef R5_BACKEND_FIELD
};

/* The tables themselves come from the back-end libraries (recon/cpu/backend_cpu.h,
 * recon/backends/backends.h for CUDA); core reaches them only through its registry (ctx.h). */

/* Rejects a table with any empty slot (start-up check and test). */
r5_status r5_backend_check(const struct r5_backend *backend);

#endif
