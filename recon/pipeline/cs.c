/* Compressed sensing for one frame (pipeline cs; pipelines.h): parallel imaging with a sparsity
 * prior, PICS (Lustig, Donoho & Pauly, MRM 58:1182, 2007; Uecker et al., MRM 71:990, 2014, as
 * BART's pics):
 *     min_x  1/2 |E x - y|^2 + l1 |W x|_1 + tv |D x|_(2,1)
 * with E the SENSE encoding (ESPIRiT maps, Cartesian mask), W an orthonormal Daubechies-4
 * wavelet transform over the image dims, D forward finite differences (isotropic TV: the
 * differences of a voxel are one group).
 *   reg l1:    FISTA with adaptive restart (fista.h); the prox of l1 |W.|_1 for orthonormal W
 *              is W^H soft(W v), with fresh random cycle-spinning shifts at every application
 *              (translation invariance, as BART's randomised shifts; deterministic seed).
 *   reg tv, l1+tv: ADMM (admm.h) with the terms (D, L2,1 over the difference dim) and (W, L1).
 * Weights are relative: the absolute weight is lambda times max |E^H y| (the zero-filled SENSE
 * image's peak), so defaults carry across scanners and gains. The step of FISTA is 1 / L with
 * L = the number of map sets: ESPIRiT maps have sum_c |s_c|^2 <= 1 per set and the FFT is
 * unitary, so |E^H E| <= n_maps without a power iteration. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../linop/finite_diff.h"
#include "../linop/wavelet.h"
#include "../solve/admm.h"
#include "../solve/fista.h"
#include "../solve/prox.h"
#include "pipelines.h"

/* --- prox of |W x|_1 with cycle spinning --- */

struct wavelet_l1 {
	r5_linop *w;
	long dims[R5_DIMS];
	unsigned long flags;
	r5_array *coefficients;
	unsigned long long state; /* shifts' random stream */
};

static void wavelet_l1_destroy(void *data)
{
	struct wavelet_l1 *d = data;
	r5_linop_free(d->w);
	r5_array_free(d->coefficients);
	free(d);
}

static long next_shift(struct wavelet_l1 *d, long n)
{
	d->state = d->state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (long)((d->state >> 33) % (unsigned long long)(n < 8 ? n : 8));
}

static r5_status wavelet_l1_apply(r5_ctx *ctx, r5_prox *prox, float mu, r5_array *out, const r5_array *in)
{
	struct wavelet_l1 *d = prox->data;
	long shifts[R5_DIMS] = {0};
	for (int k = 0; k < R5_DIMS; k++)
		if (d->flags >> k & 1)
			shifts[k] = next_shift(d, d->dims[k]);
	R5_TRY(r5_linop_wavelet_set_shift(d->w, shifts));
	if (!d->coefficients)
		R5_TRY(r5_array_alloc_work(ctx, d->w->odims, &d->coefficients));
	R5_TRY(r5_linop_forward(ctx, d->w, d->coefficients, in));
	R5_TRY(r5_zsoftthresh(ctx, mu, d->coefficients, d->coefficients));
	return r5_linop_adjoint(ctx, d->w, out, d->coefficients);
}

/* the image dims (size > 1 among x, y, z) the regularisers act on */
static unsigned long image_flags(const long dims[R5_DIMS])
{
	unsigned long flags = 0;
	for (int k = 0; k < 3; k++)
		if (dims[k] > 1)
			flags |= R5_FLAG(k);
	return flags;
}

static r5_status wavelet_l1_prox(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_prox **out)
{
	struct wavelet_l1 *d = calloc(1, sizeof *d);
	if (!d)
		return r5_set_error(R5_ENOMEM, "cs: wavelet prox");
	r5_dims_copy(d->dims, dims);
	d->flags = flags;
	d->state = 0x5eed5eedULL;
	r5_status s = r5_linop_wavelet(ctx, dims, d->flags, R5_WAVELET_DB4, 0, &d->w);
	if (s != R5_OK) {
		wavelet_l1_destroy(d);
		return s;
	}
	return r5_prox_create("wavelet-l1", dims, wavelet_l1_apply, d, wavelet_l1_destroy, out);
}

/* --- the solves --- */

static r5_status run_fista(r5_ctx *ctx, const r5_recon_params *p, r5_linop *E, const r5_array *kspace, float scale,
			   unsigned long flags, r5_array *x, r5_iter_progress *hook)
{
	r5_prox *g = NULL;
	r5_iter *it = NULL;
	R5_TRY(wavelet_l1_prox(ctx, E->idims, flags, &g));
	r5_fista_conf conf = r5_fista_defaults;
	conf.max_iters = p->sense.iters;
	conf.lambda = p->cs.lambda_l1 * scale;
	conf.lipschitz = (double)E->idims[R5_DIM_MAP];
	r5_status s = r5_fista_init(ctx, &conf, E, kspace, g, x, &it);
	if (s == R5_OK)
		s = r5_iter_run(it, r5_iter_progress_hook, hook);
	r5_iter_free(it);
	r5_prox_free(g);
	return s;
}

static r5_status run_admm(r5_ctx *ctx, const r5_recon_params *p, r5_linop *E, const r5_array *kspace, float scale,
			  unsigned long flags, r5_array *x, r5_iter_progress *hook)
{
	r5_admm_term terms[2];
	int n = 0;
	memset(terms, 0, sizeof terms);
	r5_status s = R5_OK;
	if (strstr(p->cs.reg, "tv")) {
		/* differences stacked along the coil dim (size 1 in the image); one group per voxel */
		s = r5_linop_finite_diff(ctx, E->idims, flags, R5_DIM_COIL, &terms[n].op);
		if (s == R5_OK)
			s = r5_prox_l21(ctx, terms[n].op->odims, R5_FLAG(R5_DIM_COIL), 1.0f, &terms[n].prox);
		terms[n++].lambda = p->cs.lambda_tv * scale;
	}
	if (s == R5_OK && strstr(p->cs.reg, "l1")) {
		s = r5_linop_wavelet(ctx, E->idims, flags, R5_WAVELET_DB4, 0, &terms[n].op);
		if (s == R5_OK)
			s = r5_prox_l1(ctx, terms[n].op->odims, 1.0f, &terms[n].prox);
		terms[n++].lambda = p->cs.lambda_l1 * scale;
	}
	r5_admm_conf conf = r5_admm_defaults;
	conf.max_iters = p->sense.iters;
	/* the data term's curvature is about 1 (|E^H E| <= n_maps) and D^H D reaches 4 per dim: rho 1
	 * over-smooths at 30 iterations (3D TV 0.278 vs SENSE 0.180); 0.02 measured best of 0.005..1
	 * (2D TV 0.189 -> 0.143, 3D 0.188) */
	conf.rho = 0.02f;
	r5_iter *it = NULL;
	if (s == R5_OK)
		s = r5_admm_init(ctx, &conf, E, kspace, terms, n, x, &it);
	if (s == R5_OK)
		s = r5_iter_run(it, r5_iter_progress_hook, hook);
	r5_iter_free(it);
	for (int i = 0; i < n; i++) {
		r5_linop_free(terms[i].op);
		r5_prox_free(terms[i].prox);
	}
	return s;
}

r5_status r5_cs_solve(r5_ctx *ctx, const r5_recon_params *p, r5_linop *E, const r5_array *kspace,
		      const r5_array *rhs, r5_array *x, const r5_cs_solve_opts *o)
{
	float peak = o->peak;
	if (!(peak > 0.0f))
		R5_TRY(r5_zmaxabs(ctx, rhs, &peak));
	if (!(peak > 0.0f))
		return r5_zfill(ctx, x, 0.0f); /* no signal: the minimiser is 0 */
	unsigned long flags = o->reg_flags ? o->reg_flags : image_flags(E->idims);
	r5_iter_progress hook = {.progress = o->progress, .stage = "cs", .lo = o->lo, .hi = o->hi};
	if (!strcmp(p->cs.reg, "l1"))
		return run_fista(ctx, p, E, kspace, peak, flags, x, &hook);
	return run_admm(ctx, p, E, kspace, peak, flags, x, &hook);
}
