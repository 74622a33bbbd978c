/* The CPU posing as a device, "cpu-device" (recon/cpu/backend_cpu_device.h): it is a device
 * back end (host arrays are refused where it computes, uploads and downloads move data), it
 * computes what the CPU back end computes bit for bit, and its guards fire: a host read of
 * device memory faults, a slot given a host pointer for device memory (or the reverse) fails
 * naming the slot and argument, fresh memory reads NaN, a slot writing past an allocation
 * faults, R5_CPU_DEVICE_MIB caps what a context holds, and frees return what was held. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recon/core/array.h"
#include "recon/core/backend.h"
#include "recon/core/fft.h"
#include "recon/cpu/backend_cpu_device.h"

static r5_ctx *open_ctx(const char *name)
{
	r5_ctx *ctx = NULL;
	assert_int_equal(r5_ctx_create(&ctx, name, 0), R5_OK);
	return ctx;
}

static void dims_1d(long dims[R5_DIMS], long n)
{
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
	dims[0] = n;
}

static r5_array *ramp_host(long n)
{
	long dims[R5_DIMS];
	dims_1d(dims, n);
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_OK);
	for (long i = 0; i < n; i++)
		a->data[i] = (float)(i % 7) - 3.0f + I * (float)(i % 5);
	return a;
}

/* Runs fn in a child: non-zero when it faulted (killed by SIGSEGV or SIGBUS, or under a
 * sanitizer, whose fault handler reports and exits non-zero), 0 when it ran to its end (or could
 * not set up: exit 3). */
static int child_faults(void (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka's handlers (inherited) would turn the fault into a failed test in the child */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		fn();
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS;
	return WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3;
}

static void test_is_a_device_back_end(void **state)
{
	(void)state;
	assert_int_equal(r5_cpu_device_count(), 2); /* main sets R5_CPU_DEVICE=2 */
	assert_int_equal(r5_backend_check(r5_backend_cpu_device()), R5_OK);
	r5_ctx *ctx = open_ctx("cpu-device");
	assert_string_equal(r5_ctx_backend_name(ctx), "cpu-device");
	assert_int_equal(r5_ctx_residency(ctx), R5_DEVICE);
	r5_ctx_destroy(ctx);
	assert_int_equal(r5_ctx_create(&ctx, "cpu-device", 1), R5_OK); /* the second device */
	r5_ctx_destroy(ctx);
	assert_int_not_equal(r5_ctx_create(&ctx, "cpu-device", 2), R5_OK);
	/* a host array where the device computes is refused by the wrappers */
	ctx = open_ctx("cpu-device");
	r5_array *h = ramp_host(16);
	assert_int_equal(r5_zscale(ctx, h, 2.0f), R5_EINVAL);
	r5_array_free(h);
	r5_ctx_destroy(ctx);
}

/* Upload, compute (FFT, axpby, dot, a reduction), download: the CPU back end's bits. */
static void test_same_bits_as_cpu(void **state)
{
	(void)state;
	r5_ctx *dev = open_ctx("cpu-device"), *cpu = open_ctx("cpu");
	long n = 96;
	r5_array *h = ramp_host(n), *d = NULL, *c = ramp_host(n), *back = NULL;
	assert_int_equal(r5_array_to_work(dev, h, &d), R5_OK);
	assert_int_equal(d->where, R5_DEVICE);
	assert_int_equal(r5_fft(dev, 0x1, d, d), R5_OK);
	assert_int_equal(r5_fft(cpu, 0x1, c, c), R5_OK);
	assert_int_equal(r5_zaxpby(dev, 0.5f, d, 2.0f - I, d), R5_OK);
	assert_int_equal(r5_zaxpby(cpu, 0.5f, c, 2.0f - I, c), R5_OK);
	double complex dot_d = 0, dot_c = 0;
	assert_int_equal(r5_zdot(dev, d, d, &dot_d), R5_OK);
	assert_int_equal(r5_zdot(cpu, c, c, &dot_c), R5_OK);
	assert_true(creal(dot_d) == creal(dot_c) && cimag(dot_d) == cimag(dot_c));
	float max_d = 0, max_c = 0;
	assert_int_equal(r5_zmaxabs(dev, d, &max_d), R5_OK);
	assert_int_equal(r5_zmaxabs(cpu, c, &max_c), R5_OK);
	assert_true(max_d == max_c && max_d > 0);
	assert_int_equal(r5_array_to_host(dev, d, &back), R5_OK);
	assert_memory_equal(back->data, c->data, sizeof(float complex) * (size_t)n);
	r5_array_free(h);
	r5_array_free(c);
	r5_array_free(back);
	r5_array_free(d);
	r5_ctx_destroy(dev);
	r5_ctx_destroy(cpu);
}

static void read_device_from_host(void)
{
	r5_ctx *ctx = NULL;
	long dims[R5_DIMS];
	dims_1d(dims, 8);
	r5_array *d = NULL;
	if (r5_ctx_create(&ctx, "cpu-device", 0) != R5_OK || r5_array_zeros(ctx, R5_DEVICE, dims, &d) != R5_OK)
		_exit(3);
	volatile float complex v = d->data[3]; /* what code that forgot the download does */
	(void)v;
}

static void write_past_the_end(void)
{
	r5_ctx *ctx = NULL;
	long dims[R5_DIMS];
	dims_1d(dims, 8); /* 64 bytes: the allocation ends where its mapping ends */
	r5_array *d = NULL;
	if (r5_ctx_create(&ctx, "cpu-device", 0) != R5_OK || r5_array_alloc(ctx, R5_DEVICE, dims, &d) != R5_OK)
		_exit(3);
	/* a slot told the array is twice as long as it is */
	r5_ctx_backend(ctx)->zfill(r5_ctx_state(ctx), 16, d->data, 1.0f);
}

static void test_guards_fault(void **state)
{
	(void)state;
	assert_true(child_faults(read_device_from_host));
	assert_true(child_faults(write_past_the_end));
}

/* Slots called with the wrong kind of pointer fail naming the slot and the argument; fresh
 * device memory reads as NaN once downloaded. */
static void test_pointer_checks(void **state)
{
	(void)state;
	r5_ctx *ctx = open_ctx("cpu-device");
	const struct r5_backend *b = r5_ctx_backend(ctx);
	void *st = r5_ctx_state(ctx);
	r5_array *h = ramp_host(8), *d = NULL, *back = NULL;
	assert_int_equal(r5_array_alloc(ctx, R5_DEVICE, h->dims, &d), R5_OK);
	assert_int_equal(r5_array_to_host(ctx, d, &back), R5_OK);
	for (int i = 0; i < 8; i++)
		assert_true(isnan(crealf(back->data[i])) && isnan(cimagf(back->data[i])));
	assert_int_equal(b->zscale(st, 8, h->data, 2.0f), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "slot zscale got x"));
	assert_int_equal(b->zaxpby(st, 8, 1.0f, d->data, 1.0f, h->data), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "slot zaxpby got y"));
	assert_int_equal(b->upload(st, d->data, d->data, 64), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "host_src"));
	double complex *on_device = (double complex *)d->data;
	assert_int_equal(b->zdot(st, 4, d->data, d->data, on_device), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "result"));
	/* a view one past the end of an allocation is still that allocation's (an empty one) */
	assert_int_equal(b->zfill(st, 0, d->data + 8, 0.0f), R5_OK);
	r5_array_free(h);
	r5_array_free(back);
	r5_array_free(d);
	r5_ctx_destroy(ctx);
}

static void test_memory_cap(void **state)
{
	(void)state;
	setenv("R5_CPU_DEVICE_MIB", "1", 1);
	r5_ctx *ctx = open_ctx("cpu-device");
	unsetenv("R5_CPU_DEVICE_MIB");
	long dims[R5_DIMS];
	dims_1d(dims, 65536); /* 0.5 MiB */
	r5_array *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(r5_array_alloc(ctx, R5_DEVICE, dims, &a), R5_OK);
	assert_int_equal(r5_array_alloc(ctx, R5_DEVICE, dims, &b), R5_OK);
	assert_int_equal(r5_cpu_device_bytes_held(r5_ctx_state(ctx)), 1048576u);
	assert_int_equal(r5_array_alloc(ctx, R5_DEVICE, dims, &c), R5_ENOMEM);
	assert_non_null(strstr(r5_last_error(), "out of device memory"));
	r5_array_free(a);
	assert_int_equal(r5_array_alloc(ctx, R5_DEVICE, dims, &c), R5_OK);
	r5_array_free(b);
	r5_array_free(c);
	assert_int_equal(r5_cpu_device_bytes_held(r5_ctx_state(ctx)), 0u);
	r5_ctx_destroy(ctx);
	setenv("R5_CPU_DEVICE_MIB", "lots", 1);
	assert_int_equal(r5_ctx_create(&ctx, "cpu-device", 0), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "R5_CPU_DEVICE_MIB"));
	unsetenv("R5_CPU_DEVICE_MIB");
}

int main(void)
{
	setenv("R5_CPU_DEVICE", "2", 1); /* before the first context registers the built-ins */
	const struct CMUnitTest tests[] = {
		/* the forks first, before OpenMP has threads to lose in a child */
		cmocka_unit_test(test_guards_fault),   cmocka_unit_test(test_is_a_device_back_end),
		cmocka_unit_test(test_same_bits_as_cpu), cmocka_unit_test(test_pointer_checks),
		cmocka_unit_test(test_memory_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
