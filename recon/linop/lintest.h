/* Property tests for any operator (after BART's src/linops/lintest.c) and the one table of test
 * operators that the CPU unit test (tests/unit/test_linop.c) and the GPU suite
 * (tests/gpu/suite_ops.c) both run, so that every operator is checked on every back end.
 *
 * Everything goes through the array wrappers: random data is made on the host from a seed and
 * copied with r5_array_copy to where the context computes, so the same code runs on a CPU and
 * a CUDA context, and two contexts given the same seed see the same inputs. */
#ifndef R5_LINOP_LINTEST_H
#define R5_LINOP_LINTEST_H

#include "linop.h"

typedef struct r5_linop_errors {
	double adjoint;  /* |<A x, y> - <x, A^H y>| / (|A x| |y|) */
	double normal;   /* |normal(x) - A^H (A x)| / |A^H (A x)| */
	double in_place; /* largest |in place - apart| / |apart| over the applications the operator
			    declares in place (0 when it declares none) */
} r5_linop_errors;

/* The three properties on random x, y from seed. */
r5_status r5_linop_property_test(r5_ctx *ctx, r5_linop *op, unsigned seed, r5_linop_errors *errors);

/* Applies op (0 forward, 1 adjoint, 2 normal) to a random input from seed and returns the
 * result on the host (*result, the caller frees): for comparing two back ends. */
r5_status r5_linop_apply_random(r5_ctx *ctx, r5_linop *op, int which, unsigned seed, r5_array **result);

/* Fills a (where ctx computes) with values uniform in [-1, 1)^2 (binary: 0 or 1) from *state. */
r5_status r5_lintest_fill(r5_ctx *ctx, r5_array *a, int binary, unsigned *state);

/* --- the shared case table --- */

#define R5_LINTEST_MAX_ARRAYS 8
/* Arrays a test operator borrows (maps, masks), kept until r5_lintest_kit_free. */
typedef struct r5_lintest_kit {
	r5_array *arrays[R5_LINTEST_MAX_ARRAYS];
	int n;
	unsigned state; /* random state for the arrays (seeded by the caller) */
} r5_lintest_kit;
void r5_lintest_kit_free(r5_lintest_kit *kit); /* after the operator is freed */

typedef struct r5_lintest_case {
	const char *name;
	r5_status (*build)(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op);
} r5_lintest_case;

extern const r5_lintest_case r5_lintest_cases[];
extern const int r5_lintest_n_cases;

#endif
