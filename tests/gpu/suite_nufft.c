/* GPU parity suite: the NUFFT (recon/linop/nufft.h) on the GPU context — the tile method through
 * the CUDA back end's nufft_* slots (gpu/nufft_cuda.cu) and cuFFT — against the CPU plan (host
 * spreader, FFTW) on the CPU context, on fresh random images, samples, points and weights:
 * forward (type 2), adjoint (type 1), the adjoint of density-compensated samples (the weights
 * multiplied in on the device), the Toeplitz normal A^H W A (kernel made and applied on the
 * device), the grid-domain spread/interpolate pair (Pipe-Menon's), and the adjoint identity <A x, y> = <x, A^H y> of the GPU plan alone. 2D and 3D,
 * several coils, odd sizes, sigma 2 and 1.25, dense centres (bins split into subproblems), a
 * width-9 3D case (25x17x17-cell tiles, 58 KiB of shared memory: the opt-in path) and 8 coils in 3D (coil
 * groups). In self-test mode (R5_GPU_SUITE_SELFTEST=1) the "GPU" plan is the tile method on the
 * CPU back end (recon/cpu/cpu_nufft.c), so the rows check the device path's logic on the host.
 *
 * Tolerances (relative, ||gpu - cpu|| / ||cpu||): the two compute the same weights and
 * de-apodisation (recon/core/nufft_math.h) and differ in summation order (atomics), FMA
 * contraction and the FFT library: 1e-5 at sigma 2; 5e-5 at sigma 1.25 (its de-apodisation
 * amplifies fp32 rounding: 1.2e-5 seen between the two CPU methods); 1e-4 where a grid has more
 * than 2^20 cells (the suite's FFT rule); the Toeplitz rows at least 5e-5 (a dense centre puts
 * tens of thousands of weights into the kernel's central cells: summed in another order they
 * differ by ~1e-5 of the output, 7.7e-6 seen between the CPU methods); the adjoint identity at the
 * row's tolerance (1e-5 seen at sigma 1.25). Outputs are poisoned with NaN and must be fully
 * written; NaN never passes. */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu_suite.h"
#include "recon/core/array.h"
#include "recon/core/dims.h"
#include "recon/linop/nufft.h"

struct nufft_row {
	const char *name;
	long dims[4];
	long n;
	double sigma;
	int width; /* 0: the default tolerance's */
	double dense; /* fraction of points within one cycle/FOV of DC */
	double tol;
};

static const struct nufft_row rows[] = {
	{"2D 64x48 c4", {64, 48, 1, 4}, 5000, 2.0, 0, 0.0, 1e-5},
	{"2D 37x29 c3 s1.25 odd", {37, 29, 1, 3}, 3000, 1.25, 0, 0.0, 5e-5},
	{"2D 128x128 c8 dense", {128, 128, 1, 8}, 60000, 2.0, 0, 0.4, 1e-5},
	{"2D 33x31 c9 s1.25 dense", {33, 31, 1, 9}, 8000, 1.25, 0, 0.5, 5e-5},
	{"3D 24x20x18 c2", {24, 20, 18, 2}, 5000, 2.0, 0, 0.0, 1e-5},
	{"3D 17x15x13 c3 s1.25", {17, 15, 13, 3}, 3000, 1.25, 0, 0.3, 5e-5},
	{"3D 32^3 c1 w9", {32, 32, 32, 1}, 20000, 2.0, 9, 0.0, 1e-5},
	{"3D 64^3 c8 groups", {64, 64, 64, 8}, 200000, 2.0, 0, 0.1, 1e-4},
};

static float *row_points(const struct nufft_row *r)
{
	float *k = malloc(sizeof(float) * 3 * (size_t)r->n);
	if (!k)
		return NULL;
	for (long j = 0; j < r->n; j++) {
		int centre = j > 0 && 0.5 * (suite_uniform() + 1.0) < r->dense;
		for (int d = 0; d < 3; d++) {
			double N = (double)r->dims[d], u = 0.5 * suite_uniform(); /* [-1/2, 1/2) */
			k[3 * j + d] = r->dims[d] == 1 ? 0.0f : j == 0 ? (float)(-N / 2) : centre ? (float)u : (float)(u * N);
		}
	}
	return k;
}

static r5_array *host_random(const long dims[R5_DIMS])
{
	r5_array *a = NULL;
	if (r5_array_alloc_host(dims, &a) != R5_OK)
		return NULL;
	for (long i = 0; i < r5_array_size(a); i++)
		a->data[i] = suite_crand();
	return a;
}

/* The operations of a row: 0 forward, 1 adjoint, 2 normal, 3 adjoint of weights x in (weights
 * broadcast over coils, multiplied on the device), 4 spread to the grid, 5 interpolate from it
 * (the grid-domain pair of Pipe-Menon density compensation). */
#define N_OPS 6
static r5_status nufft_op(r5_ctx *ctx, r5_nufft_plan *plan, int which, r5_array *out, const r5_array *in)
{
	switch (which) {
	case 0: return r5_nufft_forward(ctx, plan, out, in);
	case 2: return r5_nufft_normal(ctx, plan, out, in);
	case 4: return r5_nufft_spread_grid(ctx, plan, out, in);
	case 5: return r5_nufft_interp_grid(ctx, plan, out, in);
	default: return r5_nufft_adjoint(ctx, plan, out, in);
	}
}

/* The GPU side: out (allocated where the GPU context computes, poisoned with NaN) = op(in), then
 * back on the host. */
static r5_status gpu_apply(struct pair *p, r5_nufft_plan *plan, int which, const long out_dims[R5_DIMS],
			   const r5_array *in_host, const r5_array *weights_host, r5_array **out_host)
{
	r5_array *in = NULL, *out = NULL, *wts = NULL;
	r5_status s = r5_array_to_work(p->gpu, in_host, &in);
	if (s == R5_OK)
		s = r5_array_alloc_work(p->gpu, out_dims, &out);
	if (s == R5_OK)
		s = r5_zfill(p->gpu, out, CMPLXF(NAN, NAN));
	if (s == R5_OK && which == 3) {
		s = r5_array_to_work(p->gpu, weights_host, &wts);
		if (s == R5_OK)
			s = r5_zmul(p->gpu, in, in, wts, 0);
	}
	if (s == R5_OK)
		s = nufft_op(p->gpu, plan, which, out, in);
	if (s == R5_OK)
		s = r5_array_to_host(p->gpu, out, out_host);
	r5_array_free(in);
	r5_array_free(out);
	r5_array_free(wts);
	return s;
}

/* The CPU reference of the same. */
static r5_status cpu_apply(struct pair *p, r5_nufft_plan *plan, int which, const long out_dims[R5_DIMS],
			   const r5_array *in_host, const r5_array *weights_host, r5_array **out_host)
{
	r5_array *in = NULL;
	r5_status s = r5_array_to_work(p->cpu, in_host, &in);
	if (s == R5_OK)
		s = r5_array_alloc_work(p->cpu, out_dims, out_host);
	if (s == R5_OK && which == 3)
		s = r5_zmul(p->cpu, in, in, weights_host, 0);
	if (s == R5_OK)
		s = nufft_op(p->cpu, plan, which, *out_host, in);
	r5_array_free(in);
	return s;
}

static double complex host_dot(const r5_array *a, const r5_array *b)
{
	double complex sum = 0;
	for (long i = 0; i < r5_array_size(a); i++)
		sum += conj((double complex)a->data[i]) * (double complex)b->data[i];
	return sum;
}

static void nufft_row_run(struct pair *p, const struct nufft_row *r)
{
	long dims[R5_DIMS], sdims[R5_DIMS], wdims[R5_DIMS];
	r5_dims_ones(dims);
	r5_dims_ones(sdims);
	r5_dims_ones(wdims);
	for (int d = 0; d < 4; d++)
		dims[d] = r->dims[d];
	sdims[1] = r->n, sdims[3] = r->dims[3];
	wdims[1] = r->n;
	r5_nufft_opts oc = r5_nufft_defaults, og = r5_nufft_defaults;
	oc.oversampling = og.oversampling = r->sigma;
	oc.width = og.width = r->width;
	oc.method = R5_NUFFT_METHOD_HOST;
	og.method = R5_NUFFT_METHOD_TILES;
	float *k = row_points(r), *w = malloc(sizeof(float) * (size_t)r->n);
	r5_array *x = host_random(dims), *y = host_random(sdims), *wts = NULL, *grid = NULL;
	r5_nufft_plan *pc = NULL, *pg = NULL;
	const char *why = NULL;
	if (!k || !w || !x || !y || r5_array_alloc_host(wdims, &wts) != R5_OK)
		why = "allocation failed";
	for (long j = 0; !why && j < r->n; j++) {
		w[j] = (float)(0.6 + 0.5 * suite_uniform()); /* (0.1, 1.1): a density compensation's range */
		wts->data[j] = w[j];
	}
	if (!why && (r5_nufft_plan_make(p->cpu, dims, &oc, &pc) != R5_OK || r5_nufft_set_points(p->cpu, pc, r->n, k) != R5_OK ||
		     r5_nufft_toeplitz(p->cpu, pc, w) != R5_OK))
		why = r5_last_error();
	if (!why && (r5_nufft_plan_make(p->gpu, dims, &og, &pg) != R5_OK || r5_nufft_set_points(p->gpu, pg, r->n, k) != R5_OK ||
		     r5_nufft_toeplitz(p->gpu, pg, w) != R5_OK))
		why = r5_last_error();
	if (why) {
		suite_fail("nufft plan", r->name, why);
		goto done;
	}
	static const char *const names[N_OPS] = {"nufft forward",     "nufft adjoint",    "nufft Toeplitz normal",
						 "nufft adjoint DCF", "nufft spread grid", "nufft interp grid"};
	r5_nufft_info info;
	r5_nufft_get_info(pc, &info);
	long gdims[R5_DIMS];
	r5_dims_ones(gdims);
	gdims[0] = r->dims[3], gdims[1] = info.grid[0], gdims[2] = info.grid[1], gdims[3] = info.grid[2];
	grid = host_random(gdims);
	r5_array *gpu_out[N_OPS] = {0};
	for (int which = 0; grid && which < N_OPS; which++) {
		const long *odims = which == 0 || which == 5 ? sdims : which == 4 ? gdims : dims;
		const r5_array *in = which == 0 || which == 2 ? x : which == 5 ? grid : y;
		r5_array *cpu_out = NULL;
		if (cpu_apply(p, pc, which, odims, in, wts, &cpu_out) != R5_OK ||
		    gpu_apply(p, pg, which, odims, in, wts, &gpu_out[which]) != R5_OK)
			suite_fail(names[which], r->name, r5_last_error());
		else
			suite_compare(names[which], r->name, cpu_out->data, gpu_out[which]->data, r5_array_size(cpu_out), 1,
				      which == 2 ? (r->tol > 5e-5 ? r->tol : 5e-5) : r->tol);
		r5_array_free(cpu_out);
	}
	if (gpu_out[0] && gpu_out[1]) { /* <A x, y> vs <x, A^H y>, both from the GPU */
		double complex ax_y = host_dot(gpu_out[0], y), x_ahy = host_dot(x, gpu_out[1]);
		double rel = cabs(ax_y - x_ahy) / cabs(ax_y);
		suite_row("nufft adjoint identity", r->name, rel, cabs(ax_y - x_ahy), r->tol > 1e-5 ? r->tol : 1e-5, !isnan(rel),
			  "GPU plan alone");
	}
	for (int which = 0; which < N_OPS; which++)
		r5_array_free(gpu_out[which]);
done:
	r5_nufft_plan_destroy(pc);
	r5_nufft_plan_destroy(pg);
	r5_array_free(x), r5_array_free(y), r5_array_free(wts), r5_array_free(grid);
	free(k), free(w);
}

void suite_nufft(struct pair *p)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		nufft_row_run(p, &rows[i]);
}
