/* The C boundary of the CUDA back end, seen from C++ (nvcc).
 *
 * recon/core/backend.h declares struct r5_backend with C99 `float complex` in its slot
 * signatures; C++ has no such type, so the .cu files cannot include that header. This file
 * restates the same table with layout-identical types: r5_cf (float2 under nvcc, from
 * complex_math.h) for `float complex` and r5_dc (two doubles) for `double complex`. On the
 * System V x86-64 and AArch64 ABIs a `float complex` argument is passed exactly like a struct
 * of two floats, so a C caller and these C++ definitions agree.
 *
 * The slots come from the same list as the C declaration (recon/core/backend_slots.h), so both
 * sides have the same slots in the same order with the same arguments, and both include
 * recon/core/backend_enums.h for R5_DIMS and the operation codes. The GPU suite
 * (tests/gpu/gpu_suite.c) still compares sizeof and slot offsets of both declarations through
 * r5_cuda_abi_layout() before anything else, device or not. */
#ifndef R5_GPU_CUDA_ABI_H
#define R5_GPU_CUDA_ABI_H

#include <stddef.h>

#include "../recon/core/complex_math.h"

extern "C" {
#include "../recon/core/log.h"
#include "../recon/core/status.h"
}

/* double complex, interleaved (re, im) */
typedef struct r5_dc {
	double re, im;
} r5_dc;

/* R5_DIMS, r5_residency and the operation codes: the same header as the C side. */
#include "../recon/core/backend_enums.h"

#define R5_CF r5_cf
#define R5_DC r5_dc
#include "../recon/core/backend_slots.h"

struct r5_backend {
	const char *name;
	r5_residency residency;
#define R5_BACKEND_FIELD(ret, slot, params) ret(*slot) params;
	R5_BACKEND_SLOTS(R5_BACKEND_FIELD)
#undef R5_BACKEND_FIELD
};

static_assert(sizeof(r5_cf) == 8 && alignof(r5_cf) == 8, "r5_cf must match float complex");
static_assert(sizeof(r5_dc) == 16, "r5_dc must match double complex");
static_assert(sizeof(r5_status) == sizeof(int), "enum size");

extern "C" {
const struct r5_backend *r5_backend_cuda(void);
int r5_cuda_device_count(void);
/* Layout check for the suite: writes sizeof(struct r5_backend) and the offsets of the slots
 * zfill, zdot, zmul_md, fft_exec, zgemm, zheev_batched into layout[0..6]; returns 7. */
int r5_cuda_abi_layout(size_t layout[7]);
}

#endif
