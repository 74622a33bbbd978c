/* "cpu-device": the CPU back end posing as a device, so that every code path a GPU takes (device
 * residency, uploads and downloads, device-sized slabs) runs and is checked on a machine without
 * one (backend_cpu_device.c). Registered only when R5_CPU_DEVICE is set (tests); then `recon5t
 * recon --backend cpu-device` and the server's `backend = "cpu-device"` use it.
 *
 * Its memory is guarded, so the mistakes that crash or corrupt on a real device fail here:
 *   - device memory is not readable from the host: each allocation is one memory file mapped
 *     twice, at the address handed out (no access: a host read or write through it faults at once,
 *     as dereferencing a CUDA pointer would) and at a shadow address the slots compute on;
 *   - a slot given a host pointer where device memory belongs (or the reverse, an upload from
 *     device memory) fails with R5_EINVAL naming the slot and the argument;
 *   - fresh allocations are filled with NaN (a kernel reading what nobody wrote shows);
 *   - an allocation ends at its mapping's end (64-byte aligned), so a slot running past it faults;
 *   - R5_CPU_DEVICE_MIB caps the bytes held per context: allocations past it fail R5_ENOMEM with
 *     the CUDA back end's wording (tests of what does not fit).
 * R5_CPU_DEVICE=N (1..8, default 1 for any other non-empty value) is the number of devices.
 * The slots compute what the CPU back end computes, bit for bit: the same functions on the same
 * values. */
#ifndef R5_CPU_BACKEND_CPU_DEVICE_H
#define R5_CPU_BACKEND_CPU_DEVICE_H

#include <stddef.h>

#include "../core/backend.h"

const struct r5_backend *r5_backend_cpu_device(void);

/* Devices R5_CPU_DEVICE asks for (0 when unset or empty). */
int r5_cpu_device_count(void);

/* Bytes a cpu-device state holds now (its live allocations, as asked), for tests. */
size_t r5_cpu_device_bytes_held(void *state);

#endif
