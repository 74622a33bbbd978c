/* Registration of the built-in back ends (backends.h). */
#include "backends.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../core/log.h"
#include "../cpu/backend_cpu.h"
#include "../cpu/backend_cpu_device.h"
#include "../cpu/backend_fault.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static r5_status init_status = R5_OK;
static char init_message[256];

static int host_devices(void)
{
	return 1;
}

static void register_builtin(void)
{
	r5_status s = r5_backend_register(r5_backend_cpu(), host_devices);
#ifdef R5_HAVE_CUDA
	if (s == R5_OK)
		s = r5_backend_register(r5_backend_cuda(), r5_cuda_device_count);
#endif
	/* the fault-injecting CPU back end (recon/cpu/backend_fault.h) exists for tests only */
	const char *fault_spec = getenv("R5_FAULT_INJECT");
	if (s == R5_OK && fault_spec && *fault_spec)
		s = r5_backend_register(r5_backend_cpu_fault(), host_devices);
	/* the CPU posing as a device (recon/cpu/backend_cpu_device.h), for tests only */
	if (s == R5_OK && r5_cpu_device_count() > 0)
		s = r5_backend_register(r5_backend_cpu_device(), r5_cpu_device_count);
	init_status = s;
	if (s != R5_OK)
		snprintf(init_message, sizeof init_message, "%s", r5_last_error());
}

r5_status r5_backends_init(void)
{
	pthread_once(&once, register_builtin);
	if (init_status != R5_OK)
		return r5_set_error(init_status, "registering the built-in back ends: %s", init_message);
	return R5_OK;
}

r5_status r5_ctx_create(r5_ctx **ctx, const char *backend_name, int device)
{
	*ctx = NULL;
	R5_TRY(r5_backends_init());
	return r5_ctx_open(ctx, backend_name, device);
}

#ifndef R5_HAVE_CUDA
/* Built without CUDA: there is no CUDA table and no device. */
const struct r5_backend *r5_backend_cuda(void)
{
	return NULL;
}

int r5_cuda_device_count(void)
{
	return 0;
}
#endif
