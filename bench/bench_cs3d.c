/* bench_cs3d: the 3D vessel-wall compressed-sensing solve (issue 13, item 7) stage by stage, on
 * the GPU when one is present, else (or with --backend cpu) on the CPU at a small size.
 *
 *   stage | s | ms per iteration | share
 *
 * The synthetic scan is made where the context computes (3.6 GB of k-space at 384^2 x 256 x 12
 * coils cannot travel there): an object of three separable boxes, coil maps that are products of
 * smooth 1D profiles (sum_c |s_c|^2 <= 1), a variable-density Poisson-disc ky-kz mask (R = 4,
 * 24 x 24 calibration) and k-space = M F_yz S x from the SENSE operator itself; only the 1D
 * profiles and the mask (ny x nz) are uploaded. "ingest" is that making and is timed apart from
 * the solve. The solve is pipeline cs's readout-decoupled path (r5_cs_slabs_solve, cs_slab.h)
 * with its stage times (each bracketed by a device sync), and, unless --no-3d, the same problem
 * as one 3D solve (3D wavelets, pipeline cs with decouple=0) for comparison.
 *
 * Bound: issue 13 puts the bytes one L1 iteration must move at 384^2 x 256 x 12 at ~46 GB with
 * maps, mask and residual fused into the FFT passes and ~56 GB unfused, i.e. ~102 and ~124 bytes
 * per coil voxel; the bound column scales those to the run's size and divides by the back end's
 * measured copy bandwidth (a large copy where the context computes: bytes read + written).
 *
 * Usage: bench_cs3d [--backend cpu|gpu] [--size NX,NY,NZ] [--coils C] [--iters N] [--slab W]
 *                   [--runs R] [--no-3d]
 * Defaults: GPU 384,384,256, 12 coils, 50 iterations; CPU 96,96,64, 12 coils, 50 iterations;
 * slab 0 (auto); runs 1 (with more, the two solves alternate and each row is the best run). */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phantoms/sampling.h"
#include "recon/backends/backends.h"
#include "recon/core/array.h"
#include "recon/core/log.h"
#include "recon/linop/linop.h"
#include "recon/pipeline/cs_slab.h"
#include "recon/pipeline/pipelines.h"

#define BYTES_FUSED 101.6   /* per coil voxel and iteration: 46 GB / (384^2 x 256 x 12) */
#define BYTES_UNFUSED 123.7 /* 56 GB / the same */

struct synth {
	long n[3], coils;
	r5_array *kspace, *maps, *mask;
};

/* *out = values (host, dims4 = [x, y, z, coil], x fastest) where the context computes. */
static r5_status upload(r5_ctx *ctx, const long dims4[4], const float complex *values, r5_array **out)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < 4; d++)
		dims[d] = dims4[d];
	r5_array *host = NULL;
	R5_TRY(r5_array_alloc_host(dims, &host));
	memcpy(host->data, values, sizeof *values * (size_t)r5_dims_size(dims));
	r5_status s = r5_array_to_work(ctx, host, out);
	r5_array_free(host);
	return s;
}

/* Sample i of a 1D profile along dim d (size n): a box of half-width w (in units of n) for the
 * object, else coil c's smooth profile (magnitude <= 1, coil-dependent centre and phase). */
static float complex profile(int d, long i, long n, long c, int box, double w)
{
	double u = ((double)i - n / 2) / (double)n; /* -0.5 .. 0.5 */
	if (box)
		return fabs(u) <= w ? 1.0f : 0.0f;
	double centre = 0.4 * sin(2.0 * 3.14159265358979323846 * (double)(c + 1) * (d + 1) / 7.0);
	return (float complex)(exp(-4.0 * (u - centre) * (u - centre)) * cexp(I * (3.0 * u * (double)(c % 5) + d)));
}

/* dst (or dst +=, accumulate) = the product over x, y, z of 1D profiles, per coil: the object's
 * box of half-widths widths[] (box, coils 1) or the coils' smooth profiles (x's scaled by
 * 1 / sqrt(coils), so sum_c |s_c|^2 <= 1). */
static r5_status separable(r5_ctx *ctx, const long n[3], long coils, int box, const double widths[3],
			   r5_array *dst, int accumulate)
{
	r5_array *prof[3] = {NULL, NULL, NULL}, *xy = NULL;
	r5_status s = R5_OK;
	for (int d = 0; d < 3 && s == R5_OK; d++) {
		long dims4[4] = {1, 1, 1, coils};
		dims4[d] = n[d];
		float complex *v = malloc(sizeof *v * (size_t)(n[d] * coils));
		if (!v)
			return r5_set_error(R5_ENOMEM, "bench_cs3d: profiles");
		for (long c = 0; c < coils; c++)
			for (long i = 0; i < n[d]; i++)
				v[c * n[d] + i] = profile(d, i, n[d], c, box, box ? widths[d] : 0) / (box || d ? 1.0f : sqrtf((float)coils));
		s = upload(ctx, dims4, v, &prof[d]);
		free(v);
	}
	long xy_dims[R5_DIMS];
	r5_dims_ones(xy_dims);
	xy_dims[0] = n[0], xy_dims[1] = n[1], xy_dims[R5_DIM_COIL] = coils;
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, xy_dims, &xy);
	if (s == R5_OK)
		s = r5_zmul(ctx, xy, prof[0], prof[1], 0);
	if (s == R5_OK)
		s = r5_zmul(ctx, dst, xy, prof[2], accumulate ? R5_ZMUL_ACCUM : 0);
	for (int d = 0; d < 3; d++)
		r5_array_free(prof[d]);
	r5_array_free(xy);
	return s;
}

static r5_status synth_make(r5_ctx *ctx, struct synth *sy)
{
	long img[R5_DIMS], maps[R5_DIMS];
	r5_dims_ones(img);
	for (int d = 0; d < 3; d++)
		img[d] = sy->n[d];
	r5_dims_copy(maps, img);
	maps[R5_DIM_COIL] = sy->coils;
	r5_array *object = NULL;
	r5_linop *E = NULL;
	R5_TRY(r5_array_zeros(ctx, r5_ctx_residency(ctx), img, &object));
	static const double boxes[3][3] = {{0.35, 0.3, 0.3}, {0.1, 0.2, 0.25}, {0.05, 0.05, 0.4}};
	r5_status s = R5_OK;
	for (int k = 0; k < 3 && s == R5_OK; k++)
		s = separable(ctx, sy->n, 1, 1, boxes[k], object, 1);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, maps, &sy->maps);
	if (s == R5_OK)
		s = separable(ctx, sy->n, sy->coils, 0, NULL, sy->maps, 0);
	/* the mask: variable-density Poisson disc, R = 4, 24 x 24 calibration */
	long plane = sy->n[1] * sy->n[2], n_sampled = 0, mask4[4] = {1, sy->n[1], sy->n[2], 1};
	unsigned char *bits = malloc((size_t)plane);
	float complex *values = malloc(sizeof *values * (size_t)plane);
	int accel[2] = {4, 1};
	if (!bits || !values)
		s = r5_set_error(R5_ENOMEM, "bench_cs3d: mask");
	if (s == R5_OK)
		s = r5_sampling_mask(R5_SAMPLING_POISSON, (int)sy->n[1], (int)sy->n[2], accel, 24, 7, bits, &n_sampled);
	for (long i = 0; s == R5_OK && i < plane; i++)
		values[i] = bits[i] ? 1.0f : 0.0f;
	if (s == R5_OK)
		s = upload(ctx, mask4, values, &sy->mask);
	free(bits);
	free(values);
	long group = R5_PROGRESS_CHUNK_VALUES / r5_dims_size(img);
	if (s == R5_OK)
		s = r5_linop_sense_grouped(ctx, sy->maps, sy->mask, R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z),
					   group < 1 ? 1 : group, NULL, NULL, &E);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, E->odims, &sy->kspace);
	if (s == R5_OK)
		s = r5_linop_forward(ctx, E, sy->kspace, object);
	r5_linop_free(E);
	r5_array_free(object);
	return s;
}

/* Copy bandwidth where the context computes (bytes read + written per second), best of 3. */
static double copy_bandwidth(r5_ctx *ctx, const r5_array *a)
{
	r5_array *b = NULL;
	if (r5_array_alloc_work(ctx, a->dims, &b) != R5_OK)
		return 0;
	double best = 0;
	for (int k = 0; k < 3; k++) {
		double t = r5_pipeline_clock(ctx);
		if (r5_array_copy(ctx, b, a) != R5_OK)
			break;
		double dt = r5_pipeline_clock(ctx) - t, rate = 2.0 * (double)r5_array_size(a) * 8.0 / dt;
		best = rate > best ? rate : best;
	}
	r5_array_free(b);
	return best;
}

static void row(const char *stage, double s, int iters, double total)
{
	printf("%-38s | %9.3f | %9.2f | %5.1f%%\n", stage, s, 1e3 * s / iters, total > 0 ? 100.0 * s / total : 0.0);
}

/* The same problem as one 3D solve (3D wavelets), as pipeline cs with decouple=0. */
static r5_status solve_3d(r5_ctx *ctx, const r5_recon_params *p, const struct synth *sy, double *seconds)
{
	long idims[R5_DIMS];
	r5_linop *E = NULL;
	r5_array *rhs = NULL, *x = NULL;
	long group = R5_PROGRESS_CHUNK_VALUES / (sy->n[0] * sy->n[1] * sy->n[2]);
	double t = r5_pipeline_clock(ctx);
	R5_TRY(r5_linop_sense_grouped(ctx, sy->maps, sy->mask, R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z), group < 1 ? 1 : group,
				      NULL, NULL, &E));
	r5_dims_copy(idims, E->idims);
	r5_status s = r5_array_alloc_work(ctx, idims, &rhs);
	if (s == R5_OK)
		s = r5_array_zeros(ctx, r5_ctx_residency(ctx), idims, &x);
	if (s == R5_OK)
		s = r5_linop_adjoint(ctx, E, rhs, sy->kspace);
	r5_cs_solve_opts o = {0};
	if (s == R5_OK)
		s = r5_cs_solve(ctx, p, E, sy->kspace, rhs, x, &o);
	*seconds = r5_pipeline_clock(ctx) - t;
	r5_array_free(rhs);
	r5_array_free(x);
	r5_linop_free(E);
	return s;
}

static int parse_size(const char *text, long n[3])
{
	return sscanf(text, "%ld,%ld,%ld", &n[0], &n[1], &n[2]) == 3 && n[0] > 0 && n[1] > 0 && n[2] > 1;
}

int main(int argc, char **argv)
{
	const char *backend = r5_cuda_device_count() > 0 ? "gpu" : "cpu";
	long n[3] = {0, 0, 0}, coils = 12;
	int iters = 50, slab = 0, with_3d = 1, runs = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--backend") && i + 1 < argc)
			backend = argv[++i];
		else if (!strcmp(argv[i], "--size") && i + 1 < argc && parse_size(argv[i + 1], n))
			i++;
		else if (!strcmp(argv[i], "--coils") && i + 1 < argc)
			coils = atol(argv[++i]);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--slab") && i + 1 < argc)
			slab = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-3d"))
			with_3d = 0;
		else {
			fprintf(stderr, "usage: bench_cs3d [--backend cpu|gpu] [--size NX,NY,NZ] [--coils C] [--iters N] "
					"[--slab W] [--runs R] [--no-3d]\n");
			return 2;
		}
	}
	int gpu = strcmp(backend, "cpu") != 0;
	if (!n[0]) {
		long def[2][3] = {{96, 96, 64}, {384, 384, 256}};
		memcpy(n, def[gpu], sizeof n);
	}
	if (coils < 1 || iters < 1 || runs < 1 || slab < 0) {
		fprintf(stderr, "bench_cs3d: coils, iters and runs must be positive, slab >= 0\n");
		return 2;
	}
	r5_log_set_level(R5_LOG_WARN);
	r5_ctx *ctx = NULL;
	if (r5_ctx_create(&ctx, backend, 0) != R5_OK) {
		fprintf(stderr, "bench_cs3d: %s: %s\n", backend, r5_last_error());
		return 1;
	}
	fprintf(stderr, "bench_cs3d: %s\n", r5_ctx_describe(ctx));
	struct synth sy = {.n = {n[0], n[1], n[2]}, .coils = coils};
	double t = r5_pipeline_clock(ctx);
	r5_status s = synth_make(ctx, &sy);
	double ingest = r5_pipeline_clock(ctx) - t;
	r5_recon_params p = r5_recon_defaults;
	p.sense.iters = iters;
	p.cs.slab = slab;
	long idims[R5_DIMS];
	r5_array *image = NULL;
	r5_cs_slab_stats st = {0};
	double residual = 0, solve = 0, bw = 0, three_d = 0;
	if (s == R5_OK) {
		bw = copy_bandwidth(ctx, sy.kspace);
		r5_dims_copy(idims, sy.kspace->dims);
		idims[R5_DIM_COIL] = 1;
		s = r5_array_zeros(ctx, r5_ctx_residency(ctx), idims, &image);
	}
	/* the two solves alternate, best of `runs` each (a shared machine's load moves either) */
	for (int r = 0; r < runs && s == R5_OK; r++) {
		r5_cs_slab_stats run_st;
		double run_3d = 0;
		t = r5_pipeline_clock(ctx);
		r5_cs_slabs_opts o = {.lo = 0, .hi = 1, .stats = &run_st};
		s = r5_cs_slabs_solve(ctx, &p, sy.maps, sy.mask, sy.kspace, image, &o, &residual);
		double run = r5_pipeline_clock(ctx) - t;
		if (s == R5_OK && (r == 0 || run < solve))
			solve = run, st = run_st;
		if (s == R5_OK && with_3d)
			s = solve_3d(ctx, &p, &sy, &run_3d);
		if (s == R5_OK && with_3d && (r == 0 || run_3d < three_d))
			three_d = run_3d;
	}
	if (s != R5_OK) {
		fprintf(stderr, "bench_cs3d: %s\n", r5_last_error());
		return 1;
	}
	double coil_voxels = (double)r5_array_size(sy.kspace);
	printf("cs 3D (L1 wavelets, FISTA), %ld x %ld x %ld, %ld coils, %d iterations, %s; readout decoupled: %ld slab(s) "
	       "of %ld x positions; data residual %.4f; copy bandwidth %.1f GB/s\n",
	       n[0], n[1], n[2], coils, iters, r5_ctx_backend_name(ctx), st.n_slabs, st.width, residual, bw / 1e9);
	printf("%-38s | %9s | %9s | %s\n", "stage", "s", "ms/iter", "share");
	printf("---------------------------------------+-----------+-----------+-------\n");
	row("ingest (synthetic scan made here)", ingest, iters, 0);
	row("  gather k-space and maps", st.gather_s, iters, solve);
	row("  operators (masks, maps views)", st.operator_s, iters, solve);
	row("  E^H y (both passes)", st.rhs_s, iters, solve);
	row("  solve (FISTA, 2D wavelets)", st.solve_s, iters, solve);
	row("  data residual |y - E x|", st.residual_s, iters, solve);
	row("  scatter image", st.scatter_s, iters, solve);
	row("solve, readout decoupled (total)", solve, iters, solve);
	if (with_3d)
		row("solve, one 3D problem (3D wavelets)", three_d, iters, solve);
	if (bw > 0) {
		row("bound, fused (~102 B / coil voxel)", iters * coil_voxels * BYTES_FUSED / bw, iters, solve);
		row("bound, unfused (~124 B / coil voxel)", iters * coil_voxels * BYTES_UNFUSED / bw, iters, solve);
	}
	r5_array_free(image);
	r5_array_free(sy.kspace);
	r5_array_free(sy.maps);
	r5_array_free(sy.mask);
	r5_ctx_destroy(ctx);
	return 0;
}
