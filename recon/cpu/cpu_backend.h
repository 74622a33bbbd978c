/* Inside the CPU back end: the state every slot receives and the slot functions, one
 * r5_cpu_<slot> per slot of recon/core/backend_slots.h, declared from that list. The table
 * (backend_cpu.c) is generated from the same list, so a slot missing here does not link.
 * Files: backend_cpu.c (state, memory, table), cpu_vec.c (element-wise and strided loops),
 * cpu_fft.c (FFTW and its planner lock), cpu_linalg.c (zgemm, batched Hermitian eigensolver). */
#ifndef R5_CPU_CPU_BACKEND_H
#define R5_CPU_CPU_BACKEND_H

#include "../core/backend.h"

struct cpu_state {
	int threads; /* OpenMP threads the loops and FFTW may use */
};

#define R5_CPU_DECLARE(ret, slot, params) ret r5_cpu_##slot params;
R5_BACKEND_SLOTS(R5_CPU_DECLARE)
#undef R5_CPU_DECLARE

/* FFTW's process-wide set-up (threads), once, under the planner lock (cpu_fft.c). */
void r5_cpu_fft_init(void);

#endif
