/* "cpu-fault": the CPU back end behind a fault injector, for testing what a device failure does
 * to core and the service without a device (backend_fault.c).
 *
 * Every slot forwards to r5_backend_cpu(); a spec picks one slot call to fail:
 *   after=N       the N-th counted call in the process fails (N >= 1). Counted: every slot
 *                 that returns a status except state_create and describe, or only `slot`.
 *   kind=K        transient  R5_EGPU for that call, the context carries on;
 *                 oom        R5_ENOMEM ("out of device memory") for that call;
 *                 sticky     R5_EDEVICE_LOST, and the context is retired: every later call on
 *                            it fails fast with R5_EDEVICE_LOST naming the injected error (as a
 *                            CUDA context after an illegal address); new contexts work;
 *                 lost       as sticky, and the device never comes back: every later call of
 *                            every context and every state_create fails with R5_EDEVICE_LOST.
 *   slot=NAME     count only calls of that slot (e.g. fft_exec), so N does not depend on how
 *                 many calls a reconstruction makes before it.
 * e.g. "after=3,kind=sticky,slot=fft_exec". The spec comes from the environment variable
 * R5_FAULT_INJECT when the back end is first used, or from r5_fault_inject_configure (tests);
 * without one nothing fails. The counter is process-wide (the service's workers share it). */
#ifndef R5_CPU_BACKEND_FAULT_H
#define R5_CPU_BACKEND_FAULT_H

#include "../core/backend.h"

const struct r5_backend *r5_backend_cpu_fault(void);

/* Sets the spec (NULL or "" disables injection) and restarts the count; R5_EINVAL naming the
 * part of the spec it does not understand. */
r5_status r5_fault_inject_configure(const char *spec);

/* Counted calls so far (tests). */
long r5_fault_inject_calls(void);

#endif
