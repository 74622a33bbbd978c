/* GRASP (see grasp.h): the frame-binned encoding W^1/2 F_t S as an operator with a Toeplitz
 * normal per frame, the automatic weights, the ADMM solve over temporal (and optionally spatial)
 * TV, the per-frame CG for lambda 0, and the time-averaged ESPIRiT maps. */
#include "grasp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../calib/herm_eig.h"
#include "../core/fft.h"
#include "../linop/finite_diff.h"
#include "../solve/admm.h"
#include "../solve/cg.h"
#include "../solve/power.h"
#include "../solve/prox.h"
#include "grid.h"
#include "nc_sense.h"

const r5_grasp_opts r5_grasp_defaults = {
	.model = R5_GRASP_TV,
	.frame_spokes = 21,
	.iters = 20,
	.cg_iters = 3,
	.lambda = -1,
	.lambda_scale = 0.02f,
	.lambda_space = 0,
	.lambda_space_scale = 0.002f,
	.rho = 0.5f,
	.lowrank_scale = 0.01f,
	.sparse_scale = 0.005f,
	.nufft = {.oversampling = 2.0, .width = 0, .tolerance = 1e-5},
};

/* The encoding: domain [N0, N1, 1, 1, ..., T], range [1, n_read, fs, C, ..., T]. */
typedef struct grasp_op {
	long N0, N1, C, T, n_read, fs, np; /* np: points per frame */
	const float complex *maps;         /* [N0 N1, C] */
	float *coords;                     /* 3 np T, wrapped (own copy) */
	float *weights, *sqrt_w;           /* np T each */
	r5_nufft_plan **toep;              /* T plans of one coil, Toeplitz kernels set */
	r5_nufft_plan *batch;              /* C coils, points of frame batch_frame */
	long batch_frame;
	r5_array *coil_images;             /* [N0, N1, 1, C] */
	r5_array *one_coil;                /* [N0, N1, 1, 1] */
	r5_array *frame_samples;           /* [1, n_read, fs, C] */
	const r5_progress *progress;
} grasp_op;

static void grasp_op_free(void *data)
{
	grasp_op *g = data;
	if (!g)
		return;
	for (long t = 0; g->toep && t < g->T; t++)
		r5_nufft_plan_destroy(g->toep[t]);
	free(g->toep);
	r5_nufft_plan_destroy(g->batch);
	r5_array_free(g->coil_images);
	r5_array_free(g->one_coil);
	r5_array_free(g->frame_samples);
	free(g->weights);
	free(g->sqrt_w);
	free(g->coords);
	free(g);
}

/* coil images of frame t's image x_t: c_c = S_c x_t */
static void expand(const grasp_op *g, const float complex *x, float complex *coil_images)
{
	long pix = g->N0 * g->N1;
#pragma omp parallel for schedule(static)
	for (long c = 0; c < g->C; c++)
		for (long i = 0; i < pix; i++)
			coil_images[c * pix + i] = g->maps[c * pix + i] * x[i];
}

/* x_t = sum_c conj(S_c) c_c (accumulate: x_t += ... when add) */
static void combine(const grasp_op *g, const float complex *coil_images, float complex *x, int add)
{
	long pix = g->N0 * g->N1;
#pragma omp parallel for schedule(static)
	for (long i = 0; i < pix; i++) {
		float complex sum = add ? x[i] : 0;
		for (long c = 0; c < g->C; c++)
			sum += conjf(g->maps[c * pix + i]) * coil_images[c * pix + i];
		x[i] = sum;
	}
}

static r5_status batch_points(r5_ctx *ctx, grasp_op *g, long t)
{
	if (g->batch_frame == t)
		return R5_OK;
	g->batch_frame = -1;
	R5_TRY(r5_nufft_set_points(ctx, g->batch, g->np, g->coords + 3 * g->np * t));
	g->batch_frame = t;
	return R5_OK;
}

static r5_status grasp_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	grasp_op *g = data;
	long pix = g->N0 * g->N1;
	for (long t = 0; t < g->T; t++) {
		R5_TRY(r5_progress_check(g->progress, "grasp encoding", (double)t / g->T));
		expand(g, in->data + t * pix, g->coil_images->data);
		R5_TRY(batch_points(ctx, g, t));
		r5_array y = r5_linop_slice(out, R5_DIM_TIME, t);
		R5_TRY(r5_nufft_forward(ctx, g->batch, &y, g->coil_images));
		const float *sw = g->sqrt_w + g->np * t;
		for (long c = 0; c < g->C; c++)
			for (long j = 0; j < g->np; j++)
				y.data[c * g->np + j] *= sw[j];
	}
	return R5_OK;
}

static r5_status grasp_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	grasp_op *g = data;
	long pix = g->N0 * g->N1;
	for (long t = 0; t < g->T; t++) {
		R5_TRY(r5_progress_check(g->progress, "grasp encoding", (double)t / g->T));
		const float *sw = g->sqrt_w + g->np * t;
		const float complex *y = in->data + t * g->np * g->C;
		for (long c = 0; c < g->C; c++)
			for (long j = 0; j < g->np; j++)
				g->frame_samples->data[c * g->np + j] = y[c * g->np + j] * sw[j];
		R5_TRY(batch_points(ctx, g, t));
		R5_TRY(r5_nufft_adjoint(ctx, g->batch, g->coil_images, g->frame_samples));
		combine(g, g->coil_images->data, out->data + t * pix, 0);
	}
	return R5_OK;
}

/* out_t = sum_c conj(S_c) T_t (S_c x_t) for one frame */
static r5_status frame_normal(r5_ctx *ctx, grasp_op *g, long t, float complex *out, const float complex *x)
{
	long pix = g->N0 * g->N1;
	memset(out, 0, sizeof *out * (size_t)pix);
	for (long c = 0; c < g->C; c++) {
		const float complex *s = g->maps + c * pix;
		float complex *v = g->one_coil->data;
		for (long i = 0; i < pix; i++)
			v[i] = s[i] * x[i];
		R5_TRY(r5_nufft_normal(ctx, g->toep[t], g->one_coil, g->one_coil));
		for (long i = 0; i < pix; i++)
			out[i] += conjf(s[i]) * v[i];
	}
	return R5_OK;
}

static r5_status grasp_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	grasp_op *g = data;
	long pix = g->N0 * g->N1;
	for (long t = 0; t < g->T; t++) {
		R5_TRY(r5_progress_check(g->progress, "grasp normal", (double)t / g->T));
		R5_TRY(frame_normal(ctx, g, t, out->data + t * pix, in->data + t * pix));
	}
	return R5_OK;
}

static long grasp_held(const void *data)
{
	const grasp_op *g = data;
	long bytes = r5_linop_array_bytes(g->coil_images) + r5_linop_array_bytes(g->one_coil) +
		     r5_linop_array_bytes(g->frame_samples) + 2 * g->np * g->T * (long)sizeof(float);
	r5_nufft_info info;
	for (long t = 0; t < g->T; t++) {
		r5_nufft_get_info(g->toep[t], &info);
		bytes += info.bytes;
	}
	r5_nufft_get_info(g->batch, &info);
	return bytes + info.bytes;
}

/* Plans, weights and work arrays of the encoding (g->coords, maps and sizes set by the caller). */
static r5_status grasp_op_setup(r5_ctx *ctx, grasp_op *g, const r5_nufft_opts *nufft)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = g->N0, dims[1] = g->N1, dims[3] = g->C;
	R5_TRY(r5_nufft_plan_make(ctx, dims, nufft, &g->batch));
	R5_TRY(r5_array_alloc_host(dims, &g->coil_images));
	dims[3] = 1;
	R5_TRY(r5_array_alloc_host(dims, &g->one_coil));
	r5_dims_ones(dims);
	dims[1] = g->n_read, dims[2] = g->fs, dims[3] = g->C;
	R5_TRY(r5_array_alloc_host(dims, &g->frame_samples));
	g->weights = malloc(sizeof *g->weights * (size_t)(g->np * g->T));
	g->sqrt_w = malloc(sizeof *g->sqrt_w * (size_t)(g->np * g->T));
	g->toep = calloc((size_t)g->T, sizeof *g->toep);
	if (!g->weights || !g->sqrt_w || !g->toep)
		return r5_set_error(R5_ENOMEM, "grasp: weights of %ld frames", g->T);
	r5_dims_ones(dims);
	dims[0] = g->N0, dims[1] = g->N1;
	for (long t = 0; t < g->T; t++) {
		R5_TRY(r5_progress_check(g->progress, "grasp Toeplitz kernels", (double)t / g->T));
		const float *k = g->coords + 3 * g->np * t;
		float *w = g->weights + g->np * t;
		R5_TRY(r5_grid_ramp(g->n_read, g->fs, k, w));
		for (long j = 0; j < g->np; j++)
			g->sqrt_w[g->np * t + j] = sqrtf(w[j]);
		R5_TRY(r5_nufft_plan_make(ctx, dims, nufft, &g->toep[t]));
		R5_TRY(r5_nufft_set_points(ctx, g->toep[t], g->np, k));
		R5_TRY(r5_nufft_toeplitz(ctx, g->toep[t], w));
	}
	g->batch_frame = -1;
	return R5_OK;
}

static r5_status check_inputs(const long image_dims[R5_DIMS], const float *coords, const r5_array *samples,
			      const r5_array *maps, const r5_grasp_opts *o)
{
	char sd[128];
	if (!image_dims || !coords || !samples || !maps)
		return r5_set_error(R5_EINVAL, "grasp: NULL argument");
	r5_dims_format(sd, sizeof sd, samples->dims);
	if (image_dims[2] != 1 || image_dims[0] < 2 || image_dims[1] < 2)
		return r5_set_error(R5_EINVAL, "grasp: 2D images only (image dims %ld x %ld x %ld)", image_dims[0],
				    image_dims[1], image_dims[2]);
	if (samples->where != R5_HOST || !r5_array_is_contiguous(samples) || samples->dims[0] != 1 ||
	    samples->dims[3] != image_dims[3] || r5_array_size(samples) != samples->dims[1] * samples->dims[2] * image_dims[3])
		return r5_set_error(R5_EINVAL, "grasp: samples %s, want a host array [1, n_read, n_spokes, %ld coils]", sd,
				    image_dims[3]);
	if (o->frame_spokes < 1 || o->frame_spokes > samples->dims[2])
		return r5_set_error(R5_EINVAL, "grasp: frame_spokes %ld, want 1..%ld (the scan's spokes)", o->frame_spokes,
				    samples->dims[2]);
	long pix = image_dims[0] * image_dims[1];
	if (maps->where != R5_HOST || !r5_array_is_contiguous(maps) || maps->dims[0] != image_dims[0] ||
	    maps->dims[1] != image_dims[1] || r5_array_size(maps) != pix * image_dims[3])
		return r5_set_error(R5_EINVAL, "grasp: maps must be a host array [%ld, %ld, 1, %ld]", image_dims[0],
				    image_dims[1], image_dims[3]);
	if (o->model != R5_GRASP_TV && o->model != R5_GRASP_LPLUSS)
		return r5_set_error(R5_EINVAL, "grasp: unknown model %d", (int)o->model);
	if (!(o->lowrank_scale >= 0) || !(o->sparse_scale >= 0) || !isfinite(o->lowrank_scale) ||
	    !isfinite(o->sparse_scale))
		return r5_set_error(R5_EINVAL, "grasp: l+s thresholds %g and %g, want finite and >= 0",
				    (double)o->lowrank_scale, (double)o->sparse_scale);
	if (!(o->rho > 0) || !isfinite(o->rho) || o->iters < 1 || o->cg_iters < 1 || !isfinite(o->lambda) ||
	    !isfinite(o->lambda_space))
		return r5_set_error(R5_EINVAL, "grasp: rho %g (> 0), iters %d and cg_iters %d (>= 1), finite lambdas",
				    (double)o->rho, o->iters, o->cg_iters);
	return R5_OK;
}

static r5_status check_images(const long image_dims[R5_DIMS], long frames, const r5_array *images)
{
	long pix = image_dims[0] * image_dims[1];
	if (!images || images->where != R5_HOST || !r5_array_is_contiguous(images) || images->dims[0] != image_dims[0] ||
	    images->dims[1] != image_dims[1] || images->dims[R5_DIM_TIME] != frames || r5_array_size(images) != pix * frames)
		return r5_set_error(R5_EINVAL, "grasp: images must be a host array [%ld, %ld, 1, ..., %ld frames in dim 10]",
				    image_dims[0], image_dims[1], frames);
	return R5_OK;
}

r5_status r5_grasp_operator(r5_ctx *ctx, const long image_dims[R5_DIMS], const float *coords, const r5_array *samples,
			    const r5_array *maps, const r5_grasp_opts *opts, const r5_progress *progress, r5_linop **op,
			    r5_array **y)
{
	const r5_grasp_opts *o = opts ? opts : &r5_grasp_defaults;
	*op = NULL, *y = NULL;
	R5_TRY(check_inputs(image_dims, coords, samples, maps, o));
	long frames = samples->dims[2] / o->frame_spokes;
	grasp_op *g = calloc(1, sizeof *g);
	if (!g)
		return r5_set_error(R5_ENOMEM, "grasp: operator");
	g->N0 = image_dims[0], g->N1 = image_dims[1], g->C = image_dims[3];
	g->n_read = samples->dims[1], g->fs = o->frame_spokes, g->T = frames;
	g->np = g->n_read * g->fs;
	g->maps = maps->data, g->progress = progress;
	long n_all = g->n_read * samples->dims[2];
	g->coords = malloc(sizeof *g->coords * 3 * (size_t)n_all);
	if (!g->coords) {
		grasp_op_free(g);
		return r5_set_error(R5_ENOMEM, "grasp: %ld coordinates", 3 * n_all);
	}
	memcpy(g->coords, coords, sizeof *g->coords * 3 * (size_t)n_all);
	r5_grid_wrap_coords(image_dims, n_all, g->coords);
	r5_status s = grasp_op_setup(ctx, g, &o->nufft);
	if (s != R5_OK) {
		grasp_op_free(g);
		return s;
	}
	long idims[R5_DIMS], odims[R5_DIMS];
	r5_dims_ones(idims);
	r5_dims_ones(odims);
	idims[0] = g->N0, idims[1] = g->N1, idims[R5_DIM_TIME] = g->T;
	odims[1] = g->n_read, odims[2] = g->fs, odims[3] = g->C, odims[R5_DIM_TIME] = g->T;
	s = r5_array_alloc_host(odims, y);
	if (s != R5_OK) {
		grasp_op_free(g);
		return s;
	}
	long n_spokes = samples->dims[2];
	for (long t = 0; t < g->T; t++)
		for (long c = 0; c < g->C; c++)
			for (long j = 0; j < g->np; j++)
				(*y)->data[j + g->np * (c + g->C * t)] =
					samples->data[j + g->np * t + g->n_read * n_spokes * c] * g->sqrt_w[g->np * t + j];
	s = r5_linop_create(ctx, "grasp encoding", idims, odims, grasp_forward, grasp_adjoint, grasp_normal, g,
			    grasp_op_free, op);
	if (s != R5_OK) {
		r5_array_free(*y);
		*y = NULL;
		return s;
	}
	(*op)->held = grasp_held;
	return R5_OK;
}

typedef struct frame_cg {
	grasp_op *g;
	long t;
} frame_cg;

static r5_status frame_cg_apply(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in)
{
	frame_cg *f = user;
	return frame_normal(ctx, f->g, f->t, out->data, in->data);
}

/* lambda 0: each frame's weighted least squares by CG from x0 (o->iters iterations). */
static r5_status solve_frames(r5_ctx *ctx, r5_linop *A, const r5_array *x0, const r5_grasp_opts *o,
			      const r5_progress *progress, r5_array *x, r5_grasp_info *info)
{
	grasp_op *g = A->data;
	R5_TRY(r5_array_copy(ctx, x, x0));
	for (long t = 0; t < g->T; t++) {
		r5_array b = r5_linop_slice(x0, R5_DIM_TIME, t), xt = r5_linop_slice(x, R5_DIM_TIME, t);
		r5_iter_progress hook = {progress, "grasp frame cg", (double)t / g->T, (double)(t + 1) / g->T};
		r5_cg_conf conf = r5_cg_defaults;
		conf.max_iters = o->iters;
		conf.hook = r5_iter_progress_hook;
		conf.hook_user = &hook;
		frame_cg user = {g, t};
		r5_cg_info cg;
		R5_TRY(r5_cg_solve(ctx, &conf, frame_cg_apply, &user, &b, &xt, &cg));
		info->cg_iters += cg.iters;
		info->iters = cg.iters;
	}
	return R5_OK;
}

static r5_status solve_admm(r5_ctx *ctx, r5_linop *A, const r5_array *y, const r5_grasp_opts *o,
			    const r5_progress *progress, r5_array *x, r5_grasp_info *info)
{
	r5_admm_term terms[2];
	int n = 0;
	r5_status s = R5_OK;
	memset(terms, 0, sizeof terms);
	if (info->lambda > 0) {
		s = r5_linop_finite_diff(ctx, A->idims, R5_FLAG(R5_DIM_TIME), R5_DIM_MAP, &terms[n].op);
		if (s == R5_OK)
			s = r5_prox_l1(ctx, terms[n].op->odims, 1.0f, &terms[n].prox);
		terms[n++].lambda = info->lambda;
	}
	if (s == R5_OK && info->lambda_space > 0) {
		s = r5_linop_finite_diff(ctx, A->idims, R5_FLAG(0) | R5_FLAG(1), R5_DIM_MAP, &terms[n].op);
		if (s == R5_OK)
			s = r5_prox_l21(ctx, terms[n].op->odims, R5_FLAG(R5_DIM_MAP), 1.0f, &terms[n].prox);
		terms[n++].lambda = info->lambda_space;
	}
	r5_admm_conf conf = r5_admm_defaults;
	conf.max_iters = o->iters;
	conf.rho = o->rho;
	conf.cg_iters = o->cg_iters;
	r5_iter *it = NULL;
	if (s == R5_OK)
		s = r5_admm_init(ctx, &conf, A, y, terms, n, x, &it);
	r5_iter_progress hook = {progress, "grasp admm", 0.1, 1.0};
	if (s == R5_OK)
		s = r5_iter_run(it, r5_iter_progress_hook, &hook);
	r5_admm_info ai;
	if (s == R5_OK && r5_admm_result(it, &ai) == R5_OK)
		info->iters = ai.iters, info->cg_iters = ai.cg_iters;
	r5_iter_free(it);
	for (int i = 0; i < 2; i++) {
		r5_linop_free(terms[i].op);
		r5_prox_free(terms[i].prox);
	}
	return s;
}

/* ---------------------------------------------------------------- low rank + sparse */

/* Otazo's L+S iteration as a step machine (iter.h) on host arrays [pix, T] (the series' layout:
 * frame t's pixels contiguous): M the data-consistent iterate, L, S the parts, L_prev. */
typedef struct lps_iter {
	r5_iter head;
	r5_linop *A;
	const r5_array *x0; /* A^H y */
	float step;         /* 1 / |A^H A| */
	float tau_L, tau_S;
	long pix, T, rank;
	r5_array *M, *L, *S, *L_prev, *work, *normal; /* [N0, N1, 1, ..., T] each */
} lps_iter;

r5_status r5_casorati_svt(long pix, long T, const float complex *x, float tau, float complex *out, double *sigma1,
			  long *rank)
{
	if (pix < 1 || T < 1 || T > 1 << 15 || !x || !(tau >= 0))
		return r5_set_error(R5_EINVAL, "casorati svt: %ld x %ld, threshold %g", pix, T, (double)tau);
	double complex *G = malloc(sizeof *G * (size_t)(T * T)), *K = malloc(sizeof *K * (size_t)(T * T));
	double *f = malloc(sizeof *f * (size_t)T);
	r5_status s = G && K && f ? R5_OK : r5_set_error(R5_ENOMEM, "casorati svt: %ld x %ld matrices", T, T);
	if (s == R5_OK) {
#pragma omp parallel for schedule(dynamic)
		for (long b = 0; b < T; b++)
			for (long a = 0; a <= b; a++) {
				double complex sum = 0;
				const float complex *xa = x + pix * a, *xb = x + pix * b;
				for (long i = 0; i < pix; i++)
					sum += (double complex)conjf(xa[i]) * xb[i];
				G[a + T * b] = sum, G[b + T * a] = conj(sum);
			}
		s = r5_herm_eig((int)T, G, f); /* columns of G: eigenvectors, s^2 descending */
	}
	if (s == R5_OK) {
		if (sigma1)
			*sigma1 = sqrt(fmax(f[0], 0.0));
		long kept = 0;
		for (long k = 0; k < T; k++) {
			double sk = sqrt(fmax(f[k], 0.0));
			f[k] = sk > tau ? (sk - tau) / sk : 0.0; /* the factor of column k */
			kept += sk > tau;
		}
		if (rank)
			*rank = kept;
	}
	if (s == R5_OK && out) {
		/* K = V diag(f) V^H, then out = X K */
		for (long b = 0; b < T; b++)
			for (long a = 0; a < T; a++) {
				double complex sum = 0;
				for (long k = 0; k < T; k++)
					sum += G[a + T * k] * f[k] * conj(G[b + T * k]);
				K[a + T * b] = sum;
			}
#pragma omp parallel for schedule(static)
		for (long i = 0; i < pix; i++)
			for (long b = 0; b < T; b++) {
				double complex sum = 0;
				for (long a = 0; a < T; a++)
					sum += (double complex)x[i + pix * a] * K[a + T * b];
				out[i + pix * b] = (float complex)sum;
			}
	}
	free(G);
	free(K);
	free(f);
	return s;
}

/* out = F_time^H soft(F_time in, tau) (unitary temporal FFT) */
static r5_status lps_sparse(r5_ctx *ctx, r5_array *out, const r5_array *in, float tau)
{
	R5_TRY(r5_fft(ctx, R5_FLAG(R5_DIM_TIME), out, in));
	R5_TRY(r5_zsoftthresh(ctx, tau, out, out));
	return r5_ifft(ctx, R5_FLAG(R5_DIM_TIME), out, out);
}

static r5_status lps_step(r5_iter *it)
{
	lps_iter *l = (lps_iter *)it;
	r5_ctx *ctx = it->ctx;
	long n = l->pix * l->T;
	float complex *M = l->M->data, *L = l->L->data, *S = l->S->data, *Lp = l->L_prev->data, *w = l->work->data;
	/* L = SVT(M - S); S = sparse(M - L_prev) */
	for (long i = 0; i < n; i++)
		w[i] = M[i] - S[i];
	R5_TRY(r5_casorati_svt(l->pix, l->T, w, l->tau_L, L, NULL, &l->rank));
	for (long i = 0; i < n; i++)
		w[i] = M[i] - Lp[i];
	R5_TRY(lps_sparse(ctx, l->S, l->work, l->tau_S));
	/* M = L + S - step (A^H A (L + S) - A^H y) */
	double change = 0, norm = 0;
	for (long i = 0; i < n; i++) {
		w[i] = L[i] + S[i];
		float complex d = L[i] - Lp[i];
		change += crealf(d * conjf(d)), norm += crealf(L[i] * conjf(L[i]));
		Lp[i] = L[i];
	}
	R5_TRY(r5_linop_normal(ctx, l->A, l->normal, l->work));
	const float complex *N = l->normal->data, *b = l->x0->data;
	for (long i = 0; i < n; i++)
		M[i] = w[i] - l->step * (N[i] - b[i]);
	it->iter++;
	it->progress = norm > 0 ? sqrt(change / norm) : 0;
	return R5_OK;
}

static int lps_done(const r5_iter *it) { return it->failed || it->iter >= it->max_iters; }

static void lps_destroy(r5_iter *it)
{
	lps_iter *l = (lps_iter *)it;
	r5_array_free(l->M);
	r5_array_free(l->L);
	r5_array_free(l->S);
	r5_array_free(l->L_prev);
	r5_array_free(l->work);
	r5_array_free(l->normal);
	free(l);
}

static const r5_iter_ops lps_ops = {"low rank + sparse", lps_step, lps_done, lps_destroy};

/* The thresholds from the first iterate M = x0 / |A^H A|, L = L_prev = M, S = 0 (Otazo's
 * start). */
static r5_status lps_init(r5_ctx *ctx, r5_linop *A, const r5_array *x0, const r5_grasp_opts *o,
			  const r5_progress *progress, lps_iter **out)
{
	grasp_op *g = A->data;
	*out = NULL;
	lps_iter *l = calloc(1, sizeof *l);
	if (!l)
		return r5_set_error(R5_ENOMEM, "grasp l+s: solver");
	r5_iter_head_init(&l->head, &lps_ops, ctx, o->iters);
	l->A = A, l->x0 = x0;
	l->pix = g->N0 * g->N1, l->T = g->T;
	r5_status s = R5_OK;
	r5_array **arrays[] = {&l->M, &l->L, &l->S, &l->L_prev, &l->work, &l->normal};
	for (size_t i = 0; i < sizeof arrays / sizeof arrays[0] && s == R5_OK; i++)
		s = r5_array_zeros(ctx, R5_HOST, x0->dims, arrays[i]);
	r5_power_info pi = {0};
	if (s == R5_OK) {
		r5_power_conf pc = r5_power_defaults;
		pc.max_iters = 20;
		pc.tolerance = 1e-2;
		r5_iter_progress hook = {progress, "grasp l+s norm", 0.1, 0.15};
		s = r5_power_max_eig(ctx, r5_linop_normal_op, A, x0->dims, 7u, &pc, r5_iter_progress_hook, &hook, &pi);
	}
	if (s == R5_OK && !(pi.max_eig > 0))
		s = r5_set_error(R5_EINVAL, "grasp l+s: the encoding is zero (maps or data all zero?)");
	double sigma1 = 0;
	float peak = 0;
	if (s == R5_OK) {
		l->step = (float)(1.0 / (1.05 * pi.max_eig)); /* the estimate approaches from below */
		long n = l->pix * l->T;
		for (long i = 0; i < n; i++)
			l->M->data[i] = l->step * x0->data[i];
		s = r5_casorati_svt(l->pix, l->T, l->M->data, 0, NULL, &sigma1, NULL);
	}
	if (s == R5_OK) /* the temporal spectrum's peak */
		s = r5_fft(ctx, R5_FLAG(R5_DIM_TIME), l->work, l->M);
	if (s == R5_OK)
		s = r5_zmaxabs(ctx, l->work, &peak);
	if (s == R5_OK) {
		l->tau_L = o->lowrank_scale * (float)sigma1;
		l->tau_S = o->sparse_scale * peak;
		memcpy(l->L->data, l->M->data, sizeof(float complex) * (size_t)(l->pix * l->T));
		memcpy(l->L_prev->data, l->M->data, sizeof(float complex) * (size_t)(l->pix * l->T));
		*out = l;
		return R5_OK;
	}
	lps_destroy(&l->head);
	return s;
}

static r5_status solve_lps(r5_ctx *ctx, r5_linop *A, const r5_array *x0, const r5_grasp_opts *o,
			   const r5_progress *progress, r5_array *x, r5_grasp_info *info)
{
	lps_iter *l = NULL;
	R5_TRY(lps_init(ctx, A, x0, o, progress, &l));
	info->lambda = l->tau_S, info->lambda_lowrank = l->tau_L, info->lambda_space = 0;
	r5_iter_progress hook = {progress, "grasp l+s", 0.15, 1.0};
	r5_status s = r5_iter_run(&l->head, r5_iter_progress_hook, &hook);
	if (s == R5_OK) { /* the image is L + S of the last step */
		long n = l->pix * l->T;
		for (long i = 0; i < n; i++)
			x->data[i] = l->L->data[i] + l->S->data[i];
		info->iters = l->head.iter, info->rank = l->rank;
	}
	r5_iter_free(&l->head);
	return s;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

r5_status r5_grasp_solve(r5_ctx *ctx, const long image_dims[R5_DIMS], const float *coords, const r5_array *samples,
			 const r5_array *maps, const r5_grasp_opts *opts, const r5_progress *progress, r5_array *images,
			 r5_array *x0_out, r5_grasp_info *info)
{
	const r5_grasp_opts *o = opts ? opts : &r5_grasp_defaults;
	r5_grasp_info local = {0};
	info = info ? info : &local;
	memset(info, 0, sizeof *info);
	double t0 = now_s();
	R5_TRY(check_inputs(image_dims, coords, samples, maps, o));
	R5_TRY(check_images(image_dims, samples->dims[2] / o->frame_spokes, images));
	r5_linop *A = NULL;
	r5_array *y = NULL, *x0 = NULL;
	r5_status s = r5_grasp_operator(ctx, image_dims, coords, samples, maps, o, progress, &A, &y);
	if (s == R5_OK)
		s = r5_array_alloc_host(images->dims, &x0);
	if (s == R5_OK)
		s = r5_linop_adjoint(ctx, A, x0, y);
	float peak = 0;
	if (s == R5_OK)
		s = r5_zmaxabs(ctx, x0, &peak);
	if (s == R5_OK && x0_out)
		s = r5_array_copy(ctx, x0_out, x0);
	info->n_frames = images->dims[R5_DIM_TIME];
	info->lambda = o->lambda < 0 ? o->lambda_scale * peak : o->lambda;
	info->lambda_space = o->lambda_space < 0 ? o->lambda_space_scale * peak : o->lambda_space;
	if (s == R5_OK && o->model == R5_GRASP_LPLUSS)
		s = solve_lps(ctx, A, x0, o, progress, images, info);
	else if (s == R5_OK && info->lambda == 0 && info->lambda_space == 0)
		s = solve_frames(ctx, A, x0, o, progress, images, info);
	else if (s == R5_OK) {
		s = r5_array_copy(ctx, images, x0);
		if (s == R5_OK)
			s = solve_admm(ctx, A, y, o, progress, images, info);
	}
	r5_array_free(x0);
	r5_array_free(y);
	r5_linop_free(A);
	info->seconds = now_s() - t0;
	return s == R5_OK ? R5_OK : r5_error_context(s, "grasp (%ld frames of %ld spokes)", samples->dims[2] / o->frame_spokes, o->frame_spokes);
}

r5_status r5_grasp_maps(r5_ctx *ctx, const long image_dims[R5_DIMS], const float *coords, const r5_array *samples,
			int calib, r5_array **maps)
{
	*maps = NULL;
	if (!samples || !coords)
		return r5_set_error(R5_EINVAL, "grasp maps: NULL argument");
	long np = samples->dims[1] * samples->dims[2];
	float *wrapped = malloc(sizeof *wrapped * 3 * (size_t)np);
	if (!wrapped)
		return r5_set_error(R5_ENOMEM, "grasp maps: %ld coordinates", 3 * np);
	memcpy(wrapped, coords, sizeof *wrapped * 3 * (size_t)np);
	r5_grid_wrap_coords(image_dims, np, wrapped);
	r5_status s = r5_nc_maps_espirit(ctx, image_dims, np, wrapped, samples, calib, maps);
	free(wrapped);
	return s == R5_OK ? R5_OK : r5_error_context(s, "grasp maps (time-averaged ESPIRiT)");
}
