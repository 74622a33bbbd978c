/* Compressed sensing for one frame (pipeline cs; pipelines.h): parallel imaging with a sparsity
 * prior, PICS (Lustig, Donoho & Pauly, MRM 58:1182, 2007; Uecker et al., MRM 71:990, 2014, as
 * BART's pics):
 *     min_x  1/2 |E x - y|^2 + l1 |W x|_1 + tv |D x|_(2,1)
 * with E the SENSE encoding (ESPIRiT maps, Cartesian mask), W orthonormal wavelets over the image
 * dims (default the union of Haar and Daubechies-4 bases), D forward finite differences
 * (isotropic TV: the differences of a voxel are one group).
 *   reg l1:    FISTA with adaptive restart (fista.h). The prox of l1 |W.|_1 for one orthonormal W
 *              is W^H soft(W v); each application averages `spins` of them, each with fresh random
 *              cycle-spinning shifts (Coifman & Donoho 1995; translation invariance, as BART's
 *              randomised shifts; deterministic seed), the bases of a union taken in turn. An
 *              average of proxes is the prox of a convex function (the proximal average, Bauschke
 *              et al. 2008), so FISTA keeps its footing. Measured on the real brains (README): 8
 *              spins over Haar + Daubechies-4 gave workshop ksp.cfl 0.0534 against 0.0578 for one
 *              Daubechies-4 shift per iteration.
 *   reg tv, l1+tv: ADMM (admm.h) with the terms (D, L2,1 over the difference dim) and (W_b, L1)
 *              per basis b of the union, the weight shared out.
 * Weights: relative numbers are times max |E^H y| (the zero-filled SENSE image's peak); auto
 * (the default) is kappa times the k-space noise std measured on the sampled periphery
 * (r5_cs_noise_sigma), so the prior's strength follows the noise, not the signal scale. The step
 * of FISTA is 1 / L with L = the number of map sets: ESPIRiT maps have sum_c |s_c|^2 <= 1 per set
 * and the FFT is unitary, so |E^H E| <= n_maps without a power iteration. */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../linop/finite_diff.h"
#include "../linop/wavelet.h"
#include "../solve/admm.h"
#include "../solve/fista.h"
#include "../core/log.h"
#include "../solve/prox.h"
#include "pipelines.h"

/* auto weights: kappa times the k-space noise std, never below FLOOR times the zero-filled peak
 * (a noise-free scan still has aliasing to remove). Measured on the two real brains (README,
 * "Compressed sensing"): l1 NRMSE is flat within 2 % over kappa 0.15..0.25 on both, best at
 * 0.17 on the workshop scan (R 7.9) and at 0.2..0.25 on full.cfl at R = 4. */
#define R5_CS_AUTO_KAPPA_L1 0.17f
#define R5_CS_AUTO_KAPPA_TV 0.1f
#define R5_CS_AUTO_FLOOR 0.001f
/* the wavelets stop while a band is still this wide (as BART's minimum size): thresholding the
 * coarsest bands of a 230 x 180 brain (3 x 2 samples) cost SSIM 0.948 -> 0.923 at R = 4 */
#define R5_CS_WAVELET_MIN_BLOCK 32

/* --- prox of |W x|_1 with cycle spinning --- */

#define MAX_BASES 3

struct wavelet_l1 {
	r5_linop *w[MAX_BASES]; /* the bases, taken in turn by the spins */
	int n_bases;
	long dims[R5_DIMS];
	unsigned long flags;
	r5_array *coefficients;
	int spins;    /* shifted transforms averaged per application */
	r5_array *acc; /* their sum */
	unsigned long long state; /* shifts' random stream */
};

static void wavelet_l1_destroy(void *data)
{
	struct wavelet_l1 *d = data;
	for (int b = 0; b < d->n_bases; b++)
		r5_linop_free(d->w[b]);
	r5_array_free(d->coefficients);
	r5_array_free(d->acc);
	free(d);
}

static long next_shift(struct wavelet_l1 *d, long n)
{
	d->state = d->state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (long)((d->state >> 33) % (unsigned long long)(n < 8 ? n : 8));
}

static r5_status wavelet_l1_once(r5_ctx *ctx, struct wavelet_l1 *d, r5_linop *w, float mu, r5_array *out,
			       const r5_array *in)
{
	long shifts[R5_DIMS] = {0};
	for (int k = 0; k < R5_DIMS; k++)
		if (d->flags >> k & 1)
			shifts[k] = next_shift(d, d->dims[k]);
	R5_TRY(r5_linop_wavelet_set_shift(w, shifts));
	if (!d->coefficients)
		R5_TRY(r5_array_alloc_work(ctx, w->odims, &d->coefficients));
	R5_TRY(r5_linop_forward(ctx, w, d->coefficients, in));
	R5_TRY(r5_zsoftthresh(ctx, mu, d->coefficients, d->coefficients));
	return r5_linop_adjoint(ctx, w, out, d->coefficients);
}

static r5_status wavelet_l1_apply(r5_ctx *ctx, r5_prox *prox, float mu, r5_array *out, const r5_array *in)
{
	struct wavelet_l1 *d = prox->data;
	if (d->spins <= 1)
		return wavelet_l1_once(ctx, d, d->w[0], mu, out, in);
	if (!d->acc)
		R5_TRY(r5_array_alloc_work(ctx, d->dims, &d->acc));
	R5_TRY(r5_zfill(ctx, d->acc, 0.0f));
	for (int k = 0; k < d->spins; k++) {
		R5_TRY(wavelet_l1_once(ctx, d, d->w[k % d->n_bases], mu, out, in));
		R5_TRY(r5_zaxpy(ctx, d->acc, 1.0f / (float)d->spins, out));
	}
	return r5_array_copy(ctx, out, d->acc);
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

/* The bases of the wavelet parameter: "db4", or a union such as "haar+db4" (params.c's choices). */
static int wavelet_kinds(const char *name, r5_wavelet_kind kinds[MAX_BASES])
{
	static const struct {
		const char *name;
		r5_wavelet_kind kind;
	} known[] = {{"haar", R5_WAVELET_HAAR}, {"db4", R5_WAVELET_DB4}, {"db8", R5_WAVELET_DB8}};
	int n = 0;
	for (const char *part = name; *part && n < MAX_BASES;) {
		size_t len = strcspn(part, "+");
		for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
			if (strlen(known[i].name) == len && !strncmp(part, known[i].name, len))
				kinds[n++] = known[i].kind;
		part += len + (part[len] == '+');
	}
	return n;
}

/* The wavelet operators of p's basis or union of bases over dims. */
static r5_status wavelet_bases(r5_ctx *ctx, const r5_recon_params *p, const long dims[R5_DIMS], unsigned long flags,
			       r5_linop *w[MAX_BASES], int *n)
{
	r5_wavelet_kind kinds[MAX_BASES];
	*n = wavelet_kinds(p->cs.wavelet, kinds);
	if (*n == 0)
		return r5_set_error(R5_EINVAL, "cs: unknown wavelet '%s'", p->cs.wavelet);
	for (int b = 0; b < *n; b++)
		R5_TRY(r5_linop_wavelet_min(ctx, dims, flags, kinds[b], 0, R5_CS_WAVELET_MIN_BLOCK, &w[b]));
	return R5_OK;
}

static r5_status wavelet_l1_prox(r5_ctx *ctx, const r5_recon_params *p, const long dims[R5_DIMS],
				 unsigned long flags, r5_prox **out)
{
	struct wavelet_l1 *d = calloc(1, sizeof *d);
	if (!d)
		return r5_set_error(R5_ENOMEM, "cs: wavelet prox");
	r5_dims_copy(d->dims, dims);
	d->flags = flags;
	d->spins = p->cs.spins > 0 ? p->cs.spins : 1;
	d->state = 0x5eed5eedULL;
	r5_status s = wavelet_bases(ctx, p, dims, flags, d->w, &d->n_bases);
	if (s != R5_OK) {
		d->n_bases = MAX_BASES; /* those made before the failure; the rest are NULL (calloc) */
		wavelet_l1_destroy(d);
		return s;
	}
	return r5_prox_create("wavelet-l1", dims, wavelet_l1_apply, d, wavelet_l1_destroy, out);
}

/* --- the noise level, for the weights' auto rule --- */

static int compare_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* Robust std of complex white noise from the sampled k-space periphery of one frame: the
 * samples whose normalised radius over the encoded dims (x, y, z of size > 1; |k_d| / (n_d / 2))
 * is at least 0.9 hold almost no signal, and the median of their magnitudes is sigma sqrt(ln 2)
 * for complex Gaussian noise of total variance sigma^2 (Rayleigh). At most about 2^18 samples are
 * read (a regular stride through the candidates). 0 when there are fewer than 64. */
float r5_cs_noise_sigma(const r5_scan *scan, long frame)
{
	const r5_array *k = scan->kspace;
	long n[3] = {k->dims[0], k->dims[1], k->dims[2]}, coils = k->dims[R5_DIM_COIL];
	long frame_size = n[0] * n[1] * n[2] * coils, plane = scan->mask_dims[1] * scan->mask_dims[2];
	const float complex *data = k->data + frame * frame_size;
	const unsigned char *sampled = scan->sampled + frame * plane;
	long candidates = 0;
	for (int pass = 0; pass < 2; pass++) {
		long stride = pass ? candidates / (1L << 18) + 1 : 0, seen = 0, used = 0;
		float *mags = pass ? malloc(sizeof(float) * (size_t)(candidates / stride + 1)) : NULL;
		if (pass && !mags)
			return 0.0f;
		for (long z = 0; z < n[2]; z++)
			for (long y = 0; y < n[1]; y++) {
				if (!sampled[y + n[1] * z])
					continue;
				double ry = n[1] > 1 ? (double)(y - n[1] / 2) / (double)(n[1] / 2) : 0.0;
				double rz = n[2] > 1 ? (double)(z - n[2] / 2) / (double)(n[2] / 2) : 0.0;
				for (long x = 0; x < n[0]; x++) {
					double rx = n[0] > 1 ? (double)(x - n[0] / 2) / (double)(n[0] / 2) : 0.0;
					if (rx * rx + ry * ry + rz * rz < 0.81)
						continue;
					for (long c = 0; c < coils; c++, seen++) {
						if (!pass) {
							candidates++;
							continue;
						}
						if (seen % stride == 0)
							mags[used++] = cabsf(data[x + n[0] * (y + n[1] * (z + n[2] * c))]);
					}
				}
			}
		if (pass) {
			float sigma = 0.0f;
			if (used >= 64) {
				qsort(mags, (size_t)used, sizeof *mags, compare_float);
				sigma = mags[used / 2] / 0.83255461f; /* sqrt(ln 2) */
			}
			free(mags);
			return sigma;
		}
	}
	return 0.0f;
}

/* The absolute weight of one term: lambda relative to the zero-filled image's peak, or for auto
 * kappa times the noise level (when one is known and the rule gives more than the floor) */
static float term_weight(float lambda, float kappa, float peak, float sigma)
{
	if (lambda >= 0.0f)
		return lambda * peak;
	float w = kappa * sigma, floor = R5_CS_AUTO_FLOOR * peak;
	return w > floor ? w : floor;
}

/* --- the solves --- */

static r5_status run_fista(r5_ctx *ctx, const r5_recon_params *p, r5_linop *E, const r5_array *kspace, float scale,
			   unsigned long flags, int restart, float sigma, r5_array *x, r5_iter_progress *hook)
{
	r5_prox *g = NULL;
	r5_iter *it = NULL;
	R5_TRY(wavelet_l1_prox(ctx, p, E->idims, flags, &g));
	r5_fista_conf conf = r5_fista_defaults;
	conf.max_iters = p->sense.iters;
	conf.lambda = term_weight(p->cs.lambda_l1, R5_CS_AUTO_KAPPA_L1, scale, sigma);
	r5_debug("cs: l1 weight %g (peak %g, noise %g)", conf.lambda, scale, sigma);
	conf.lipschitz = (double)E->idims[R5_DIM_MAP];
	conf.restart = restart;
	r5_status s = r5_fista_init(ctx, &conf, E, kspace, g, x, &it);
	if (s == R5_OK)
		s = r5_iter_run(it, r5_iter_progress_hook, hook);
	r5_iter_free(it);
	r5_prox_free(g);
	return s;
}

static r5_status run_admm(r5_ctx *ctx, const r5_recon_params *p, r5_linop *E, const r5_array *kspace, float scale,
			  unsigned long flags, float sigma, r5_array *x, r5_iter_progress *hook)
{
	r5_admm_term terms[1 + MAX_BASES];
	int n = 0;
	memset(terms, 0, sizeof terms);
	r5_status s = R5_OK;
	if (strstr(p->cs.reg, "tv")) {
		/* differences stacked along the coil dim (size 1 in the image); one group per voxel */
		s = r5_linop_finite_diff(ctx, E->idims, flags, R5_DIM_COIL, &terms[n].op);
		if (s == R5_OK)
			s = r5_prox_l21(ctx, terms[n].op->odims, R5_FLAG(R5_DIM_COIL), 1.0f, &terms[n].prox);
		terms[n++].lambda = term_weight(p->cs.lambda_tv, R5_CS_AUTO_KAPPA_TV, scale, sigma);
	}
	if (s == R5_OK && strstr(p->cs.reg, "l1")) {
		/* a union of bases: one term per basis, the weight shared out */
		r5_linop *w[MAX_BASES] = {NULL};
		int n_bases = 0;
		s = wavelet_bases(ctx, p, E->idims, flags, w, &n_bases);
		float lambda = term_weight(p->cs.lambda_l1, R5_CS_AUTO_KAPPA_L1, scale, sigma) / (float)(n_bases ? n_bases : 1);
		for (int b = 0; b < n_bases; b++) {
			terms[n].op = w[b];
			terms[n].lambda = lambda;
			if (s == R5_OK)
				s = r5_prox_l1(ctx, w[b]->odims, 1.0f, &terms[n].prox);
			n++;
		}
	}
	r5_admm_conf conf = r5_admm_defaults;
	conf.max_iters = p->sense.iters;
	/* the data term's curvature is about 1 (|E^H E| <= n_maps) and D^H D reaches 4 per dim: rho 1
	 * over-smooths at 30 iterations (3D TV 0.278 vs SENSE 0.180); 0.02 measured best of 0.005..1
	 * (2D TV 0.189 -> 0.143, 3D 0.188) */
	conf.rho = 0.02f;
	/* inexact ADMM: 3 warm-started CG steps per x update, not 10. Measured (TV, defaults): full.cfl
	 * R=4 0.0446/0.898 -> 0.0430/0.927, R=8 0.0621 -> 0.0603, the 2D phantom 0.1176 -> 0.1194, and
	 * about 3x less time (3D 128^3: 163 s for 30 iterations with 10) */
	conf.cg_iters = 3;
	if (!strcmp(p->cs.reg, "tv")) {
		/* TV alone: 2 CG steps at rho 0.025, a third less work per step (CG now restarts without
		 * applying the normal: admm.h) and no worse. Measured, 30 iterations, Shepp-Logan, 8 coils,
		 * Poisson R=4 (bench_cs.sh timing): 3D 128^3 NRMSE 0.033472 -> 0.033469, SSIM 0.95417 ->
		 * 0.95432, cs stage 50.0 -> 42.9 user s for the whole run; 2D 256^2 0.046378 -> 0.046316,
		 * SSIM 0.95830 -> 0.95883 (rho 0.02 with 2 steps: 0.046419; 0.03: 0.046248 but SSIM
		 * 0.95854). l1+tv keeps 3 steps at 0.02: 2 steps there gave 0.050109 vs 0.050060. */
		conf.cg_iters = 2;
		conf.rho = 0.025f;
	}
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
		/* regularisers over fewer dims (cs_slab.c): the problems along the others are independent
		 * and must not share one restart test, or slab widths would change the images */
		return run_fista(ctx, p, E, kspace, peak, flags, o->reg_flags == 0, o->noise_sigma, x, &hook);
	return run_admm(ctx, p, E, kspace, peak, flags, o->noise_sigma, x, &hook);
}
