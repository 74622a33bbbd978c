/* The operators of Cartesian SENSE (linop.h): centred unitary FFT, sampling mask, coil maps,
 * and their chain E = M F S (Pruessmann et al., MRM 46:638, 2001, with ESPIRiT maps: Uecker et
 * al., MRM 71:990, 2014). Coil maps take per-coil (and per-map) slices as views by value, so
 * that applying an operator allocates nothing after its first application (scratch is made
 * then, linop.h). */
#include <stdlib.h>

#include "../core/fft.h"
#include "linop.h"

/* --- FFT --- */

static r5_status fft_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_fft(ctx, *(unsigned long *)data, out, in);
}

static r5_status fft_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_ifft(ctx, *(unsigned long *)data, out, in);
}

static r5_status identity(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	(void)data;
	return out == in ? R5_OK : r5_array_copy(ctx, out, in);
}

r5_status r5_linop_fft(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_linop **out)
{
	unsigned long *f = malloc(sizeof *f);
	if (!f)
		return r5_set_error(R5_ENOMEM, "operator fft");
	*f = flags;
	R5_TRY(r5_linop_create(ctx, "fft", dims, dims, fft_forward, fft_adjoint, identity, f, free, out));
	(*out)->in_place = R5_LINOP_INPLACE_ALL; /* r5_fft runs in place */
	return R5_OK;
}

/* --- sampling mask --- */

static r5_status sample_apply(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_zmul(ctx, out, in, (const r5_array *)data, 0);
}

r5_status r5_linop_sample(r5_ctx *ctx, const long dims[R5_DIMS], const r5_array *mask, r5_linop **out)
{
	for (int d = 0; d < R5_DIMS; d++)
		if (mask->dims[d] != 1 && mask->dims[d] != dims[d])
			return r5_set_error(R5_EINVAL, "operator sample: mask dimension %d is %ld, data has %ld", d,
					    mask->dims[d], dims[d]);
	R5_TRY(r5_linop_create(ctx, "sample", dims, dims, sample_apply, sample_apply, sample_apply, (void *)mask, NULL,
			       out));
	(*out)->in_place = R5_LINOP_INPLACE_ALL; /* element-wise */
	return R5_OK;
}

/* --- sampled FFT: M F, with a normal that needs no centring ---
 * For the centred unitary FFT F_c = P F R (R, P the phase ramps of fft.c), the ramp phases
 * cancel in the normal operator and R's modulation is a circular shift of k-space, so
 *   F_c^H M F_c = F^H M' F / N,  M'[k] = M[(k + floor(N/2)) mod N]  per transformed dimension
 * (F the raw FFT). CG-SENSE applies the normal every iteration: this saves four full passes
 * over the coil data per iteration against chaining fft and sample. */

struct fft_sample_data {
	unsigned long flags;
	const r5_array *mask;
	r5_array *shifted; /* M' / N where the context computes, mask dims */
};

static void fft_sample_destroy(void *data)
{
	struct fft_sample_data *d = data;
	r5_array_free(d->shifted);
	free(d);
}

static long fft_sample_held(const void *data)
{
	return r5_linop_array_bytes(((const struct fft_sample_data *)data)->shifted);
}

static r5_status fft_sample_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct fft_sample_data *d = data;
	R5_TRY(r5_fft(ctx, d->flags, out, in));
	return r5_zmul(ctx, out, out, d->mask, 0);
}

static r5_status fft_sample_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct fft_sample_data *d = data;
	R5_TRY(r5_zmul(ctx, out, in, d->mask, 0));
	return r5_ifft(ctx, d->flags, out, out);
}

static r5_status fft_sample_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct fft_sample_data *d = data;
	R5_TRY(r5_fft_raw(ctx, d->flags, out, in, 0));
	R5_TRY(r5_zmul(ctx, out, out, d->shifted, 0));
	return r5_fft_raw(ctx, d->flags, out, out, 1);
}

/* M' / N on the host, then where the context computes. */
static r5_status fft_sample_shift(r5_ctx *ctx, const long dims[R5_DIMS], struct fft_sample_data *d)
{
	r5_array *host = NULL, *shifted = NULL;
	double n_fft = 1;
	for (int k = 0; k < R5_DIMS; k++)
		if (d->flags & (1UL << k))
			n_fft *= (double)dims[k];
	r5_status s = r5_array_to_host(ctx, d->mask, &host);
	if (s == R5_OK)
		s = r5_array_alloc_host(d->mask->dims, &shifted);
	if (s == R5_OK) {
		const long *md = d->mask->dims;
		long n = r5_array_size(host), str[R5_DIMS];
		r5_dims_strides(str, md);
		for (long i = 0; i < n; i++) {
			long src = 0, rest = i;
			for (int k = 0; k < R5_DIMS; k++) {
				long idx = rest % md[k];
				rest /= md[k];
				if ((d->flags & (1UL << k)) && md[k] > 1)
					idx = (idx + md[k] / 2) % md[k];
				src += idx * str[k];
			}
			shifted->data[i] = host->data[src] / (float)n_fft;
		}
		s = r5_array_to_work(ctx, shifted, &d->shifted);
	}
	r5_array_free(host);
	r5_array_free(shifted);
	return s;
}

r5_status r5_linop_fft_sample(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, const r5_array *mask,
			      r5_linop **out)
{
	*out = NULL;
	for (int k = 0; k < R5_DIMS; k++)
		if (mask->dims[k] != 1 && mask->dims[k] != dims[k])
			return r5_set_error(R5_EINVAL, "operator fft-sample: mask dimension %d is %ld, data has %ld", k,
					    mask->dims[k], dims[k]);
	struct fft_sample_data *d = calloc(1, sizeof *d);
	if (!d)
		return r5_set_error(R5_ENOMEM, "operator fft-sample");
	for (int k = 0; k < R5_DIMS; k++) /* the dimensions r5_fft transforms, so plans are shared */
		if ((flags & (1UL << k)) && dims[k] > 1)
			d->flags |= 1UL << k;
	d->mask = mask;
	r5_status s = fft_sample_shift(ctx, dims, d);
	if (s != R5_OK) {
		fft_sample_destroy(d);
		return s;
	}
	R5_TRY(r5_linop_create(ctx, "fft-sample", dims, dims, fft_sample_forward, fft_sample_adjoint,
			       fft_sample_normal, d, fft_sample_destroy, out));
	(*out)->in_place = R5_LINOP_INPLACE_ALL; /* FFTs in place, the mask element-wise */
	(*out)->held = fft_sample_held;
	return R5_OK;
}

/* --- coil maps --- */

struct maps_data {
	const r5_array *maps; /* [x, y, z, coil, n_maps] */
	long n_coils, n_maps;
	r5_array *coil_image; /* [x, y, z]: one coil's image inside the normal, at its first use */
};

static void maps_destroy(void *data)
{
	struct maps_data *m = data;
	r5_array_free(m->coil_image);
	free(m);
}

static long maps_held(const void *data)
{
	return r5_linop_array_bytes(((const struct maps_data *)data)->coil_image);
}

/* Map set j of coil c: [x, y, z] (contiguous). */
static r5_array maps_one(const struct maps_data *m, long c, long j)
{
	r5_array map_j = r5_linop_slice(m->maps, R5_DIM_MAP, j);
	return r5_linop_slice(&map_j, R5_DIM_COIL, c);
}

static r5_status maps_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct maps_data *m = data;
	if (m->n_maps == 1)
		return r5_zmul(ctx, out, m->maps, in, 0);
	for (long j = 0; j < m->n_maps; j++) {
		r5_array map = r5_linop_slice(m->maps, R5_DIM_MAP, j);
		r5_array image = r5_linop_slice(in, R5_DIM_MAP, j);
		R5_TRY(r5_zmul(ctx, out, &map, &image, j ? R5_ZMUL_ACCUM : 0));
	}
	return R5_OK;
}

/* out_j (+)= sum_c conj(map_cj) in_c, as one accumulating multiply per coil (no scratch array);
 * accumulate: added to out (the coil groups of sense-grouped) instead of overwriting it */
static r5_status maps_adjoint_into(r5_ctx *ctx, struct maps_data *m, r5_array *out, const r5_array *in,
				   int accumulate)
{
	for (long j = 0; j < m->n_maps; j++) {
		r5_array image = r5_linop_slice(out, R5_DIM_MAP, j);
		for (long c = 0; c < m->n_coils; c++) {
			r5_array map = maps_one(m, c, j);
			r5_array coil = r5_linop_slice(in, R5_DIM_COIL, c);
			R5_TRY(r5_zmul(ctx, &image, &coil, &map, R5_ZMUL_CONJ2 | (c || accumulate ? R5_ZMUL_ACCUM : 0)));
		}
	}
	return R5_OK;
}

static r5_status maps_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return maps_adjoint_into(ctx, data, out, in, 0);
}

/* out_j = sum_c conj(map_cj) t_c with t_c = sum_m map_cm in_m, one coil image t_c at a time */
static r5_status maps_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct maps_data *m = data;
	long vdims[R5_DIMS];
	r5_dims_copy(vdims, in->dims);
	vdims[R5_DIM_MAP] = 1;
	R5_TRY(r5_linop_scratch(ctx, "maps normal", &m->coil_image, vdims));
	for (long c = 0; c < m->n_coils; c++) {
		for (long j = 0; j < m->n_maps; j++) {
			r5_array map = maps_one(m, c, j), image = r5_linop_slice(in, R5_DIM_MAP, j);
			R5_TRY(r5_zmul(ctx, m->coil_image, &map, &image, j ? R5_ZMUL_ACCUM : 0));
		}
		for (long j = 0; j < m->n_maps; j++) {
			r5_array map = maps_one(m, c, j), image = r5_linop_slice(out, R5_DIM_MAP, j);
			R5_TRY(r5_zmul(ctx, &image, m->coil_image, &map, R5_ZMUL_CONJ2 | (c ? R5_ZMUL_ACCUM : 0)));
		}
	}
	return R5_OK;
}

r5_status r5_linop_maps(r5_ctx *ctx, const r5_array *maps, r5_linop **out)
{
	*out = NULL;
	for (int d = R5_DIM_MAP + 1; d < R5_DIMS; d++)
		if (maps->dims[d] != 1)
			return r5_set_error(R5_EINVAL, "operator maps: maps must be [x y z coil maps], dimension %d is "
						       "%ld", d, maps->dims[d]);
	struct maps_data *m = calloc(1, sizeof *m);
	if (!m)
		return r5_set_error(R5_ENOMEM, "operator maps");
	m->maps = maps;
	m->n_coils = maps->dims[R5_DIM_COIL];
	m->n_maps = maps->dims[R5_DIM_MAP];
	long idims[R5_DIMS], odims[R5_DIMS];
	r5_dims_copy(idims, maps->dims);
	r5_dims_copy(odims, maps->dims);
	idims[R5_DIM_COIL] = 1;
	odims[R5_DIM_MAP] = 1;
	R5_TRY(r5_linop_create(ctx, "maps", idims, odims, maps_forward, maps_adjoint, maps_normal, m, maps_destroy,
			       out));
	(*out)->held = maps_held;
	return R5_OK;
}

r5_status r5_linop_sense(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, unsigned long fft_flags,
			 r5_linop **out)
{
	r5_linop *s_op = NULL, *fm_op = NULL;
	*out = NULL;
	R5_TRY(r5_linop_maps(ctx, maps, &s_op));
	r5_status s = r5_linop_fft_sample(ctx, s_op->odims, fft_flags, mask, &fm_op);
	if (s != R5_OK) {
		r5_linop_free(s_op);
		return s;
	}
	return r5_linop_chain(ctx, s_op, fm_op, out);
}

/* --- SENSE by groups of coils --- */

struct sense_group {
	r5_linop *maps_op; /* the group's coil maps */
	r5_linop *fs_op;   /* fft-sample of the group's coil images (one per group size) */
	r5_array *maps;    /* the group's maps: a view (one map set) or a contiguous copy */
	long c0, n;        /* coils c0 .. c0+n-1 */
};

struct sense_groups_data {
	struct sense_group *groups;
	long n_groups;
	r5_array *coils; /* one full group's coil images, at the first adjoint or normal */
	const r5_progress *progress;
	const char *stage;
};

static void sense_groups_destroy(void *data)
{
	struct sense_groups_data *d = data;
	for (long g = 0; d->groups && g < d->n_groups; g++) {
		r5_linop_free(d->groups[g].maps_op);
		r5_linop_free(d->groups[g].fs_op);
		r5_array_free(d->groups[g].maps);
	}
	free(d->groups);
	r5_array_free(d->coils);
	free(d);
}

static long sense_groups_held(const void *data)
{
	const struct sense_groups_data *d = data;
	long bytes = r5_linop_array_bytes(d->coils);
	for (long g = 0; g < d->n_groups; g++) {
		const struct sense_group *gr = &d->groups[g];
		bytes += r5_linop_array_bytes(gr->maps) + r5_linop_bytes_held(gr->maps_op);
		if (!g || gr->fs_op != d->groups[g - 1].fs_op) /* shared: counted once */
			bytes += r5_linop_bytes_held(gr->fs_op);
	}
	return bytes;
}

/* Coils c0 .. c0+n-1 of a contiguous [x, y, z, coil, 1, ...] array, as a view by value. */
static r5_array coil_range(const r5_array *a, long c0, long n)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, a->dims);
	dims[R5_DIM_COIL] = n;
	return r5_array_view_strided(a, dims, NULL, c0 * a->strides[R5_DIM_COIL]);
}

static r5_status groups_check(const struct sense_groups_data *d, long g)
{
	return r5_progress_check(d->progress, d->stage, (double)(g + 1) / (double)d->n_groups);
}

static r5_status sense_groups_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct sense_groups_data *d = data;
	for (long g = 0; g < d->n_groups; g++) {
		r5_array part = coil_range(out, d->groups[g].c0, d->groups[g].n);
		R5_TRY(r5_linop_forward(ctx, d->groups[g].maps_op, &part, in));
		R5_TRY(r5_linop_forward(ctx, d->groups[g].fs_op, &part, &part));
		R5_TRY(groups_check(d, g));
	}
	return R5_OK;
}

/* out (+)= group g's adjoint of its coil range of in (normal = 0) or its normal of in (1), through
 * the shared coil images; the first group overwrites out, the others add to it (the maps'
 * accumulating multiply: no image-sized sum and no extra pass). */
static r5_status sense_group_apply(r5_ctx *ctx, struct sense_groups_data *d, long g, int normal, r5_array *out,
				   const r5_array *in)
{
	const struct sense_group *gr = &d->groups[g];
	r5_array coils = coil_range(d->coils, 0, gr->n);
	if (normal) {
		R5_TRY(r5_linop_forward(ctx, gr->maps_op, &coils, in));
		R5_TRY(r5_linop_normal(ctx, gr->fs_op, &coils, &coils));
	} else {
		r5_array part = coil_range(in, gr->c0, gr->n);
		R5_TRY(r5_linop_adjoint(ctx, gr->fs_op, &coils, &part));
	}
	return maps_adjoint_into(ctx, gr->maps_op->data, out, &coils, g > 0);
}

/* out = sum over groups of adjoint (normal = 0) or normal (1) of the group. */
static r5_status sense_groups_sum(r5_ctx *ctx, struct sense_groups_data *d, int normal, r5_array *out,
				  const r5_array *in)
{
	R5_TRY(r5_linop_scratch(ctx, "sense-grouped", &d->coils, d->groups[0].maps_op->odims));
	for (long g = 0; g < d->n_groups; g++) {
		R5_TRY(sense_group_apply(ctx, d, g, normal, out, in));
		R5_TRY(groups_check(d, g));
	}
	return R5_OK;
}

static r5_status sense_groups_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return sense_groups_sum(ctx, data, 0, out, in);
}

static r5_status sense_groups_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return sense_groups_sum(ctx, data, 1, out, in);
}

/* Group g's maps and operators; the fft-sample operator of the group before when sizes agree. */
static r5_status sense_group_make(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, unsigned long fft_flags,
				  const struct sense_group *before, struct sense_group *group)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, maps->dims);
	dims[R5_DIM_COIL] = group->n;
	r5_array strided = r5_array_view_strided(maps, dims, NULL, group->c0 * maps->strides[R5_DIM_COIL]);
	r5_status s = R5_OK;
	if (maps->dims[R5_DIM_MAP] == 1) {
		s = r5_array_view(maps->where, maps->ctx, strided.dims, strided.data, &group->maps);
	} else {
		s = r5_array_alloc_work(ctx, strided.dims, &group->maps);
		if (s == R5_OK)
			s = r5_zresize_centered(ctx, group->maps, &strided);
	}
	if (s == R5_OK)
		s = r5_linop_maps(ctx, group->maps, &group->maps_op);
	if (s == R5_OK && before && before->n == group->n)
		group->fs_op = r5_linop_ref(before->fs_op);
	else if (s == R5_OK)
		s = r5_linop_fft_sample(ctx, group->maps_op->odims, fft_flags, mask, &group->fs_op);
	return s;
}

r5_status r5_linop_sense_grouped(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, unsigned long fft_flags,
				 long coils_per_group, const r5_progress *progress, const char *stage,
				 r5_linop **out)
{
	long coils = maps->dims[R5_DIM_COIL];
	*out = NULL;
	if (coils_per_group <= 0 || coils_per_group >= coils)
		return r5_linop_sense(ctx, maps, mask, fft_flags, out);
	if (!r5_array_is_contiguous(maps))
		return r5_set_error(R5_EINVAL, "operator sense-grouped: maps must be contiguous");
	struct sense_groups_data *d = calloc(1, sizeof *d);
	long n_groups = (coils + coils_per_group - 1) / coils_per_group;
	if (d)
		d->groups = calloc((size_t)n_groups, sizeof *d->groups);
	if (!d || !d->groups) {
		if (d)
			sense_groups_destroy(d);
		return r5_set_error(R5_ENOMEM, "operator sense-grouped (%ld groups)", n_groups);
	}
	d->n_groups = n_groups;
	d->progress = progress;
	d->stage = stage ? stage : "sense operator";
	r5_status s = R5_OK;
	for (long g = 0; g < n_groups && s == R5_OK; g++) {
		d->groups[g].c0 = g * coils_per_group;
		d->groups[g].n = g + 1 < n_groups ? coils_per_group : coils - g * coils_per_group;
		s = sense_group_make(ctx, maps, mask, fft_flags, g ? &d->groups[g - 1] : NULL, &d->groups[g]);
	}
	if (s != R5_OK) {
		sense_groups_destroy(d);
		return r5_error_context(s, "operator sense-grouped");
	}
	long idims[R5_DIMS], odims[R5_DIMS];
	r5_dims_copy(odims, maps->dims);
	odims[R5_DIM_MAP] = 1;
	r5_dims_copy(idims, maps->dims);
	idims[R5_DIM_COIL] = 1;
	R5_TRY(r5_linop_create(ctx, "sense-grouped", idims, odims, sense_groups_forward, sense_groups_adjoint,
			       sense_groups_normal, d, sense_groups_destroy, out));
	(*out)->held = sense_groups_held;
	return R5_OK;
}
