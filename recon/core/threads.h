/* The OpenMP threads a parallel region of the including file gets (1 when built without
 * OpenMP): for sizing per-thread buffers and work chunks. Header-only, so recon/core itself
 * needs no OpenMP. */
#ifndef R5_CORE_THREADS_H
#define R5_CORE_THREADS_H

#ifdef _OPENMP
#include <omp.h>
#endif

static inline int r5_max_threads(void)
{
#ifdef _OPENMP
	return omp_get_max_threads();
#else
	return 1;
#endif
}

#endif
