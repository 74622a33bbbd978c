/* The back ends this build contains, registered with core's registry (recon/core/ctx.h) on first
 * use: the composition root of the back-end seam. recon/core knows no back end; recon/cpu and
 * gpu/ are libraries of their own; this module is the one place where the build configuration
 * (CUDA or not) decides what is registered. r5_ctx_create (declared in ctx.h) is defined here. */
#ifndef R5_BACKENDS_BACKENDS_H
#define R5_BACKENDS_BACKENDS_H

#include "../core/ctx.h"

/* Registers the built-in back ends (once; later calls are harmless). */
r5_status r5_backends_init(void);

#endif
