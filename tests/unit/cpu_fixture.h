/* cmocka group fixture shared by the unit tests: one CPU context for the whole group, as the
 * global `ctx` (each test program is one translation unit, so the statics are its own). */
#ifndef R5_TESTS_CPU_FIXTURE_H
#define R5_TESTS_CPU_FIXTURE_H

#include "recon/core/ctx.h"

static r5_ctx *ctx;

static int setup(void **state)
{
	(void)state;
	return r5_ctx_create(&ctx, "cpu", 0) == R5_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	r5_ctx_destroy(ctx);
	return 0;
}

#endif
