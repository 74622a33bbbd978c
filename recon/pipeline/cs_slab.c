/* Pipeline cs with the readout decoupled: a 3D frame's x positions as independent 2D ky-kz
 * problems, solved by slabs of x positions (cs_slab.h). Two passes over the slabs: the first
 * finds the volume's max |E^H y| (the weights' scale, so that every slab has the whole volume's
 * absolute weights and the image does not depend on the slab width), the second solves. A slab's
 * operator is r5_linop_sense_grouped on the slab's own maps, as solve_frame (sense.c) builds the
 * whole frame's, with the stop hook between its coil groups. */
#include "cs_slab.h"

#include <math.h>
#include <string.h>

#include "../core/log.h"
#include "../linop/linop.h"
#include "pipelines.h"

int r5_cs_decoupled(const r5_recon_params *p, const long kdims[R5_DIMS])
{
	return p->cs.decouple && kdims[R5_DIM_Z] > 1;
}

long r5_cs_slab_width(const r5_recon_params *p, r5_residency where, const long kdims[R5_DIMS])
{
	long nx = kdims[R5_DIM_X], per_x = kdims[R5_DIM_Y] * kdims[R5_DIM_Z] * kdims[R5_DIM_COIL];
	long width = p->cs.slab;
	if (width <= 0)
		width = (where == R5_HOST ? R5_CS_SLAB_HOST_VALUES : R5_CS_SLAB_DEVICE_VALUES) / (per_x > 0 ? per_x : 1);
	return width < 1 ? 1 : width > nx ? nx : width;
}

/* One slab of x positions x0 .. x0 + width - 1: its k-space and maps (gathered) and operator. */
struct slab {
	long x0, width;
	r5_array *kspace, *maps;
	r5_linop *op;
	r5_progress_part part; /* the operator's stop checks, at the slab's starting fraction */
	r5_cs_slab_stats *stats; /* never NULL */
	int timed;               /* stats asked for: lap syncs and reads the clock */
	double t;                /* lap's clock */
};

/* With timing on, *bucket += the time since the last lap (after a sync). */
static void lap(r5_ctx *ctx, struct slab *s, double *bucket)
{
	if (!s->timed)
		return;
	double t_now = r5_pipeline_clock(ctx);
	*bucket += t_now - s->t;
	s->t = t_now;
}

static void slab_close(struct slab *s)
{
	r5_linop_free(s->op);
	r5_array_free(s->kspace);
	r5_array_free(s->maps);
	s->op = NULL;
	s->kspace = s->maps = NULL;
}

int r5_cs_streamed(r5_ctx *ctx, const r5_recon_params *p, const long kdims[R5_DIMS], int n_maps)
{
	if (!r5_cs_decoupled(p, kdims) || r5_ctx_residency(ctx) != R5_DEVICE || p->cs.stream == 0)
		return 0;
	if (p->cs.stream == 1)
		return 1;
	double frame = (double)kdims[R5_DIM_X] * (double)kdims[R5_DIM_Y] * (double)kdims[R5_DIM_Z] *
		       (double)kdims[R5_DIM_COIL] * sizeof(float complex);
	return r5_ctx_fit(ctx, frame * (1.0 + n_maps), 0.5, 0) < 1; /* free memory unknown: streamed */
}

/* The auto slab width of a streamed frame: as many x positions as fit in half of what ctx can
 * still allocate, one x position's working set taken as its gathered k-space and maps (C (1 + M)
 * planes), the operator's coil images and the residual's prediction (2 C) and the solver's image
 * vectors (at most 14 M: cs.c's FISTA 7, ADMM with TV and wavelets 11, and E^H y, x); at most the
 * unstreamed auto width. */
static long streamed_width(r5_ctx *ctx, const long kdims[R5_DIMS], long maps, long width)
{
	double plane = (double)kdims[R5_DIM_Y] * (double)kdims[R5_DIM_Z] * sizeof(float complex);
	long fit = r5_ctx_fit(ctx, plane * ((double)kdims[R5_DIM_COIL] * (double)(3 + maps) + 14.0 * (double)maps), 0.5,
			      width);
	return fit < 1 ? 1 : fit < width ? fit : width;
}

/* *out = whole[x0 .. x0 + width - 1, ...] (contiguous, where the context computes); a slab of the
 * whole readout is a view of whole (read only), not a copy. A host-resident whole on a device
 * context (the streamed frame) is copied out on the host, then uploaded. */
static r5_status gather(r5_ctx *ctx, const r5_array *whole, long x0, long width, r5_array **out)
{
	if (width == whole->dims[R5_DIM_X] && r5_array_is_contiguous(whole) && whole->where == r5_ctx_residency(ctx))
		return r5_array_view(whole->where, whole->ctx, whole->dims, whole->data, out);
	long dims[R5_DIMS];
	r5_dims_copy(dims, whole->dims);
	dims[R5_DIM_X] = width;
	r5_array view = r5_array_view_strided(whole, dims, NULL, x0 * whole->strides[R5_DIM_X]);
	if (whole->where != r5_ctx_residency(ctx))
		return r5_array_gather_to_work(ctx, &view, out);
	R5_TRY(r5_array_alloc_work(ctx, dims, out));
	return r5_zresize_centered(ctx, *out, &view); /* equal shapes: a strided copy */
}

/* whole[x0 .. x0 + width - 1, ...] = part (contiguous, part's dims). */
static r5_status scatter(r5_ctx *ctx, r5_array *whole, long x0, const r5_array *part)
{
	r5_array view = r5_array_view_strided(whole, part->dims, NULL, x0 * whole->strides[R5_DIM_X]);
	return r5_zresize_centered(ctx, &view, part);
}

static r5_status slab_open(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, const r5_array *kspace,
			   const r5_progress *progress, double fraction, struct slab *s)
{
	unsigned long flags = R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z);
	long voxels = s->width * kspace->dims[R5_DIM_Y] * kspace->dims[R5_DIM_Z];
	long group = R5_PROGRESS_CHUNK_VALUES / voxels; /* coils between two stop checks, as sense.c */
	const r5_progress *hook = r5_progress_part_init(&s->part, progress, fraction, fraction, "cs");
	s->t = s->timed ? r5_pipeline_clock(ctx) : 0;
	r5_status st = gather(ctx, kspace, s->x0, s->width, &s->kspace);
	if (st == R5_OK)
		st = gather(ctx, maps, s->x0, s->width, &s->maps);
	lap(ctx, s, &s->stats->gather_s);
	if (st == R5_OK)
		st = r5_linop_sense_grouped(ctx, s->maps, mask, flags, group < 1 ? 1 : group, hook, "cs operator", &s->op);
	lap(ctx, s, &s->stats->operator_s);
	if (st != R5_OK)
		slab_close(s);
	return st;
}

static r5_status slab_context(r5_status st, const struct slab *s)
{
	if (st == R5_OK || st == R5_ECANCELLED || st == R5_ETIMEDOUT)
		return st;
	return r5_error_context(st, "cs: slab of readout positions %ld..%ld", s->x0, s->x0 + s->width - 1);
}

/* *rhs = E_s^H y_s of an open slab. */
static r5_status slab_rhs(r5_ctx *ctx, struct slab *s, r5_array **rhs)
{
	R5_TRY(r5_array_alloc_work(ctx, s->op->idims, rhs));
	r5_status st = r5_linop_adjoint(ctx, s->op, *rhs, s->kspace);
	lap(ctx, s, &s->stats->rhs_s);
	if (st != R5_OK) {
		r5_array_free(*rhs);
		*rhs = NULL;
	}
	return st;
}

/* Pass 1: *peak = max |E^H y| over the volume, slab by slab (fractions lo, a check per slab). */
static r5_status volume_peak(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, const r5_array *kspace,
			     long width, const r5_progress *progress, double lo, double hi, float *peak,
			     r5_cs_slab_stats *stats, int timed)
{
	long nx = kspace->dims[R5_DIM_X], n_slabs = (nx + width - 1) / width;
	*peak = 0.0f;
	for (long i = 0; i < n_slabs; i++) {
		double fraction = lo + (hi - lo) * (double)i / (double)n_slabs;
		struct slab s = {.x0 = i * width, .width = i + 1 < n_slabs ? width : nx - i * width, .stats = stats,
				 .timed = timed};
		r5_array *rhs = NULL;
		float slab_peak = 0.0f;
		r5_status st = r5_progress_check(progress, "cs", fraction);
		if (st == R5_OK)
			st = slab_open(ctx, maps, mask, kspace, progress, fraction, &s);
		if (st == R5_OK)
			st = slab_rhs(ctx, &s, &rhs);
		if (st == R5_OK)
			st = r5_zmaxabs(ctx, rhs, &slab_peak);
		r5_array_free(rhs);
		st = slab_context(st, &s);
		slab_close(&s);
		R5_TRY(st);
		*peak = slab_peak > *peak ? slab_peak : *peak;
	}
	return R5_OK;
}

/* |y_s - E_s x|^2 and |y_s|^2 added to sums[0], sums[1]. */
static r5_status slab_residual(r5_ctx *ctx, const struct slab *s, const r5_array *x, double sums[2])
{
	r5_array *predicted = NULL;
	double norm_r = 0, norm_y = 0;
	R5_TRY(r5_array_alloc_work(ctx, s->op->odims, &predicted));
	r5_status st = r5_linop_forward(ctx, s->op, predicted, x);
	if (st == R5_OK)
		st = r5_zaxpby(ctx, -1.0f, s->kspace, 1.0f, predicted);
	if (st == R5_OK)
		st = r5_znorm(ctx, predicted, &norm_r);
	if (st == R5_OK)
		st = r5_znorm(ctx, s->kspace, &norm_y);
	r5_array_free(predicted);
	sums[0] += norm_r * norm_r;
	sums[1] += norm_y * norm_y;
	return st;
}

/* Pass 2, one open slab: rhs, the solve from zero, the residual, the image scattered. */
static r5_status slab_solve(r5_ctx *ctx, const r5_recon_params *p, struct slab *s, const r5_cs_solve_opts *o,
			    r5_array *image, double sums[2])
{
	r5_array *rhs = NULL, *x = NULL, *combined = NULL;
	R5_TRY(slab_rhs(ctx, s, &rhs));
	r5_status st = r5_progress_check(o->progress, "cs", o->lo);
	if (st == R5_OK)
		st = r5_array_zeros(ctx, r5_ctx_residency(ctx), s->op->idims, &x);
	if (st == R5_OK)
		st = r5_cs_solve(ctx, p, s->op, s->kspace, rhs, x, o);
	r5_array_free(rhs);
	lap(ctx, s, &s->stats->solve_s);
	if (st == R5_OK)
		st = slab_residual(ctx, s, x, sums);
	lap(ctx, s, &s->stats->residual_s);
	if (st == R5_OK && x->dims[R5_DIM_MAP] > 1) {
		long dims[R5_DIMS];
		r5_dims_copy(dims, x->dims);
		dims[R5_DIM_MAP] = 1;
		st = r5_array_alloc_work(ctx, dims, &combined);
		if (st == R5_OK)
			st = r5_zrss(ctx, combined, x, R5_DIM_MAP);
	}
	if (st == R5_OK)
		st = scatter(ctx, image, s->x0, combined ? combined : x);
	lap(ctx, s, &s->stats->scatter_s);
	r5_array_free(combined);
	r5_array_free(x);
	return st;
}

r5_status r5_cs_slabs_solve(r5_ctx *ctx, const r5_recon_params *p, const r5_array *maps, const r5_array *mask,
			    const r5_array *kspace, r5_array *image, const r5_cs_slabs_opts *opts, double *residual)
{
	const r5_progress *progress = opts->progress;
	double lo = opts->lo, hi = opts->hi;
	r5_cs_slab_stats *stats = opts->stats;
	long nx = kspace->dims[R5_DIM_X], width = r5_cs_slab_width(p, r5_ctx_residency(ctx), kspace->dims);
	if (p->cs.slab <= 0 && (kspace->where != r5_ctx_residency(ctx) || maps->where != r5_ctx_residency(ctx)))
		width = streamed_width(ctx, kspace->dims, maps->dims[R5_DIM_MAP], width);
	long n_slabs = (nx + width - 1) / width;
	/* pass 1 is one adjoint per slab against iters normals in pass 2 */
	double mid = lo + (hi - lo) / (double)(p->sense.iters + 1), sums[2] = {0, 0};
	float peak = 0.0f;
	*residual = 0.0;
	r5_cs_slab_stats unused;
	int timed = stats != NULL;
	stats = timed ? stats : &unused;
	memset(stats, 0, sizeof *stats);
	stats->n_slabs = n_slabs;
	stats->width = width;
	R5_TRY(volume_peak(ctx, maps, mask, kspace, width, progress, lo, mid, &peak, stats, timed));
	if (kspace->where != r5_ctx_residency(ctx))
		r5_info("cs: streamed, %ld slab(s) of %ld readout position(s)", n_slabs, width);
	r5_debug("cs: readout decoupled, %ld slab(s) of %ld x position(s), max |E^H y| %.4g", n_slabs, width, peak);
	stats->peak = peak;
	/* peak 0 (no signal): every slab's E^H y is 0 too, and r5_cs_solve returns its minimiser 0 */
	for (long i = 0; i < n_slabs; i++) {
		double slab_lo = mid + (hi - mid) * (double)i / (double)n_slabs;
		double slab_hi = mid + (hi - mid) * (double)(i + 1) / (double)n_slabs;
		struct slab s = {.x0 = i * width, .width = i + 1 < n_slabs ? width : nx - i * width, .stats = stats,
				 .timed = timed};
		r5_cs_solve_opts o = {.progress = progress,
				      .lo = slab_lo,
				      .hi = slab_hi,
				      .peak = peak,
				      .reg_flags = R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z),
				      .noise_sigma = opts->noise_sigma};
		r5_status st = r5_progress_check(progress, "cs", slab_lo);
		if (st == R5_OK)
			st = slab_open(ctx, maps, mask, kspace, progress, slab_lo, &s);
		if (st == R5_OK)
			st = slab_solve(ctx, p, &s, &o, image, sums);
		st = slab_context(st, &s);
		slab_close(&s);
		R5_TRY(st);
	}
	*residual = sums[1] > 0 ? sqrt(sums[0] / sums[1]) : 0.0;
	return R5_OK;
}
