/* The back ends this build contains, registered with core's registry (recon/core/ctx.h) on first
 * use: the composition root of the back-end seam. recon/core knows no back end; recon/cpu and
 * gpu/ are libraries of their own; this module is the one place where the build configuration
 * (CUDA or not) decides what is registered. r5_ctx_create (declared in ctx.h) is defined here. */
#ifndef R5_BACKENDS_BACKENDS_H
#define R5_BACKENDS_BACKENDS_H

#include "../core/ctx.h"

/* Registers the built-in back ends (once; later calls are harmless). After it, what this build
 * has is known through core's registry: r5_backend_find("cuda"), r5_backend_devices("cuda"). */
r5_status r5_backends_init(void);

/* The CUDA back end's table, or NULL when recon5t was built without CUDA (gpu/ defines it, or
 * backends.c when CUDA is off), and its usable devices (0 without CUDA, driver or device). */
const struct r5_backend *r5_backend_cuda(void);
int r5_cuda_device_count(void);

#endif
