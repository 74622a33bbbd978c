/* The CPU back end's public face: its table, for the registry (recon/backends) and for tests
 * that wrap or inspect it (recon/cpu/backend_fault.c, tests/unit/test_core.c). */
#ifndef R5_CPU_BACKEND_CPU_H
#define R5_CPU_BACKEND_CPU_H

#include "../core/backend.h"

/* The CPU back end (FFTW, OpenMP), always built. */
const struct r5_backend *r5_backend_cpu(void);

#endif
