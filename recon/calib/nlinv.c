/* NLINV for non-Cartesian data through the Toeplitz normal (nlinv.h says what and why). */
#include "nlinv.h"

#include <math.h>
#include <stdlib.h>

#include "../core/fft.h"
#include "../solve/cg.h"

const r5_nlinv_conf r5_nlinv_defaults = {
	.newton_steps = 10,
	.alpha0 = 1.0f,
	.alpha_min = 0.0f,
	.reduction = 2.0f,
	.cg_iters = 100,
	.cg_tolerance = 0.1f,
	.sobolev_a = 220.0f,
	.sobolev_b = 32.0f,
	.data_norm = 100.0f,
	.nufft = {.oversampling = 2.0, .width = 0, .tolerance = 1e-5},
	.progress = NULL,
};

typedef struct nlinv {
	r5_ctx *ctx;
	r5_nufft_plan *plan;
	long img[R5_DIMS];   /* [N0, N1, N2] */
	long coil[R5_DIMS];  /* [N0, N1, N2, C] */
	long hat[R5_DIMS];   /* [K0, K1, K2, C]: the coils' k-space kept (where w is not negligible) */
	long wdims[R5_DIMS]; /* [K0, K1, K2] */
	long grid_m[3];      /* the coil grid M_d = 2 N_d (1 where N_d = 1) */
	int n_stages;        /* dimensions of size > 1: one 1D transform stage each */
	int stage_dim[3];
	r5_array *padded[3], *cropped[3]; /* stage d: [.., M_d, ..] and [.., N_d, ..] */
	long n_img, n_hat;   /* elements of rho and of chat */
	r5_array *weights;   /* Sobolev w on [K0, K1, K2] */
	r5_array *aty;       /* A^H y, coil images */
	r5_array *x;         /* (rho, chat) */
	r5_array *coils;     /* c at x */
	r5_array *z, *z2;    /* coil images, work */
	r5_array *hat_work;  /* [K, C] work */
	r5_array *rhs, *dx;  /* CG's b and solution */
	int cg_iters_total;
} nlinv;

static r5_array subarray(const r5_array *v, const long dims[R5_DIMS], long offset)
{
	long strides[R5_DIMS];
	r5_dims_strides(strides, dims);
	return r5_array_view_strided(v, dims, strides, offset);
}

/* c = crop_N(IFFT_M(pad_M(w . chat))), one dimension at a time: the centred IFFT is separable
 * and the crop along d commutes with the transforms along the others, so stage d pads dim d
 * from K_d to M_d, transforms it and crops it to N_d (K_d M_d-point FFTs per row instead of
 * M_d: chat holds only the K_d central frequencies, about 2 x 51 of 512 at a = 220, b = 32). */
static r5_status coils_forward(nlinv *st, r5_array *c, const r5_array *chat)
{
	r5_status s = r5_zmul(st->ctx, st->hat_work, chat, st->weights, 0);
	const r5_array *from = st->hat_work;
	for (int i = 0; i < st->n_stages && s == R5_OK; i++) {
		r5_array *to = i == st->n_stages - 1 ? c : st->cropped[i];
		s = r5_zresize_centered(st->ctx, st->padded[i], from);
		if (s == R5_OK)
			s = r5_ifft(st->ctx, 1UL << st->stage_dim[i], st->padded[i], st->padded[i]);
		if (s == R5_OK)
			s = r5_zresize_centered(st->ctx, to, st->padded[i]);
		from = to;
	}
	return s;
}

/* chat = w . crop_K(FFT_M(pad_M(g))): the adjoint of coils_forward (w real), stages reversed */
static r5_status coils_adjoint(nlinv *st, r5_array *chat, const r5_array *g)
{
	r5_status s = R5_OK;
	const r5_array *from = g;
	for (int i = st->n_stages - 1; i >= 0 && s == R5_OK; i--) {
		r5_array *to = i == 0 ? st->hat_work : st->cropped[i - 1];
		s = r5_zresize_centered(st->ctx, st->padded[i], from);
		if (s == R5_OK)
			s = r5_fft(st->ctx, 1UL << st->stage_dim[i], st->padded[i], st->padded[i]);
		if (s == R5_OK)
			s = r5_zresize_centered(st->ctx, to, st->padded[i]);
		from = to;
	}
	if (s == R5_OK)
		s = r5_zmul(st->ctx, chat, st->hat_work, st->weights, 0);
	return s;
}

/* out = DG^H g' for coil images g (in st->z, destroyed): rho part sum_c conj(c) g, chat part
 * coils_adjoint(conj(rho) g) */
static r5_status derivative_adjoint(nlinv *st, const r5_array *rho, r5_array *out, r5_array *g)
{
	r5_array out_rho = subarray(out, st->img, 0), out_hat = subarray(out, st->hat, st->n_img);
	r5_status s = r5_zmul(st->ctx, st->z2, g, st->coils, R5_ZMUL_CONJ2);
	if (s == R5_OK)
		s = r5_zsum(st->ctx, &out_rho, st->z2);
	if (s == R5_OK)
		s = r5_zmul(st->ctx, st->z2, g, rho, R5_ZMUL_CONJ2);
	if (s == R5_OK)
		s = coils_adjoint(st, &out_hat, st->z2);
	return s;
}

/* out = DG^H A^H A DG in, at the current x (rho, coils) */
static r5_status normal_apply(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in)
{
	nlinv *st = user;
	(void)ctx;
	r5_array rho = subarray(st->x, st->img, 0);
	r5_array in_rho = subarray(in, st->img, 0), in_hat = subarray(in, st->hat, st->n_img);
	r5_status s = coils_forward(st, st->z, &in_hat);
	if (s == R5_OK)
		s = r5_zmul(st->ctx, st->z, st->z, &rho, 0);
	if (s == R5_OK)
		s = r5_zfmac(st->ctx, st->z, st->coils, &in_rho, 0);
	if (s == R5_OK)
		s = r5_nufft_normal(st->ctx, st->plan, st->z, st->z);
	if (s == R5_OK)
		s = derivative_adjoint(st, &rho, out, st->z);
	return s;
}

static double sobolev(const r5_nlinv_conf *conf, const double k[3])
{
	return pow(1.0 + conf->sobolev_a * (k[0] * k[0] + k[1] * k[1] + k[2] * k[2]), -0.5 * conf->sobolev_b);
}

/* K_d: the smallest even width (at most M_d) outside which w, along the axis, is below
 * R5_NLINV_WEIGHT_FLOOR of its peak; the coils' k-space there contributes nothing in fp32 */
#define R5_NLINV_WEIGHT_FLOOR 1e-9
static long kept_width(const r5_nlinv_conf *conf, long m)
{
	if (m == 1)
		return 1;
	for (long half = 1; half < m / 2; half++) {
		double k[3] = {(double)half / (double)m, 0.0, 0.0};
		if (sobolev(conf, k) < R5_NLINV_WEIGHT_FLOOR)
			return 2 * half;
	}
	return m;
}

static r5_status sobolev_weights(nlinv *st, const r5_nlinv_conf *conf)
{
	r5_status s = r5_array_alloc(st->ctx, R5_HOST, st->wdims, &st->weights);
	if (s != R5_OK)
		return s;
	long k0n = st->wdims[0], k1n = st->wdims[1], k2n = st->wdims[2];
	for (long c = 0; c < k2n; c++)
		for (long b = 0; b < k1n; b++)
			for (long a = 0; a < k0n; a++) {
				double k[3] = {(double)(a - k0n / 2) / (double)st->grid_m[0],
					       (double)(b - k1n / 2) / (double)st->grid_m[1],
					       (double)(c - k2n / 2) / (double)st->grid_m[2]};
				st->weights->data[(c * k1n + b) * k0n + a] = (float)sobolev(conf, k);
			}
	return R5_OK;
}

/* the stages' buffers: before stage i, dims < stage_dim[i] are N, the rest K */
static r5_status stage_buffers(nlinv *st)
{
	long cur[R5_DIMS];
	r5_dims_copy(cur, st->hat);
	r5_status s = R5_OK;
	for (int i = 0; i < st->n_stages && s == R5_OK; i++) {
		int d = st->stage_dim[i];
		cur[d] = st->grid_m[d];
		s = r5_array_alloc(st->ctx, R5_HOST, cur, &st->padded[i]);
		cur[d] = st->img[d];
		if (s == R5_OK && i < st->n_stages - 1)
			s = r5_array_alloc(st->ctx, R5_HOST, cur, &st->cropped[i]);
	}
	return s;
}

static void nlinv_free(nlinv *st)
{
	r5_nufft_plan_destroy(st->plan);
	r5_array_free(st->weights);
	r5_array_free(st->aty);
	r5_array_free(st->x);
	r5_array_free(st->coils);
	r5_array_free(st->z);
	r5_array_free(st->z2);
	r5_array_free(st->hat_work);
	for (int i = 0; i < 3; i++) {
		r5_array_free(st->padded[i]);
		r5_array_free(st->cropped[i]);
	}
	r5_array_free(st->rhs);
	r5_array_free(st->dx);
}

static r5_status check(const long image_dims[R5_DIMS], long n_points, const float *coords, const r5_array *samples,
		       const r5_array *image, const r5_array *maps)
{
	const char *who = "nlinv";
	if (!image_dims || !coords || !samples || !image)
		return r5_set_error(R5_EINVAL, "%s: image dims, coordinates, samples and image are required", who);
	for (int d = 4; d < R5_DIMS; d++)
		if (image_dims[d] != 1)
			return r5_set_error(R5_EINVAL, "%s: image dims must be [Nx, Ny, Nz, coils] (dim %d is %ld)", who,
					    d, image_dims[d]);
	if (image_dims[0] < 2 || image_dims[1] < 2 || image_dims[2] < 1 || image_dims[3] < 1)
		return r5_set_error(R5_EINVAL, "%s: image %ld x %ld x %ld with %ld coils", who, image_dims[0],
				    image_dims[1], image_dims[2], image_dims[3]);
	if (n_points < 1 || samples->dims[0] != 1 || samples->dims[1] * samples->dims[2] != n_points ||
	    r5_array_size(samples) != n_points * image_dims[3] || samples->where != R5_HOST ||
	    !r5_array_is_contiguous(samples))
		return r5_set_error(R5_EINVAL,
				    "%s: samples [%ld, %ld, %ld, %ld] must be a contiguous host [1, n_read, n_lines, "
				    "coils] of %ld points and %ld coils",
				    who, samples->dims[0], samples->dims[1], samples->dims[2], samples->dims[3], n_points,
				    image_dims[3]);
	long want[R5_DIMS];
	r5_dims_ones(want);
	for (int d = 0; d < 3; d++)
		want[d] = image_dims[d];
	if (!r5_dims_equal(image->dims, want) || image->where != R5_HOST || !r5_array_is_contiguous(image))
		return r5_set_error(R5_EINVAL, "%s: image must be a contiguous host [%ld, %ld, %ld]", who, want[0],
				    want[1], want[2]);
	want[3] = image_dims[3];
	if (maps && (!r5_dims_equal(maps->dims, want) || maps->where != R5_HOST || !r5_array_is_contiguous(maps)))
		return r5_set_error(R5_EINVAL, "%s: maps must be a contiguous host [%ld, %ld, %ld, %ld]", who, want[0],
				    want[1], want[2], want[3]);
	return R5_OK;
}

static r5_status nlinv_setup(nlinv *st, const r5_nlinv_conf *conf, const long image_dims[R5_DIMS], long n_points,
			     const float *coords, const r5_array *samples, double *scale)
{
	r5_dims_ones(st->img);
	r5_dims_ones(st->wdims);
	for (int d = 0; d < 3; d++) {
		st->img[d] = image_dims[d];
		st->grid_m[d] = image_dims[d] > 1 ? 2 * image_dims[d] : 1;
		st->wdims[d] = kept_width(conf, st->grid_m[d]);
		if (image_dims[d] > 1)
			st->stage_dim[st->n_stages++] = d;
	}
	r5_dims_copy(st->coil, st->img);
	st->coil[3] = image_dims[3];
	r5_dims_copy(st->hat, st->wdims);
	st->hat[3] = image_dims[3];
	st->n_img = r5_dims_size(st->img);
	st->n_hat = r5_dims_size(st->hat);
	long xdims[R5_DIMS];
	r5_dims_ones(xdims);
	xdims[0] = st->n_img + st->n_hat;

	double norm = 0.0;
	r5_status s = r5_znorm(st->ctx, samples, &norm);
	if (s == R5_OK && !(norm > 0.0 && isfinite(norm)))
		return r5_set_error(R5_EINVAL, "the samples' norm is %g (all zero or not finite)", norm);
	*scale = conf->data_norm / norm;
	if (s == R5_OK)
		s = r5_nufft_plan_make(st->ctx, st->coil, &conf->nufft, &st->plan);
	if (s == R5_OK)
		s = r5_nufft_set_points(st->ctx, st->plan, n_points, coords);
	if (s == R5_OK)
		s = r5_nufft_toeplitz(st->ctx, st->plan, NULL);
	if (s == R5_OK)
		s = sobolev_weights(st, conf);
	r5_array **coil_arrays[] = {&st->aty, &st->coils, &st->z, &st->z2};
	for (int i = 0; i < 4 && s == R5_OK; i++)
		s = r5_array_alloc(st->ctx, R5_HOST, st->coil, coil_arrays[i]);
	if (s == R5_OK)
		s = r5_array_alloc(st->ctx, R5_HOST, st->hat, &st->hat_work);
	if (s == R5_OK)
		s = stage_buffers(st);
	if (s == R5_OK)
		s = r5_array_zeros(st->ctx, R5_HOST, xdims, &st->x);
	if (s == R5_OK)
		s = r5_array_alloc(st->ctx, R5_HOST, xdims, &st->rhs);
	if (s == R5_OK)
		s = r5_array_alloc(st->ctx, R5_HOST, xdims, &st->dx);
	if (s == R5_OK)
		s = r5_nufft_adjoint(st->ctx, st->plan, st->aty, samples);
	if (s == R5_OK)
		s = r5_zscale(st->ctx, st->aty, (float complex)*scale);
	if (s == R5_OK) { /* rho = 1, chat = 0 */
		r5_array rho = subarray(st->x, st->img, 0);
		s = r5_zfill(st->ctx, &rho, 1.0f);
	}
	return s;
}

/* rhs = DG^H (A^H y - A^H A G(x)) - alpha x, with st->coils updated to x */
static r5_status newton_rhs(nlinv *st, float alpha)
{
	r5_array rho = subarray(st->x, st->img, 0), hat = subarray(st->x, st->hat, st->n_img);
	r5_status s = coils_forward(st, st->coils, &hat);
	if (s == R5_OK)
		s = r5_zmul(st->ctx, st->z, st->coils, &rho, 0);
	if (s == R5_OK)
		s = r5_nufft_normal(st->ctx, st->plan, st->z, st->z);
	if (s == R5_OK)
		s = r5_zaxpby(st->ctx, 1.0f, st->aty, -1.0f, st->z);
	if (s == R5_OK)
		s = derivative_adjoint(st, &rho, st->rhs, st->z);
	if (s == R5_OK)
		s = r5_zaxpy(st->ctx, st->rhs, -alpha, st->x);
	return s;
}

/* image = rho . rss(c) / scale, maps = c / rss(c) */
static r5_status nlinv_output(nlinv *st, double scale, r5_array *image, r5_array *maps)
{
	r5_array rho = subarray(st->x, st->img, 0), hat = subarray(st->x, st->hat, st->n_img);
	r5_status s = coils_forward(st, st->coils, &hat);
	if (s == R5_OK)
		s = r5_zrss(st->ctx, image, st->coils, 3);
	if (s == R5_OK && maps) {
		r5_array inv = subarray(st->z2, st->img, 0);
		s = r5_zunary(st->ctx, R5_UNARY_RECIP, &inv, image);
		if (s == R5_OK)
			s = r5_zmul(st->ctx, maps, st->coils, &inv, 0);
	}
	if (s == R5_OK)
		s = r5_zmul(st->ctx, image, image, &rho, 0);
	if (s == R5_OK)
		s = r5_zscale(st->ctx, image, (float complex)(1.0 / scale));
	return s;
}

r5_status r5_nlinv_nc(r5_ctx *ctx, const r5_nlinv_conf *conf, const long image_dims[R5_DIMS], long n_points,
		      const float *coords, const r5_array *samples, r5_array *image, r5_array *maps,
		      r5_nlinv_info *info)
{
	if (!conf)
		conf = &r5_nlinv_defaults;
	r5_status s = check(image_dims, n_points, coords, samples, image, maps);
	if (s != R5_OK)
		return s;
	if (conf->newton_steps < 1 || conf->cg_iters < 1 || !(conf->alpha0 > 0.0f) || !(conf->reduction >= 1.0f) ||
	    !(conf->alpha_min >= 0.0f) || !(conf->data_norm > 0.0f) || !(conf->sobolev_a >= 0.0f) ||
	    !(conf->sobolev_b >= 0.0f) || !(conf->cg_tolerance >= 0.0f))
		return r5_set_error(R5_EINVAL,
				    "nlinv: steps %d, cg iterations %d must be >= 1; alpha0 %g > 0, reduction %g >= 1, "
				    "alpha_min, cg tolerance, sobolev a, b >= 0, data norm %g > 0",
				    conf->newton_steps, conf->cg_iters, (double)conf->alpha0, (double)conf->reduction,
				    (double)conf->data_norm);
	nlinv st = {.ctx = ctx};
	double scale = 1.0;
	s = nlinv_setup(&st, conf, image_dims, n_points, coords, samples, &scale);
	float alpha = conf->alpha0;
	for (int n = 0; n < conf->newton_steps && s == R5_OK; n++) {
		s = newton_rhs(&st, alpha);
		if (s == R5_OK)
			s = r5_zfill(ctx, st.dx, 0.0f);
		if (s == R5_OK) {
			r5_cg_conf cg = r5_cg_defaults;
			cg.max_iters = conf->cg_iters;
			cg.tolerance = conf->cg_tolerance;
			cg.lambda = alpha;
			r5_iter_progress hook = {.progress = conf->progress,
						 .stage = "nlinv",
						 .lo = (double)n / conf->newton_steps,
						 .hi = (double)(n + 1) / conf->newton_steps};
			cg.hook = r5_iter_progress_hook;
			cg.hook_user = &hook;
			r5_cg_info cg_info;
			s = r5_cg_solve(ctx, &cg, normal_apply, &st, st.rhs, st.dx, &cg_info);
			st.cg_iters_total += cg_info.iters;
		}
		if (s == R5_OK)
			s = r5_zaxpy(ctx, st.x, 1.0f, st.dx);
		alpha = fmaxf(alpha / conf->reduction, conf->alpha_min);
	}
	if (s == R5_OK)
		s = nlinv_output(&st, scale, image, maps);
	if (s == R5_OK && info) {
		info->cg_iters = st.cg_iters_total;
		for (int d = 0; d < 3; d++)
			info->coil_kspace[d] = st.wdims[d];
	}
	if (s != R5_OK && s != R5_ECANCELLED && s != R5_ETIMEDOUT)
		s = r5_error_context(s, "nlinv");
	nlinv_free(&st);
	return s;
}

double r5_nlinv_bytes(const r5_nlinv_conf *conf, const long image_dims[R5_DIMS], long n_points)
{
	if (!conf)
		conf = &r5_nlinv_defaults;
	double cplx = (double)sizeof(float complex), coils = (double)image_dims[3];
	double pixels = 1, hat = 1, grid = 1, twice = 1, stages = 0;
	for (int d = 0; d < 3; d++) {
		double n = (double)image_dims[d];
		long m = image_dims[d] > 1 ? 2 * image_dims[d] : 1;
		pixels *= n;
		hat *= (double)kept_width(conf, m);
		grid *= n > 1 ? 2.0 * n + 2.0 : 1.0; /* the NUFFT's oversampled grid at sigma 2, rounded up */
		twice *= (double)m;
	}
	stages = 2.0 * twice * coils; /* padded and cropped stage arrays: below the full M grid each */
	double nufft = cplx * coils * (grid + 2.0 * (double)n_points) + (double)n_points * 24.0;
	double toeplitz = cplx * twice * (1.0 + coils);
	double arrays = cplx * (4.0 * pixels * coils + 7.0 * (pixels + hat * coils) + stages);
	return nufft + toeplitz + arrays + cplx * twice; /* + the Sobolev weights (bound) */
}
