/* GPU parity suite: the orthogonal wavelet operator (recon/linop/wavelet.h) and so the
 * zwavelet_step slot, built on both contexts: W^H W = I, |W x| = |x| and the adjoint identity
 * on the GPU context, then forward, adjoint and normal of the same random input against the
 * CPU context's (Haar and Daubechies-4; even, odd and batch dims; x innermost and not; cycle-
 * spinning shifts). */
#include <math.h>
#include <stdio.h>

#include "gpu_suite.h"
#include "recon/linop/lintest.h"
#include "recon/linop/wavelet.h"

struct wavelet_row {
	const char *name;
	long dims[4];
	unsigned long flags;
	r5_wavelet_kind kind;
	int levels;
	long shifts[3];
};

static const struct wavelet_row rows[] = {
	{"haar 1D 1024", {1024, 1, 1, 1}, 1, R5_WAVELET_HAAR, 0, {0, 0, 0}},
	{"db4 2D 256x256x1x8", {256, 256, 1, 8}, 3, R5_WAVELET_DB4, 0, {0, 0, 0}},
	{"db4 2D 255x97 odd shifted", {255, 97, 1, 2}, 3, R5_WAVELET_DB4, 0, {17, -40, 0}},
	{"haar 3D 64x48x40 y|z", {64, 48, 40, 1}, 6, R5_WAVELET_HAAR, 3, {0, 5, 9}},
	{"db4 3D 33x70x45 xyz shifted", {33, 70, 45, 1}, 7, R5_WAVELET_DB4, 0, {3, 2, 1}},
	{"db8 2D 200x61 odd shifted", {200, 61, 1, 3}, 3, R5_WAVELET_DB8, 0, {9, -5, 0}},
};

static void wavelet_row_run(struct pair *p, const struct wavelet_row *r, unsigned seed)
{
	long dims[R5_DIMS], shifts[R5_DIMS] = {0};
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = d < 4 ? r->dims[d] : 1;
	for (int d = 0; d < 3; d++)
		shifts[d] = r->shifts[d];
	r5_linop *op_cpu = NULL, *op_gpu = NULL;
	if (r5_linop_wavelet(p->cpu, dims, r->flags, r->kind, r->levels, &op_cpu) != R5_OK ||
	    r5_linop_wavelet(p->gpu, dims, r->flags, r->kind, r->levels, &op_gpu) != R5_OK ||
	    r5_linop_wavelet_set_shift(op_cpu, shifts) != R5_OK || r5_linop_wavelet_set_shift(op_gpu, shifts) != R5_OK) {
		suite_fail("wavelet build", r->name, r5_last_error());
		goto done;
	}
	r5_linop_errors e;
	if (r5_linop_property_test(p->gpu, op_gpu, seed, &e) != R5_OK) {
		suite_fail("wavelet properties", r->name, r5_last_error());
	} else {
		suite_row("wavelet adjoint", r->name, e.adjoint, 0, TOL, 1, "<Wx,y> vs <x,W^H y>");
		suite_row("wavelet normal", r->name, e.normal, 0, TOL, 1, "identity vs W^H(Wx)");
	}
	static const char *const names[3] = {"wavelet W cpu/gpu", "wavelet W^H cpu/gpu", "wavelet W^H W cpu/gpu"};
	r5_array *coefficients = NULL;
	for (int which = 0; which < 3; which++) {
		r5_array *cpu = NULL, *gpu = NULL;
		if (r5_linop_apply_random(p->cpu, op_cpu, which, seed + 1, &cpu) != R5_OK ||
		    r5_linop_apply_random(p->gpu, op_gpu, which, seed + 1, &gpu) != R5_OK)
			suite_fail(names[which], r->name, r5_last_error());
		else
			suite_compare(names[which], r->name, cpu->data, gpu->data, r5_array_size(cpu), 1, TOL);
		r5_array_free(cpu);
		if (which == 0)
			coefficients = gpu;
		else
			r5_array_free(gpu);
	}
	/* W^H (W x) = x on the device: the input apply_random used is the normal's result */
	r5_array *x = NULL, *work = NULL, *back = NULL, *host = NULL;
	if (coefficients && r5_linop_apply_random(p->gpu, op_gpu, 2, seed + 1, &x) == R5_OK &&
	    r5_array_to_work(p->gpu, coefficients, &work) == R5_OK && r5_array_alloc_work(p->gpu, dims, &back) == R5_OK &&
	    r5_linop_adjoint(p->gpu, op_gpu, back, work) == R5_OK && r5_array_to_host(p->gpu, back, &host) == R5_OK) {
		double d = 0, n = 0, nw = 0;
		for (long i = 0; i < r5_array_size(x); i++) {
			d += cabsf(host->data[i] - x->data[i]) * cabsf(host->data[i] - x->data[i]);
			n += cabsf(x->data[i]) * cabsf(x->data[i]);
			nw += cabsf(coefficients->data[i]) * cabsf(coefficients->data[i]);
		}
		suite_row("wavelet W^H W x = x", r->name, sqrt(d / n), 0, TOL, 1, "on the GPU");
		suite_row("wavelet |Wx| = |x|", r->name, fabs(sqrt(nw / n) - 1), 0, TOL, 1, "on the GPU");
	} else {
		suite_fail("wavelet W^H W x = x", r->name, r5_last_error());
	}
	r5_array_free(host);
	r5_array_free(back);
	r5_array_free(work);
	r5_array_free(x);
	r5_array_free(coefficients);
done:
	r5_linop_free(op_cpu);
	r5_linop_free(op_gpu);
}

void suite_wavelet(struct pair *p)
{
	unsigned seed = (unsigned)(suite_uniform() * 1e9) + 1000000000u;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		wavelet_row_run(p, &rows[i], seed + 8u * (unsigned)i);
}
