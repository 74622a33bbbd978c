/* cmocka group fixture shared by the unit tests: one CPU context for the whole group, as the
 * global `ctx` (each test program is one translation unit, so the statics are its own), and two helpers for
 * the arrays tests make. */
#ifndef R5_TESTS_CPU_FIXTURE_H
#define R5_TESTS_CPU_FIXTURE_H

#include "recon/core/array.h"
#include "recon/core/ctx.h"
#include "recon/core/dims.h"

static r5_ctx *ctx;

/* dims [x, y, z, c, 1, ...] */
static inline void dims_of(long dims[R5_DIMS], long x, long y, long z, long c)
{
	r5_dims_ones(dims);
	dims[0] = x, dims[1] = y, dims[2] = z, dims[3] = c;
}

/* a zeroed host array (include cmocka.h first) */
static inline r5_array *host(const long dims[R5_DIMS])
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, dims, &a), R5_OK);
	return a;
}

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
