/* Pipeline cs with the readout decoupled (recon/pipeline/cs_slab.h): the parameters (decouple,
 * slab; negative or non-integer widths refused naming the key), the slab width rule, the same
 * image for slabs of 1, 3 (not dividing nx) and all x positions, the 3D path staying selectable
 * (decouple=0 gives another image), progress that moves slab by slab and never goes back, a stop
 * request answered inside a slab (no work reported after it), and the stop latency of a solve
 * at 256 x 128 x 64 x 8 coils (synthetic maps, no ESPIRiT) within the stop-latency test's limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "recon/pipeline/cs_slab.h"
#include "recon/pipeline/pipeline.h"

#define R5_FIXTURE_PREFIX "cs_slab"
#include "phantom_fixture.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
#define LATENCY_LIMIT 30.0 /* unoptimised sanitizer builds: stops and frees, not the timing */
#else
#define LATENCY_LIMIT 1.5 /* s, as test_stop_latency.c; the target is 0.5 */
#endif

static r5_ctx *ctx;
static r5_scan *scan; /* 3D phantom, 20 x 24 x 16 (nx 20 after oversampling removal), 4 coils, Poisson R=4 */

static int group_setup(void **state)
{
	if (setup(state) || r5_ctx_create(&ctx, "cpu", 0) != R5_OK)
		return -1;
	struct r5_phantom_params p = r5_phantom_defaults_3d;
	p.matrix[0] = 20, p.matrix[1] = 24, p.matrix[2] = 16;
	p.fov_mm[0] = 20, p.fov_mm[1] = 24, p.fov_mm[2] = 16;
	p.n_coils = 4;
	p.sampling = R5_SAMPLING_POISSON;
	p.accel[0] = 4, p.accel[1] = 1;
	p.calib = 10;
	p.noise_sigma = 0.002;
	scan = phantom_file_scan(&p, "sl3d", NULL);
	return 0;
}

static int group_teardown(void **state)
{
	r5_scan_free(scan);
	r5_ctx_destroy(ctx);
	return teardown(state);
}

static r5_recon_params cs_params(const char *slab, const char *decouple, const char *iters)
{
	r5_recon_params p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "pipeline", "cs"), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "kernel", "4"), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "iters", iters), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "slab", slab), R5_OK);
	assert_int_equal(r5_recon_params_set(&p, "decouple", decouple), R5_OK);
	return p;
}

static r5_image_set *recon(const r5_recon_params *p, const r5_progress *progress)
{
	r5_image_set *set = NULL;
	assert_int_equal(r5_recon_run(ctx, scan, p, progress, &set), R5_OK);
	return set;
}

/* |a - b| / |a| over two image sets' images */
static double rel_diff(const r5_image_set *a, const r5_image_set *b)
{
	long n = r5_array_size(a->images);
	assert_int_equal(n, r5_array_size(b->images));
	double d = 0, norm = 0;
	for (long i = 0; i < n; i++) {
		d += pow(cabs(a->images->data[i] - b->images->data[i]), 2);
		norm += pow(cabs(a->images->data[i]), 2);
	}
	assert_true(norm > 0);
	return sqrt(d / norm);
}

static void test_params(void **state)
{
	(void)state;
	r5_recon_params p = r5_recon_defaults;
	assert_int_equal(p.cs.slab, 0);
	assert_int_equal(p.cs.decouple, 0); /* 3D regularisers by default (cs_slab.h says why) */
	assert_int_equal(r5_recon_params_set(&p, "slab", "-1"), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "slab"));
	assert_int_equal(r5_recon_params_set(&p, "cs.slab", "2.5"), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "slab"));
	assert_int_equal(r5_recon_params_set(&p, "decouple", "2"), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "decouple"));
	p.cs.slab = -3; /* a filled-in struct is checked too */
	assert_int_equal(r5_recon_params_check(&p), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "slab"));
	p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "slab", "8"), R5_OK);
	assert_int_equal(r5_recon_params_check_applies(&p, "sense"), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "parameter slab does not apply to pipeline sense"));
	assert_int_equal(r5_recon_params_check_applies(&p, "cs"), R5_EINVAL); /* decouple=0 by default */
	assert_non_null(strstr(r5_last_error(), "slab=8 needs decouple=1"));
	assert_int_equal(r5_recon_params_set(&p, "decouple", "1"), R5_OK);
	assert_int_equal(r5_recon_params_check_applies(&p, "cs"), R5_OK);

	/* widths: explicit (capped at nx), auto on the host (2 Mi coil values: 32 positions of
	 * 128 x 64 x 8 coils; at least 1), auto on a device (the 384^2 x 256 x 12 volume whole) */
	long k[R5_DIMS];
	r5_dims_ones(k);
	k[0] = 256, k[1] = 128, k[2] = 64, k[3] = 8;
	p = r5_recon_defaults;
	assert_int_equal(r5_cs_slab_width(&p, R5_HOST, k), 32);
	p.cs.slab = 3;
	assert_int_equal(r5_cs_slab_width(&p, R5_HOST, k), 3);
	p.cs.slab = 1000;
	assert_int_equal(r5_cs_slab_width(&p, R5_HOST, k), 256);
	p.cs.slab = 0;
	k[0] = 384, k[1] = 384, k[2] = 256, k[3] = 12;
	assert_int_equal(r5_cs_slab_width(&p, R5_HOST, k), 1);
	assert_int_equal(r5_cs_slab_width(&p, R5_DEVICE, k), 384);
	assert_false(r5_cs_decoupled(&p, k));
	p.cs.decouple = 1;
	assert_true(r5_cs_decoupled(&p, k));
	k[2] = 1; /* 2D frames keep their 2D regularisers */
	assert_false(r5_cs_decoupled(&p, k));
}

/* Slabs of 1, 3 and all 20 positions: the same image, within 1e-4 (relative), at 2 and at 30
 * FISTA iterations, which needs gather, scatter, the volume's weights and the cycle-spinning
 * shifts (y, z only, one stream per slab from the same seed) to match per iteration in every slab,
 * and the batch to share nothing: cs.c turns FISTA's restart test off when the regularisers leave
 * the readout out (one dot product over a slab would couple its positions: 5.3e-3 between slabs
 * of 1 and all at 30 iterations before). */
static void test_slab_widths_agree(void **state)
{
	(void)state;
	const char *iters[] = {"2", "30"};
	for (int k = 0; k < 2; k++) {
		r5_recon_params p1 = cs_params("1", "1", iters[k]), p3 = cs_params("3", "1", iters[k]);
		r5_recon_params pall = cs_params("1000", "1", iters[k]), p3d = cs_params("0", "0", iters[k]);
		r5_image_set *one = recon(&p1, NULL), *three = recon(&p3, NULL), *all = recon(&pall, NULL);
		r5_image_set *volume = recon(&p3d, NULL);
		double d13 = rel_diff(all, one), d3 = rel_diff(all, three), dvol = rel_diff(all, volume);
		fprintf(stderr, "iters %s: |slab 1 - all| / |all| %.2e, |slab 3 - all| %.2e, |3D - decoupled| %.2e\n",
			iters[k], d13, d3, dvol);
		double bound = 1e-4;
		assert_true(d13 <= bound);
		assert_true(d3 <= bound);
		assert_true(dvol > 1e-3); /* decouple=0 is another reconstruction: 3D regularisers */
		r5_image_set_free(one);
		r5_image_set_free(three);
		r5_image_set_free(all);
		r5_image_set_free(volume);
	}
}

/* A hook that records the "cs" reports (how many, whether one goes below the one before) and says
 * stop at report number stop_at (0: never). */
struct recorder {
	long n_cs, stop_at, after_stop;
	double last, first_cs;
	int backwards, stopped;
};

static int record(void *user, const char *stage, double fraction, r5_status *stop)
{
	struct recorder *r = user;
	(void)stop;
	if (r->stopped) {
		r->after_stop++;
		return 1;
	}
	if (strcmp(stage, "cs"))
		return 0;
	if (fraction < r->last - 1e-12)
		r->backwards++;
	r->last = fraction;
	if (r->n_cs++ == 0)
		r->first_cs = fraction;
	if (r->stop_at > 0 && r->n_cs == r->stop_at) {
		r->stopped = 1;
		return 1;
	}
	return 0;
}

/* slab 1 and 2 iterations over 20 positions: pass 1 checks once per slab, pass 2 before each
 * slab, after its E^H y and after each of its iterations; the fractions never go back. Then a
 * stop at the first iteration of slab 10 of pass 2 (report 20 + 9 x 4 + 3): the run returns at
 * once cancelled, naming cs, and nothing reports after it. */
static void test_progress_and_stop(void **state)
{
	(void)state;
	r5_recon_params p = cs_params("1", "1", "2");
	struct recorder r = {0};
	r5_progress hook = {record, &r};
	r5_image_set *set = recon(&p, &hook);
	fprintf(stderr, "cs reports %ld from %.3f, %d backwards\n", r.n_cs, r.first_cs, r.backwards);
	assert_int_equal(scan->kspace->dims[0], 20);
	assert_int_equal(r.n_cs, 20 + 20 * 4);
	assert_int_equal(r.backwards, 0);
	r5_image_set_free(set);

	memset(&r, 0, sizeof r);
	r.stop_at = 20 + 9 * 4 + 3;
	set = NULL;
	assert_int_equal(r5_recon_run(ctx, scan, &p, &hook, &set), R5_ECANCELLED);
	assert_null(set);
	assert_non_null(strstr(r5_last_error(), "cancelled"));
	assert_non_null(strstr(r5_last_error(), "cs"));
	assert_int_equal(r.after_stop, 0);
}

/* --- stop latency at a larger size: r5_cs_slabs_solve on synthetic data --- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Arms at the first report at or past arm_fraction (pass 2 has begun), stops T0 later. */
#define T0 0.3
struct timed_stop {
	double arm_fraction, t_stop, last, max_gap;
};

static int stop_after(void *user, const char *stage, double fraction, r5_status *stop)
{
	struct timed_stop *t = user;
	double when = now();
	(void)stage;
	if (t->t_stop == 0 && fraction >= t->arm_fraction)
		t->t_stop = when + T0, t->last = when;
	if (t->t_stop == 0)
		return 0;
	t->max_gap = when - t->last > t->max_gap ? when - t->last : t->max_gap;
	t->last = when;
	if (when < t->t_stop)
		return 0;
	*stop = R5_ETIMEDOUT;
	return 1;
}

static r5_array *host_array(long nx, long ny, long nz, long coils, long maps)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = nx, dims[1] = ny, dims[2] = nz, dims[3] = coils, dims[4] = maps;
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_OK);
	return a;
}

/* 256 x 128 x 64, 8 coils: auto slabs of 32 positions, 30 iterations of ~0.1 s each per slab;
 * the stop comes T0 into the second pass (inside the first slab's iterations). */
static void test_stop_latency(void **state)
{
	(void)state;
	enum { NX = 256, NY = 128, NZ = 64, C = 8 };
	r5_array *maps = host_array(NX, NY, NZ, C, 1), *k = host_array(NX, NY, NZ, C, 1);
	r5_array *mask = host_array(1, NY, NZ, 1, 1), *image = NULL;
	uint32_t seed = 12345;
	for (long i = 0; i < r5_array_size(k); i++) {
		seed = seed * 1664525u + 1013904223u;
		k->data[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
		maps->data[i] = 1.0f / sqrtf((float)C) * cexpf(I * (float)(i % 7));
	}
	for (long i = 0; i < NY * NZ; i++)
		mask->data[i] = (i % 4 == 0) ? 1.0f : 0.0f;
	long idims[R5_DIMS];
	r5_dims_copy(idims, k->dims);
	idims[R5_DIM_COIL] = 1;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, idims, &image), R5_OK);
	r5_recon_params p = r5_recon_defaults;
	/* pass 1 takes 1 / (iters + 1) of the range: arm when pass 2 reports */
	struct timed_stop t = {.arm_fraction = 1.0 / (p.sense.iters + 1)};
	r5_progress hook = {stop_after, &t};
	double residual = 0;
	r5_cs_slabs_opts o = {.progress = &hook, .lo = 0, .hi = 1};
	r5_status s = r5_cs_slabs_solve(ctx, &p, maps, mask, k, image, &o, &residual);
	double latency = now() - t.t_stop;
	fprintf(stderr, "cs slabs 256x128x64x8: stop latency %.3f s (largest gap between checks %.3f s): %s\n", latency,
		t.max_gap, r5_last_error());
	assert_true(t.t_stop > 0);
	assert_int_equal(s, R5_ETIMEDOUT);
	assert_non_null(strstr(r5_last_error(), "deadline"));
	assert_true(latency < LATENCY_LIMIT);
	r5_array_free(maps);
	r5_array_free(k);
	r5_array_free(mask);
	r5_array_free(image);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_slab_widths_agree),
		cmocka_unit_test(test_progress_and_stop),
		cmocka_unit_test(test_stop_latency),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
