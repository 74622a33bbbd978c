/* The operators of Cartesian SENSE (linop.h): centred unitary FFT, sampling mask, coil maps,
 * and their chain E = M F S (Pruessmann et al., MRM 46:638, 2001, with ESPIRiT maps: Uecker et
 * al., MRM 71:990, 2014). Coil maps keep per-coil (and per-map) slices as stack descriptors so
 * that applying an operator allocates nothing. */
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
	return r5_linop_create(ctx, "fft", dims, dims, fft_forward, fft_adjoint, identity, f, free, out);
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
	return r5_linop_create(ctx, "sample", dims, dims, sample_apply, sample_apply, sample_apply, (void *)mask, NULL,
			       out);
}

/* --- coil maps --- */

struct maps_data {
	const r5_array *maps; /* [x, y, z, coil, n_maps] */
	long n_coils, n_maps;
};

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

/* out_j = sum_c conj(map_cj) in_c, as one accumulating multiply per coil (no scratch array) */
static r5_status maps_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct maps_data *m = data;
	for (long j = 0; j < m->n_maps; j++) {
		r5_array image = r5_linop_slice(out, R5_DIM_MAP, j);
		r5_array map_j = r5_linop_slice(m->maps, R5_DIM_MAP, j);
		for (long c = 0; c < m->n_coils; c++) {
			r5_array map = r5_linop_slice(&map_j, R5_DIM_COIL, c);
			r5_array coil = r5_linop_slice(in, R5_DIM_COIL, c);
			R5_TRY(r5_zmul(ctx, &image, &coil, &map, R5_ZMUL_CONJ2 | (c ? R5_ZMUL_ACCUM : 0)));
		}
	}
	return R5_OK;
}

r5_status r5_linop_maps(r5_ctx *ctx, const r5_array *maps, r5_linop **out)
{
	for (int d = R5_DIM_MAP + 1; d < R5_DIMS; d++)
		if (maps->dims[d] != 1)
			return r5_set_error(R5_EINVAL, "operator maps: maps must be [x y z coil maps], dimension %d is %ld",
					    d, maps->dims[d]);
	struct maps_data *m = malloc(sizeof *m);
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
	return r5_linop_create(ctx, "maps", idims, odims, maps_forward, maps_adjoint, NULL, m, free, out);
}

r5_status r5_linop_sense(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, unsigned long fft_flags,
			 r5_linop **out)
{
	r5_linop *s_op = NULL, *f_op = NULL, *m_op = NULL, *fs = NULL;
	*out = NULL;
	R5_TRY(r5_linop_maps(ctx, maps, &s_op));
	r5_status s = r5_linop_fft(ctx, s_op->odims, fft_flags, &f_op);
	if (s == R5_OK)
		s = r5_linop_sample(ctx, s_op->odims, mask, &m_op);
	if (s != R5_OK) {
		r5_linop_free(s_op);
		r5_linop_free(f_op);
		return s;
	}
	R5_TRY(r5_linop_chain(ctx, s_op, f_op, &fs));
	return r5_linop_chain(ctx, fs, m_op, out);
}
