/* recon/core on its own: this program links r5core and nothing else (no FFTW, no CPU or CUDA
 * back end), registers fake back ends and checks the registry and context creation against
 * them: that core builds and tests without any back end is the layering DESIGN.md draws. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "recon/core/array.h"
#include "recon/core/ctx.h"

static int created, destroyed;

static r5_status fake_state_create(void **state, int device)
{
	created++;
	*state = &created;
	return device == 7 ? r5_set_error(R5_EGPU, "device 7 is broken") : R5_OK;
}

static void fake_state_destroy(void *state) { destroyed++; }

static r5_status fake_describe(void *state, char *text, size_t size)
{
	snprintf(text, size, "fake back end");
	return R5_OK;
}

/* Slots the tests never call: any non-NULL function fills them. */
static void never_called(void) {}

static struct r5_backend fake_table(const char *name, r5_residency where)
{
	struct r5_backend b = {.name = name, .residency = where};
#define FILL(ret, slot, params) b.slot = (ret(*) params)never_called;
	R5_BACKEND_SLOTS(FILL)
#undef FILL
	b.state_create = fake_state_create;
	b.state_destroy = fake_state_destroy;
	b.describe = fake_describe;
	return b;
}

static int no_devices(void) { return 0; }
static int one_device(void) { return 1; }
static int two_devices(void) { return 2; }

static struct r5_backend host, device, impostor, broken;

static void test_registry(void **unused)
{
	host = fake_table("host", R5_HOST);
	device = fake_table("cuda", R5_DEVICE);
	impostor = fake_table("host", R5_HOST);
	broken = fake_table("broken", R5_HOST);
	broken.zdot = NULL;

	r5_ctx *ctx = NULL;
	/* nothing registered: every name is unknown, auto finds nothing */
	assert_int_equal(r5_ctx_open(&ctx, "auto", 0), R5_EINVAL);
	assert_int_equal(r5_ctx_open(&ctx, "gpu", 0), R5_ENOTSUP);
	assert_non_null(strstr(r5_last_error(), "without CUDA"));

	assert_int_equal(r5_backend_register(&broken, one_device), R5_EINTERNAL);
	assert_non_null(strstr(r5_last_error(), "zdot"));
	assert_null(r5_backend_find("broken"));
	assert_int_equal(r5_backend_register(&host, NULL), R5_EINVAL);
	assert_int_equal(r5_backend_register(&host, one_device), R5_OK);
	assert_int_equal(r5_backend_register(&host, one_device), R5_OK); /* again: harmless */
	assert_int_equal(r5_backend_register(&impostor, one_device), R5_EINVAL);
	assert_ptr_equal(r5_backend_find("host"), &host);
	assert_int_equal(r5_backend_devices("host"), 1);
	assert_int_equal(r5_backend_devices("nothing"), 0);

	/* auto without a device back end: the host one */
	assert_int_equal(r5_ctx_open(&ctx, "auto", 0), R5_OK);
	assert_string_equal(r5_ctx_backend_name(ctx), "host");
	assert_string_equal(r5_ctx_describe(ctx), "fake back end");
	r5_ctx_destroy(ctx);
	assert_int_equal(destroyed, 1);

	assert_int_equal(r5_backend_register(&device, two_devices), R5_OK);
	assert_ptr_equal(r5_backend_find("gpu"), &device); /* "gpu" is "cuda" */
	assert_int_equal(r5_ctx_open(&ctx, "auto", 1), R5_OK);
	assert_string_equal(r5_ctx_backend_name(ctx), "cuda");
	assert_int_equal(r5_ctx_device(ctx), 1);
	r5_ctx_destroy(ctx);
	/* auto with a device index the device back end lacks: the host; asked by name: an error */
	assert_int_equal(r5_ctx_open(&ctx, "auto", 2), R5_OK);
	assert_string_equal(r5_ctx_backend_name(ctx), "host");
	r5_ctx_destroy(ctx);
	assert_int_equal(r5_ctx_open(&ctx, "gpu", 2), R5_EGPU);
	assert_null(ctx);
	/* a failing state creation is reported with the back end's name, nothing leaks */
	assert_int_equal(r5_ctx_open(&ctx, "host", 7), R5_EGPU);
	assert_non_null(strstr(r5_last_error(), "host"));
	assert_non_null(strstr(r5_last_error(), "device 7"));
	assert_null(ctx);
	assert_int_equal(r5_ctx_open(&ctx, "tpu", 0), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "tpu"));
	(void)no_devices;
}

/* Host arrays need no back end at all. */
static void test_host_arrays(void **unused)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 5;
	dims[1] = 3;
	r5_array *a = NULL;
	assert_int_equal(r5_array_zeros_lazy(dims, &a), R5_OK);
	assert_int_equal(r5_array_size(a), 15);
	assert_true(r5_array_is_contiguous(a));
	r5_array_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_host_arrays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
