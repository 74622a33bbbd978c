/* The fault-injecting back end "cpu-fault" (recon/cpu/backend_fault.h) and context retirement
 * (r5_ctx_retired, ctx.h): without a spec it computes what the CPU back end computes; a
 * transient or out-of-memory fault fails exactly the N-th counted call with R5_EGPU / R5_ENOMEM
 * and the context carries on; a sticky fault fails that call with R5_EDEVICE_LOST, every later
 * call on the context fails fast naming it, the context reports itself retired and a new one
 * works; a lost device also refuses new contexts; bad specs are refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <string.h>

#include "recon/core/array.h"
#include "recon/core/fft.h"
#include "recon/core/log.h"
#include "recon/cpu/backend_fault.h"

static int one_device(void) { return 1; }

static r5_ctx *open_fault(void)
{
	r5_ctx *ctx = NULL;
	assert_int_equal(r5_ctx_create(&ctx, "cpu", 0), R5_OK); /* registers the built-ins */
	r5_ctx_destroy(ctx);
	assert_int_equal(r5_backend_register(r5_backend_cpu_fault(), one_device), R5_OK);
	assert_int_equal(r5_ctx_create(&ctx, "cpu-fault", 0), R5_OK);
	assert_string_equal(r5_ctx_backend_name(ctx), "cpu-fault");
	return ctx;
}

static r5_array *ramp(r5_ctx *ctx, long n)
{
	long dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
	dims[0] = n;
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc(ctx, R5_HOST, dims, &a), R5_OK);
	for (long i = 0; i < n; i++)
		a->data[i] = (float)(i % 7) - 3.0f + I * (float)(i % 5);
	return a;
}

/* No spec: the table is complete and the results are the CPU back end's, bit for bit. */
static void test_forwards_without_spec(void **state)
{
	(void)state;
	assert_int_equal(r5_fault_inject_configure(NULL), R5_OK);
	assert_int_equal(r5_backend_check(r5_backend_cpu_fault()), R5_OK);
	assert_int_equal(r5_backend_cpu_fault()->residency, R5_HOST);
	r5_ctx *fault = open_fault(), *cpu = NULL;
	assert_int_equal(r5_ctx_create(&cpu, "cpu", 0), R5_OK);
	r5_array *a = ramp(fault, 48), *b = ramp(cpu, 48);
	assert_int_equal(r5_fft(fault, 0x1, a, a), R5_OK);
	assert_int_equal(r5_fft(cpu, 0x1, b, b), R5_OK);
	assert_memory_equal(a->data, b->data, sizeof(float complex) * 48);
	double complex dot_fault = 0, dot_cpu = 0;
	assert_int_equal(r5_zdot(fault, a, a, &dot_fault), R5_OK);
	assert_int_equal(r5_zdot(cpu, b, b, &dot_cpu), R5_OK);
	assert_true(dot_fault == dot_cpu && creal(dot_cpu) > 0);
	assert_false(r5_ctx_retired(fault));
	r5_array_free(a);
	r5_array_free(b);
	r5_ctx_destroy(fault);
	r5_ctx_destroy(cpu);
}

/* transient: exactly the 2nd zscale fails (R5_EGPU naming the slot), the 1st and 3rd work. */
static void test_transient(void **state)
{
	(void)state;
	r5_ctx *ctx = open_fault();
	r5_array *a = ramp(ctx, 16);
	assert_int_equal(r5_fault_inject_configure("after=2,kind=transient,slot=zscale"), R5_OK);
	assert_int_equal(r5_zscale(ctx, a, 2.0f), R5_OK);
	assert_int_equal(r5_zfill(ctx, a, 1.0f), R5_OK); /* not counted: another slot */
	assert_int_equal(r5_zscale(ctx, a, 2.0f), R5_EGPU);
	assert_non_null(strstr(r5_last_error(), "zscale"));
	assert_non_null(strstr(r5_last_error(), "transient"));
	assert_int_equal(r5_zscale(ctx, a, 2.0f), R5_OK);
	assert_true(crealf(a->data[3]) == 2.0f); /* fill 1, the failed scale did nothing, then x2 */
	assert_int_equal(r5_fault_inject_calls(), 3);
	assert_false(r5_ctx_retired(ctx));
	r5_array_free(a);
	r5_ctx_destroy(ctx);
}

/* oom: the first FFT plan fails with R5_ENOMEM saying device memory; the transform works when
 * asked again (the cache makes the plan then). */
static void test_oom(void **state)
{
	(void)state;
	r5_ctx *ctx = open_fault();
	r5_array *a = ramp(ctx, 24);
	assert_int_equal(r5_fault_inject_configure("after=1,kind=oom,slot=fft_plan_make"), R5_OK);
	assert_int_equal(r5_fft(ctx, 0x1, a, a), R5_ENOMEM);
	assert_non_null(strstr(r5_last_error(), "out of device memory"));
	assert_non_null(strstr(r5_last_error(), "fft_plan_make"));
	assert_int_equal(r5_fft(ctx, 0x1, a, a), R5_OK);
	assert_false(r5_ctx_retired(ctx));
	r5_array_free(a);
	r5_ctx_destroy(ctx);
}

/* sticky: the 3rd FFT execution fails with R5_EDEVICE_LOST; every later call on that context fails
 * fast naming the first error; the context is retired (and says so without losing the caller's
 * message); a new context works. */
static void test_sticky_retires(void **state)
{
	(void)state;
	r5_ctx *ctx = open_fault();
	r5_array *a = ramp(ctx, 32);
	assert_int_equal(r5_fault_inject_configure("after=3,kind=sticky,slot=fft_exec"), R5_OK);
	assert_int_equal(r5_fft(ctx, 0x1, a, a), R5_OK);
	assert_int_equal(r5_ifft(ctx, 0x1, a, a), R5_OK);
	assert_false(r5_ctx_retired(ctx));
	assert_int_equal(r5_fft(ctx, 0x1, a, a), R5_EDEVICE_LOST);
	assert_non_null(strstr(r5_last_error(), "sticky"));
	assert_int_equal(r5_zfill(ctx, a, 0.0f), R5_EDEVICE_LOST);
	assert_non_null(strstr(r5_last_error(), "retired"));
	assert_non_null(strstr(r5_last_error(), "fft_exec"));
	r5_set_error(R5_EINVAL, "the job's own message");
	assert_true(r5_ctx_retired(ctx));
	assert_string_equal(r5_last_error(), "the job's own message");
	assert_non_null(strstr(r5_ctx_retired_reason(ctx), "fft_exec"));
	assert_int_equal(r5_ctx_sync(ctx), R5_EDEVICE_LOST);
	r5_array_free(a); /* host memory is freed on a retired context too */
	r5_ctx_destroy(ctx);

	r5_ctx *fresh = NULL;
	assert_int_equal(r5_ctx_create(&fresh, "cpu-fault", 0), R5_OK);
	r5_array *b = ramp(fresh, 32);
	assert_int_equal(r5_fft(fresh, 0x1, b, b), R5_OK);
	assert_false(r5_ctx_retired(fresh));
	assert_string_equal(r5_ctx_retired_reason(fresh), "");
	r5_array_free(b);
	r5_ctx_destroy(fresh);
}

/* lost: as sticky, and no context can be made afterwards, until the spec is reset. */
static void test_lost_refuses_contexts(void **state)
{
	(void)state;
	r5_ctx *ctx = open_fault(), *other = NULL;
	assert_int_equal(r5_ctx_create(&other, "cpu-fault", 0), R5_OK);
	assert_int_equal(r5_fault_inject_configure("after=1,kind=lost"), R5_OK);
	assert_int_equal(r5_ctx_sync(ctx), R5_EDEVICE_LOST);
	assert_true(r5_ctx_retired(ctx));
	assert_true(r5_ctx_retired(other)); /* the device is gone for every context */
	r5_ctx *next = NULL;
	assert_int_equal(r5_ctx_create(&next, "cpu-fault", 0), R5_EDEVICE_LOST);
	assert_null(next);
	assert_non_null(strstr(r5_last_error(), "lost"));
	r5_ctx_destroy(ctx);
	r5_ctx_destroy(other);
	assert_int_equal(r5_fault_inject_configure(""), R5_OK);
	assert_int_equal(r5_ctx_create(&next, "cpu-fault", 0), R5_OK);
	r5_ctx_destroy(next);
}

static void test_bad_specs(void **state)
{
	(void)state;
	const char *bad[] = {"after=0", "after=x", "kind=bogus,after=1", "color=red,after=1", "kind=oom", "after"};
	const char *named[] = {"after=0", "after=x", "kind=bogus", "color=red", "after=N", "key=value"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(r5_fault_inject_configure(bad[i]), R5_EINVAL);
		assert_non_null(strstr(r5_last_error(), named[i]));
	}
	assert_int_equal(r5_fault_inject_configure(NULL), R5_OK);
}

/* A healthy CPU context is never retired, and asking keeps the caller's message. */
static void test_cpu_not_retired(void **state)
{
	(void)state;
	r5_ctx *ctx = NULL;
	assert_int_equal(r5_ctx_create(&ctx, "cpu", 0), R5_OK);
	r5_set_error(R5_EINVAL, "keep me");
	assert_false(r5_ctx_retired(ctx));
	assert_string_equal(r5_last_error(), "keep me");
	r5_ctx_destroy(ctx);
}

int main(void)
{
	r5_log_set_level((r5_log_level)(R5_LOG_ERROR + 1)); /* the retirement log lines are expected here */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forwards_without_spec), cmocka_unit_test(test_transient),
		cmocka_unit_test(test_oom),                   cmocka_unit_test(test_sticky_retires),
		cmocka_unit_test(test_lost_refuses_contexts), cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_cpu_not_retired),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
