/* Coil compression (coil_compress.h): SVD/PCA compression (Huang et al., MRI 26:133, 2008) and
 * geometric coil compression with alignment (Zhang et al., MRM 69:571, 2013), (the
 * prewhitening + compression step before calibration is recon/pipeline/coil_prep.c).
 *
 * The SVD of a calibration matrix A [samples x C] is taken as the eigen-decomposition of the
 * small Gram matrix A^H A (zgemm on the back end, eigenvectors on the host in double): its
 * eigenvectors are A's right singular vectors and its eigenvalues the squared singular values,
 * i.e. the energy each virtual coil carries. */
#include "coil_compress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fft.h"
#include "../core/log.h"
#include "herm_eig.h"

const r5_cc_conf r5_cc_defaults = {.n_virtual = 0, .energy = 0.95f, .mode = R5_CC_AUTO, .calib = {24, 24}};

r5_status r5_cc_mode_parse(const char *name, r5_cc_mode *mode)
{
	static const char *const names[] = {"auto", "svd", "geometric"};
	for (int i = 0; i < 3; i++)
		if (name && !strcmp(name, names[i])) {
			*mode = (r5_cc_mode)i;
			return R5_OK;
		}
	return r5_set_error(R5_EINVAL, "coil compression mode '%s' is not auto, svd or geometric", name ? name : "");
}

/* A host C x n matrix (double) as a float array where the context computes. */
static r5_status upload_matrix(r5_ctx *ctx, const double complex *matrix, long rows, long cols, long batch,
			       r5_array **out)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = rows;
	dims[1] = cols;
	dims[2] = batch;
	r5_array *host = NULL;
	R5_TRY(r5_array_alloc_host(dims, &host));
	for (long i = 0; i < rows * cols * batch; i++)
		host->data[i] = (float complex)matrix[i];
	r5_status s = r5_array_to_work(ctx, host, out);
	r5_array_free(host);
	return s;
}

/* `in` where the context computes: itself, or a new copy in *copy. */
static r5_status as_work(r5_ctx *ctx, const r5_array *in, r5_array **copy, const r5_array **work)
{
	*copy = NULL;
	*work = in;
	if (in->where == r5_ctx_residency(ctx))
		return R5_OK;
	R5_TRY(r5_array_to_work(ctx, in, copy));
	*work = *copy;
	return R5_OK;
}

/* A work array back to where `like` lives (host arrays go back to the host); consumes *a. */
static r5_status to_residency_of(r5_ctx *ctx, const r5_array *like, r5_array **a)
{
	if ((*a)->where == like->where)
		return R5_OK;
	r5_array *host = NULL;
	r5_status s = r5_array_to_host(ctx, *a, &host);
	r5_array_free(*a);
	*a = host;
	return s;
}

/* 1 when a host array of `bytes` (input and output together) is streamed on ctx a block at a time
 * rather than uploaded whole: ctx computes on a device and they exceed half of its free memory. */
static int streams(r5_ctx *ctx, const r5_array *in, double bytes)
{
	return in->where == R5_HOST && r5_ctx_fit(ctx, bytes, 0.5, 1) < 1;
}

/* r5_coil_mix of a host `in` into the host *out through device memory, block by block (streams). */
static r5_status coil_mix_streamed(r5_ctx *ctx, const r5_array *in, const r5_array *mat, int n_out, long block,
				   const r5_progress *progress, const char *stage, r5_array *out)
{
	long coils = in->dims[R5_DIM_COIL], voxels = in->dims[0] * in->dims[1] * in->dims[2];
	long frames = r5_array_size(in) / (voxels * coils);
	long fit = r5_ctx_fit(ctx, (double)sizeof(float complex) * (double)(coils + n_out), 0.25, block);
	block = fit >= 1 && fit < block ? fit : block;
	long bdims[R5_DIMS], odims[R5_DIMS];
	r5_dims_ones(bdims);
	bdims[0] = block;
	bdims[1] = coils;
	r5_dims_copy(odims, bdims);
	odims[1] = n_out;
	r5_array *hin = NULL, *hout = NULL, *din = NULL, *dout = NULL;
	r5_status s = r5_array_alloc_host(bdims, &hin);
	if (s == R5_OK)
		s = r5_array_alloc_host(odims, &hout);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, bdims, &din);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, odims, &dout);
	const struct r5_backend *be = r5_ctx_backend(ctx);
	for (long f = 0; s == R5_OK && f < frames; f++)
		for (long v0 = 0; s == R5_OK && v0 < voxels; v0 += block) {
			long nv = v0 + block < voxels ? block : voxels - v0;
			for (long c = 0; c < coils; c++)
				memcpy(hin->data + c * nv, in->data + (f * coils + c) * voxels + v0, sizeof(float complex) * (size_t)nv);
			s = be->upload(r5_ctx_state(ctx), din->data, hin->data, sizeof(float complex) * (size_t)(nv * coils));
			if (s == R5_OK)
				s = be->zgemm(r5_ctx_state(ctx), 0, nv, n_out, coils, 1.0f, din->data, nv, mat->data, coils, 0.0f,
					      dout->data, nv);
			if (s == R5_OK) /* a download returns with the data on the host */
				s = be->download(r5_ctx_state(ctx), hout->data, dout->data,
						 sizeof(float complex) * (size_t)(nv * n_out));
			for (long o = 0; s == R5_OK && o < n_out; o++)
				memcpy(out->data + (f * n_out + o) * voxels + v0, hout->data + o * nv, sizeof(float complex) * (size_t)nv);
			if (s == R5_OK)
				s = r5_progress_check(progress, stage ? stage : "coil mixing",
						      ((double)f + (double)(v0 + nv) / (double)voxels) / (double)frames);
		}
	r5_array_free(hin);
	r5_array_free(hout);
	r5_array_free(din);
	r5_array_free(dout);
	return s;
}

r5_status r5_coil_mix(r5_ctx *ctx, const r5_array *in, const double complex *matrix, int n_out,
		      const r5_progress *progress, const char *stage, r5_array **out)
{
	*out = NULL;
	long coils = in->dims[R5_DIM_COIL], voxels = in->dims[0] * in->dims[1] * in->dims[2];
	if (!r5_array_is_contiguous(in) || n_out < 1)
		return r5_set_error(R5_EINVAL, "coil mixing: input must be contiguous and n_out >= 1 (%d)", n_out);
	long frames = r5_array_size(in) / (voxels * coils), dims[R5_DIMS];
	r5_dims_copy(dims, in->dims);
	dims[R5_DIM_COIL] = n_out;
	r5_array *in_copy = NULL, *mat = NULL, *mixed = NULL;
	const r5_array *src = NULL;
	long block = R5_PROGRESS_CHUNK_MACS / (coils * n_out); /* voxels per zgemm */
	block = block < 1024 ? 1024 : block;
	double bytes = (double)r5_array_size(in) * sizeof(float complex) * (1.0 + (double)n_out / (double)coils);
	if (streams(ctx, in, bytes)) {
		r5_status s = upload_matrix(ctx, matrix, coils, n_out, 1, &mat);
		if (s == R5_OK)
			s = r5_array_alloc_host(dims, &mixed);
		if (s == R5_OK)
			s = coil_mix_streamed(ctx, in, mat, n_out, block, progress, stage, mixed);
		r5_array_free(mat);
		if (s != R5_OK) {
			r5_array_free(mixed);
			return r5_error_context(s, "coil mixing %ld -> %d channels (streamed)", coils, n_out);
		}
		*out = mixed;
		return R5_OK;
	}
	r5_status s = as_work(ctx, in, &in_copy, &src);
	if (s == R5_OK)
		s = upload_matrix(ctx, matrix, coils, n_out, 1, &mat);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, dims, &mixed);
	const struct r5_backend *be = r5_ctx_backend(ctx);
	for (long f = 0; s == R5_OK && f < frames; f++)
		for (long v0 = 0; s == R5_OK && v0 < voxels; v0 += block) {
			long nv = v0 + block < voxels ? block : voxels - v0;
			s = be->zgemm(r5_ctx_state(ctx), 0, nv, n_out, coils, 1.0f, src->data + f * voxels * coils + v0, voxels,
				      mat->data, coils, 0.0f, mixed->data + f * voxels * n_out + v0, voxels);
			if (s == R5_OK)
				s = r5_progress_check(progress, stage ? stage : "coil mixing",
						      ((double)f + (double)(v0 + nv) / (double)voxels) / (double)frames);
		}
	if (s == R5_OK)
		s = to_residency_of(ctx, in, &mixed);
	r5_array_free(in_copy);
	r5_array_free(mat);
	if (s != R5_OK) {
		r5_array_free(mixed);
		return r5_error_context(s, "coil mixing %ld -> %d channels", coils, n_out);
	}
	*out = mixed;
	return R5_OK;
}

/* gram[i + C j] = sum_r conj(A[r, i]) A[r, j] for `batch` matrices A (rows x C, column-major,
 * lda rows, one after the other) where the context computes; result on the host. */
static r5_status gram_batch(r5_ctx *ctx, const float complex *a, long rows, long coils, long batch,
			    double complex *gram)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = coils;
	dims[1] = coils;
	dims[2] = batch;
	r5_array *g = NULL, *host = NULL;
	R5_TRY(r5_array_alloc_work(ctx, dims, &g));
	r5_status s = R5_OK;
	for (long b = 0; s == R5_OK && b < batch; b++)
		s = r5_zgemm(ctx, 1, coils, coils, rows, 1.0f, a + b * rows * coils, rows,
			     a + b * rows * coils, rows, 0.0f, g->data + b * coils * coils, coils);
	if (s == R5_OK)
		s = r5_array_to_host(ctx, g, &host);
	for (long i = 0; s == R5_OK && i < coils * coils * batch; i++)
		gram[i] = host->data[i];
	r5_array_free(g);
	r5_array_free(host);
	return s;
}

/* The number of virtual coils: explicit, or the fewest holding `energy` of sum(eigenvalues). */
static r5_status choose_n(const r5_cc_conf *conf, const double *eigenvalues, long coils, int *n)
{
	if (conf->n_virtual > 0) {
		*n = conf->n_virtual;
		return R5_OK;
	}
	double total = 0, kept = 0;
	for (long c = 0; c < coils; c++)
		total += eigenvalues[c] > 0 ? eigenvalues[c] : 0;
	*n = (int)coils;
	for (long c = 0; c < coils && total > 0; c++) {
		kept += eigenvalues[c] > 0 ? eigenvalues[c] : 0;
		if (kept >= (double)conf->energy * total * (1 - 1e-9)) {
			*n = (int)c + 1;
			break;
		}
	}
	r5_info("coil compression: %d of %ld virtual coils keep %.4f of the calibration energy", *n, coils,
		total > 0 ? kept / total : 1.0);
	return R5_OK;
}

/* Central calibration block [nx, cy, cz, C] of the first frame, where the context computes. */
static r5_status calib_block(r5_ctx *ctx, const r5_array *kspace, const long calib[2], r5_array **block)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < 4; d++)
		dims[d] = kspace->dims[d];
	if (kspace->where != r5_ctx_residency(ctx)) {
		/* a host volume the device does not hold (streamed): the centred window copied out on
		 * the host (r5_zresize_centered's centre), then uploaded */
		long offset = 0;
		for (int d = 1; d <= 2; d++)
			if (calib[d - 1] > 0 && calib[d - 1] < dims[d]) {
				offset += (kspace->dims[d] / 2 - calib[d - 1] / 2) * kspace->strides[d];
				dims[d] = calib[d - 1];
			}
		r5_array view = r5_array_view_strided(kspace, dims, NULL, offset);
		return r5_array_gather_to_work(ctx, &view, block);
	}
	r5_array *frame = NULL;
	R5_TRY(r5_array_view(kspace->where, kspace->ctx, dims, kspace->data, &frame));
	for (int d = 1; d <= 2; d++)
		if (calib[d - 1] > 0 && calib[d - 1] < dims[d])
			dims[d] = calib[d - 1];
	r5_status s = r5_array_alloc_work(ctx, dims, block);
	if (s == R5_OK)
		s = r5_zresize_centered(ctx, *block, frame);
	r5_array_free(frame);
	return s;
}

/* Hermitian eigenvectors of a C x C Gram (column-major), descending; keeps the first n columns
 * in v (C x n) and all eigenvalues in w. */
static r5_status eig_top(long coils, const double complex *gram, int n, double complex *v, double *w)
{
	size_t cc = (size_t)coils * (size_t)coils;
	double complex *a = malloc(sizeof *a * cc);
	if (!a)
		return r5_set_error(R5_ENOMEM, "coil compression eigenvectors");
	memcpy(a, gram, sizeof *a * cc);
	r5_status s = r5_herm_eig((int)coils, a, w);
	if (s == R5_OK)
		memcpy(v, a, sizeof *v * (size_t)coils * (size_t)n);
	free(a);
	return s;
}

/* SVD compression matrix (C x n) from the calibration block. */
static r5_status svd_matrix(r5_ctx *ctx, const r5_array *block, const r5_cc_conf *conf, int *n,
			    double complex **matrix)
{
	long coils = block->dims[R5_DIM_COIL], rows = r5_array_size(block) / coils;
	double complex *gram = malloc(sizeof *gram * (size_t)(coils * coils));
	double *w = malloc(sizeof *w * (size_t)coils);
	*matrix = malloc(sizeof **matrix * (size_t)(coils * coils));
	r5_status s = gram && w && *matrix ? R5_OK : r5_set_error(R5_ENOMEM, "coil compression (%ld channels)", coils);
	if (s == R5_OK)
		s = gram_batch(ctx, block->data, rows, coils, 1, gram);
	if (s == R5_OK)
		s = eig_top(coils, gram, (int)coils, *matrix, w);
	if (s == R5_OK)
		s = choose_n(conf, w, coils, n);
	free(gram);
	free(w);
	return s;
}


/* --- geometric coil compression (Zhang et al., MRM 69:571, 2013) --- */

/* Alignment (the paper's step 3): rotate v (C x n) within its span to be closest to ref, i.e.
 * v <- v P with the unitary P minimising ||v P - ref||_F (orthogonal Procrustes): P is the polar
 * factor of M = v^H ref, P = M (M^H M)^-1/2, from the eigen-decomposition of M^H M. */
static r5_status align_to(long coils, int n, double complex *v, const double complex *ref)
{
	size_t nn = (size_t)n * (size_t)n;
	double complex *m = calloc(nn, sizeof *m), *h = calloc(nn, sizeof *h), *p = calloc(nn, sizeof *p);
	double complex *rotated = calloc((size_t)coils * (size_t)n, sizeof *rotated);
	double *w = calloc((size_t)n, sizeof *w);
	r5_status s = m && h && p && rotated && w ? R5_OK : r5_set_error(R5_ENOMEM, "coil compression alignment");
	for (int i = 0; s == R5_OK && i < n; i++)
		for (int j = 0; j < n; j++)
			for (long c = 0; c < coils; c++)
				m[i + n * j] += conj(v[c + coils * i]) * ref[c + coils * j];
	for (int i = 0; s == R5_OK && i < n; i++)
		for (int j = 0; j < n; j++)
			for (int k = 0; k < n; k++)
				h[i + n * j] += conj(m[k + n * i]) * m[k + n * j];
	if (s == R5_OK)
		s = r5_herm_eig(n, h, w); /* h: eigenvectors U of M^H M, w: squared singular values */
	double floor = s == R5_OK && w[0] > 0 ? 1e-24 * w[0] : 0;
	for (int k = 0; s == R5_OK && k < n; k++) {
		if (!(w[k] > floor))
			continue; /* a direction ref does not share: leave it out of P's range */
		double inv = 1.0 / sqrt(w[k]);
		for (int i = 0; i < n; i++) {
			double complex mu = 0; /* (M U)[i, k] */
			for (int l = 0; l < n; l++)
				mu += m[i + n * l] * h[l + n * k];
			for (int j = 0; j < n; j++)
				p[i + n * j] += mu * inv * conj(h[j + n * k]);
		}
	}
	for (long c = 0; s == R5_OK && c < coils; c++)
		for (int j = 0; j < n; j++)
			for (int i = 0; i < n; i++)
				rotated[c + coils * j] += v[c + coils * i] * p[i + n * j];
	if (s == R5_OK)
		memcpy(v, rotated, sizeof *v * (size_t)coils * (size_t)n);
	free(m), free(h), free(p), free(rotated), free(w);
	return s;
}

/* dims/strides of an up-to-3-dimensional strided copy for the back end's zcopy_md */
static r5_status permute3(r5_ctx *ctx, const long n[3], float complex *out, const long out_str[3],
			  const float complex *in, const long in_str[3])
{
	long dims[R5_DIMS], os[R5_DIMS], is[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < R5_DIMS; d++)
		os[d] = is[d] = 0;
	for (int d = 0; d < 3; d++) {
		dims[d] = n[d];
		os[d] = out_str[d];
		is[d] = in_str[d];
	}
	return r5_zcopy_strided(ctx, dims, os, out, is, in);
}

/* Per-readout-position compression matrices (C x n each, nx of them, aligned) from the
 * calibration block [nx, cy, cz, C] (transformed to x-ky-kz in place). */
static r5_status geo_matrices(r5_ctx *ctx, r5_array *block, const r5_cc_conf *conf, int *n, double complex **mats)
{
	const char *stage = "coil compression matrices";
	long nx = block->dims[0], rows = block->dims[1] * block->dims[2], coils = block->dims[R5_DIM_COIL];
	size_t cc = (size_t)(coils * coils);
	double complex *grams = malloc(sizeof *grams * cc * (size_t)(nx + 1));
	double *w = malloc(sizeof *w * (size_t)coils);
	*mats = malloc(sizeof **mats * cc * (size_t)nx);
	r5_array *perm = NULL;
	long pdims[R5_DIMS];
	r5_dims_ones(pdims);
	pdims[0] = rows, pdims[1] = coils, pdims[2] = nx;
	r5_status s = grams && w && *mats ? R5_OK : r5_set_error(R5_ENOMEM, "geometric coil compression");
	if (s == R5_OK)
		s = r5_ifft(ctx, 1UL, block, block);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, pdims, &perm);
	const long n3[3] = {nx, rows, coils}, in_str[3] = {1, nx, nx * rows}, out_str[3] = {rows * coils, 1, rows};
	if (s == R5_OK)
		s = permute3(ctx, n3, perm->data, out_str, block->data, in_str);
	if (s == R5_OK)
		s = gram_batch(ctx, perm->data, rows, coils, nx, grams);
	if (s == R5_OK)
		s = r5_progress_check(conf->progress, stage, 0.05);
	/* the number of virtual coils from the summed Gram: by Parseval it is k-space's */
	double complex *total = grams + cc * (size_t)nx;
	for (size_t i = 0; s == R5_OK && i < cc; i++) {
		total[i] = 0;
		for (long x = 0; x < nx; x++)
			total[i] += grams[i + cc * (size_t)x];
	}
	if (s == R5_OK)
		s = eig_top(coils, total, (int)coils, *mats, w);
	if (s == R5_OK)
		s = choose_n(conf, w, coils, n);
	for (long x = 0; s == R5_OK && x < nx; x++)
		s = eig_top(coils, grams + cc * (size_t)x, *n, *mats + (size_t)(coils * *n * x), w);
	if (s == R5_OK)
		s = r5_progress_check(conf->progress, stage, 0.1);
	size_t stride = (size_t)(coils * *n);
	for (long x = nx / 2 + 1; s == R5_OK && x < nx; x++)
		s = align_to(coils, *n, *mats + stride * (size_t)x, *mats + stride * (size_t)(x - 1));
	for (long x = nx / 2 - 1; s == R5_OK && x >= 0; x--)
		s = align_to(coils, *n, *mats + stride * (size_t)x, *mats + stride * (size_t)(x + 1));
	r5_array_free(perm);
	free(grams);
	free(w);
	return s;
}

struct geo_frame {
	long nx, rows, coils, n;  /* readout, y z positions, coils in and out */
	long group, group_out;    /* coils per FFT/transpose chunk, in and out */
	long x_block;             /* readout positions per chunk of zgemms */
	r5_array *mat, *hybrid, *perm, *operm;
	const r5_progress *progress;
	double lo, hi;            /* fractions of this frame */
};

/* Coils c0 .. c0+nc-1 of kin's frame (at `frame`): inverse FFT along x into hybrid, transposed
 * into perm [y z, coil, x]. */
static r5_status geo_forward_group(r5_ctx *ctx, const r5_array *kin, float complex *frame, struct geo_frame *g,
				   long c0, long nc)
{
	long dims[R5_DIMS], vox = g->nx * g->rows;
	r5_dims_ones(dims);
	for (int d = 0; d < 3; d++)
		dims[d] = kin->dims[d];
	dims[R5_DIM_COIL] = nc;
	r5_array *in = NULL, *hy = NULL;
	r5_status s = r5_array_view(kin->where, kin->ctx, dims, frame + vox * c0, &in);
	if (s == R5_OK)
		s = r5_array_view(g->hybrid->where, g->hybrid->ctx, dims, g->hybrid->data + vox * c0, &hy);
	if (s == R5_OK)
		s = r5_ifft(ctx, 1UL, hy, in);
	const long n3[3] = {g->nx, g->rows, nc}, h_str[3] = {1, g->nx, vox}, p_str[3] = {g->rows * g->coils, 1, g->rows};
	if (s == R5_OK)
		s = permute3(ctx, n3, g->perm->data + g->rows * c0, p_str, hy->data, h_str);
	r5_array_free(in);
	r5_array_free(hy);
	return s;
}

/* Output coils c0 .. c0+nc-1: operm [y z, coil, x] transposed back into oframe, FFT along x. */
static r5_status geo_back_group(r5_ctx *ctx, const r5_array *out, float complex *oframe, struct geo_frame *g, long c0,
				long nc)
{
	long dims[R5_DIMS], vox = g->nx * g->rows;
	r5_dims_ones(dims);
	for (int d = 0; d < 3; d++)
		dims[d] = out->dims[d];
	dims[R5_DIM_COIL] = nc;
	const long m3[3] = {g->nx, g->rows, nc}, o_str[3] = {1, g->nx, vox}, q_str[3] = {g->rows * g->n, 1, g->rows};
	r5_array *view = NULL;
	r5_status s = permute3(ctx, m3, oframe + vox * c0, o_str, g->operm->data + g->rows * c0, q_str);
	if (s == R5_OK)
		s = r5_array_view(out->where, out->ctx, dims, oframe + vox * c0, &view);
	if (s == R5_OK)
		s = r5_fft(ctx, 1UL, view, view);
	r5_array_free(view);
	return s;
}

/* One frame, in chunks (groups of coils for the FFTs and transposes, blocks of readout
 * positions for the zgemms) with a stop check after each. */
static r5_status geo_frame_apply(r5_ctx *ctx, const r5_array *kin, long f, struct geo_frame *g, r5_array *out)
{
	const char *stage = "coil compression";
	long vox = g->nx * g->rows;
	float complex *frame = kin->data + f * vox * g->coils, *oframe = out->data + f * vox * g->n;
	double span = g->hi - g->lo;
	r5_status s = R5_OK;
	for (long c0 = 0; c0 < g->coils && s == R5_OK; c0 += g->group) {
		long nc = c0 + g->group < g->coils ? g->group : g->coils - c0;
		s = geo_forward_group(ctx, kin, frame, g, c0, nc);
		if (s == R5_OK)
			s = r5_progress_check(g->progress, stage, g->lo + span * 0.4 * (double)(c0 + nc) / (double)g->coils);
	}
	const struct r5_backend *be = r5_ctx_backend(ctx);
	long rows = g->rows, coils = g->coils, n = g->n;
	for (long x = 0; s == R5_OK && x < g->nx; x++) {
		s = be->zgemm(r5_ctx_state(ctx), 0, rows, n, coils, 1.0f, g->perm->data + x * rows * coils, rows,
			      g->mat->data + x * coils * n, coils, 0.0f, g->operm->data + x * rows * n, rows);
		if (s == R5_OK && (x + 1) % g->x_block == 0)
			s = r5_progress_check(g->progress, stage, g->lo + span * (0.4 + 0.3 * (double)(x + 1) / (double)g->nx));
	}
	for (long c0 = 0; c0 < n && s == R5_OK; c0 += g->group_out) {
		long nc = c0 + g->group_out < n ? g->group_out : n - c0;
		s = geo_back_group(ctx, out, oframe, g, c0, nc);
		if (s == R5_OK)
			s = r5_progress_check(g->progress, stage, g->lo + span * (0.7 + 0.3 * (double)(c0 + nc) / (double)n));
	}
	return s;
}

/* out (work, coils n) = per-x compression of kin (work): frame by frame, inverse FFT along x,
 * transpose to [y z, coil, x], one zgemm per x, transpose back, FFT along x. */
static r5_status geo_apply(r5_ctx *ctx, const r5_array *kin, const double complex *mats, int n,
			   const r5_progress *progress, r5_array *out)
{
	struct geo_frame g = {.nx = kin->dims[0], .rows = kin->dims[1] * kin->dims[2], .coils = kin->dims[R5_DIM_COIL],
			      .n = n, .progress = progress};
	long vox = g.nx * g.rows, frames = r5_array_size(kin) / (vox * g.coils), fdims[R5_DIMS], pdims[R5_DIMS];
	g.group = R5_PROGRESS_CHUNK_VALUES / vox;
	g.group = g.group < 1 ? 1 : g.group;
	g.group_out = g.group;
	g.x_block = R5_PROGRESS_CHUNK_MACS / (g.rows * n * g.coils);
	g.x_block = g.x_block < 1 ? 1 : g.x_block;
	r5_dims_ones(fdims);
	for (int d = 0; d < 4; d++)
		fdims[d] = kin->dims[d];
	r5_dims_ones(pdims);
	pdims[0] = vox * g.coils;
	r5_status s = upload_matrix(ctx, mats, g.coils, n, g.nx, &g.mat);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, fdims, &g.hybrid);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, pdims, &g.perm);
	pdims[0] = vox * n;
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, pdims, &g.operm);
	for (long f = 0; s == R5_OK && f < frames; f++) {
		g.lo = 0.1 + 0.9 * (double)f / (double)frames;
		g.hi = 0.1 + 0.9 * (double)(f + 1) / (double)frames;
		s = geo_frame_apply(ctx, kin, f, &g, out);
	}
	r5_array_free(g.mat), r5_array_free(g.hybrid), r5_array_free(g.perm), r5_array_free(g.operm);
	return s;
}

/* geo_apply of a host kin into the host out through device memory, for a volume the device does
 * not hold (streams): per frame, the input's coil groups inverse-transformed along x into a host
 * hybrid copy; blocks of readout positions uploaded, transposed to [y z, coil, x], mixed by their
 * zgemms and transposed back into a host hybrid output; its coil groups transformed back along x
 * into out. The same transposes, zgemms and transforms as geo_apply, on pieces. */
static r5_status geo_apply_streamed(r5_ctx *ctx, const r5_array *kin, const double complex *mats, int n,
				    const r5_progress *progress, r5_array *out)
{
	const char *stage = "coil compression";
	long nx = kin->dims[0], rows = kin->dims[1] * kin->dims[2], coils = kin->dims[R5_DIM_COIL], vox = nx * rows;
	long frames = r5_array_size(kin) / (vox * coils);
	long xb = r5_ctx_fit(ctx, (double)sizeof(float complex) * (double)(2 * rows * (coils + n)), 0.25, nx);
	xb = xb < 1 ? 1 : xb > nx ? nx : xb;
	long fdims[R5_DIMS], odims[R5_DIMS];
	r5_dims_ones(fdims);
	for (int d = 0; d < 4; d++)
		fdims[d] = kin->dims[d];
	r5_dims_copy(odims, fdims);
	odims[R5_DIM_COIL] = n;
	r5_array *mat = NULL, *hin = NULL, *hout = NULL;
	r5_status s = upload_matrix(ctx, mats, coils, n, nx, &mat);
	if (s == R5_OK)
		s = r5_array_alloc_host(fdims, &hin);
	if (s == R5_OK)
		s = r5_array_alloc_host(odims, &hout);
	const struct r5_backend *be = r5_ctx_backend(ctx);
	for (long f = 0; s == R5_OK && f < frames; f++) {
		double lo = (double)f / (double)frames, span = 1.0 / (double)frames;
		/* 1: the input along x, coil groups at a time, into the host hybrid copy */
		r5_array src = r5_array_view_strided(kin, fdims, NULL, f * coils * vox);
		s = r5_fft_host(ctx, 1UL, 1, hin, &src, progress, stage, lo, lo + 0.3 * span);
		/* 2: blocks of readout positions: transpose, one zgemm per position, transpose back */
		for (long x0 = 0; x0 < nx && s == R5_OK; x0 += xb) {
			long xw = x0 + xb < nx ? xb : nx - x0, bin[R5_DIMS], bout[R5_DIMS], p[R5_DIMS], q[R5_DIMS];
			r5_dims_copy(bin, fdims);
			bin[0] = xw;
			r5_dims_copy(bout, odims);
			bout[0] = xw;
			r5_dims_ones(p);
			p[0] = xw * rows * coils;
			r5_dims_ones(q);
			q[0] = xw * rows * n;
			r5_array in_view = r5_array_view_strided(hin, bin, NULL, x0);
			r5_array out_view = r5_array_view_strided(hout, bout, NULL, x0);
			r5_array *din = NULL, *perm = NULL, *operm = NULL, *dout = NULL, *down = NULL;
			s = r5_array_gather_to_work(ctx, &in_view, &din);
			if (s == R5_OK)
				s = r5_array_alloc_work(ctx, p, &perm);
			if (s == R5_OK)
				s = r5_array_alloc_work(ctx, q, &operm);
			if (s == R5_OK)
				s = r5_array_alloc_work(ctx, bout, &dout);
			const long n3[3] = {xw, rows, coils}, h_str[3] = {1, xw, xw * rows}, p_str[3] = {rows * coils, 1, rows};
			const long m3[3] = {xw, rows, n}, q_str[3] = {rows * n, 1, rows};
			if (s == R5_OK)
				s = permute3(ctx, n3, perm->data, p_str, din->data, h_str);
			for (long x = 0; x < xw && s == R5_OK; x++)
				s = be->zgemm(r5_ctx_state(ctx), 0, rows, n, coils, 1.0f, perm->data + x * rows * coils, rows,
					      mat->data + (x0 + x) * coils * n, coils, 0.0f, operm->data + x * rows * n, rows);
			if (s == R5_OK)
				s = permute3(ctx, m3, dout->data, h_str, operm->data, q_str);
			if (s == R5_OK)
				s = r5_array_to_host(ctx, dout, &down);
			if (s == R5_OK)
				s = r5_array_host_copy(&out_view, down);
			r5_array_free(din), r5_array_free(perm), r5_array_free(operm), r5_array_free(dout), r5_array_free(down);
			if (s == R5_OK)
				s = r5_progress_check(progress, stage, lo + span * (0.3 + 0.4 * (double)(x0 + xw) / (double)nx));
		}
		/* 3: the output back along x, coil groups at a time, into out */
		r5_array dst = r5_array_view_strided(out, odims, NULL, f * n * vox);
		if (s == R5_OK)
			s = r5_fft_host(ctx, 1UL, 0, &dst, hout, progress, stage, lo + 0.7 * span, lo + span);
	}
	r5_array_free(mat);
	r5_array_free(hin);
	r5_array_free(hout);
	return s;
}

static r5_status check_conf(const r5_array *kspace, const r5_cc_conf *conf, r5_cc_mode *mode)
{
	long coils = kspace->dims[R5_DIM_COIL];
	if (conf->n_virtual > coils)
		return r5_set_error(R5_EINVAL, "coil compression: %d virtual coils requested but the scan has %ld channels",
				    conf->n_virtual, coils);
	if (conf->n_virtual <= 0 && !(conf->energy > 0 && conf->energy <= 1))
		return r5_set_error(R5_EINVAL, "coil compression: energy %g outside (0, 1] and no virtual coil count",
				    (double)conf->energy);
	if (!r5_array_is_contiguous(kspace))
		return r5_set_error(R5_EINVAL, "coil compression: k-space must be contiguous");
	*mode = conf->mode;
	if (*mode == R5_CC_AUTO)
		*mode = kspace->dims[R5_DIM_Z] > 1 ? R5_CC_GEOMETRIC : R5_CC_SVD;
	if (*mode == R5_CC_GEOMETRIC && kspace->dims[0] < 2)
		*mode = R5_CC_SVD;
	return R5_OK;
}

static r5_status matrix_array(const double complex *matrix, long coils, int n, r5_array **out)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = coils;
	dims[1] = n;
	R5_TRY(r5_array_alloc_host(dims, out));
	for (long i = 0; i < coils * n; i++)
		(*out)->data[i] = (float complex)matrix[i];
	return R5_OK;
}

r5_status r5_coil_compress_to(r5_ctx *ctx, const r5_array *kspace, const r5_cc_conf *conf, r5_array **out,
			      int *n_out, r5_array **matrix_out)
{
	*out = NULL;
	if (matrix_out)
		*matrix_out = NULL;
	conf = conf ? conf : &r5_cc_defaults;
	r5_cc_mode mode;
	R5_TRY(check_conf(kspace, conf, &mode));
	long coils = kspace->dims[R5_DIM_COIL], nx = kspace->dims[0], dims[R5_DIMS];
	r5_array *copy = NULL, *block = NULL, *result = NULL;
	const r5_array *src = NULL;
	double complex *matrix = NULL;
	int n = 0;
	/* a host volume the device does not hold (input and, at most, as much output): streamed */
	int streamed = streams(ctx, kspace, 2.0 * (double)r5_array_size(kspace) * sizeof(float complex));
	src = kspace;
	r5_status s = streamed ? R5_OK : as_work(ctx, kspace, &copy, &src);
	if (s == R5_OK)
		s = calib_block(ctx, src, conf->calib, &block);
	if (s == R5_OK && mode == R5_CC_SVD) {
		s = svd_matrix(ctx, block, conf, &n, &matrix);
		r5_progress_part part;
		if (s == R5_OK)
			s = r5_coil_mix(ctx, src, matrix, n, r5_progress_part_init(&part, conf->progress, 0.1, 1, NULL),
					"coil compression", &result);
	} else if (s == R5_OK) {
		s = geo_matrices(ctx, block, conf, &n, &matrix);
		r5_dims_copy(dims, kspace->dims);
		dims[R5_DIM_COIL] = n;
		if (s == R5_OK)
			s = streamed ? r5_array_alloc_host(dims, &result) : r5_array_alloc_work(ctx, dims, &result);
		if (s == R5_OK && streamed)
			s = geo_apply_streamed(ctx, src, matrix, n, conf->progress, result);
		else if (s == R5_OK)
			s = geo_apply(ctx, src, matrix, n, conf->progress, result);
	}
	if (s == R5_OK)
		s = to_residency_of(ctx, kspace, &result);
	if (s == R5_OK && matrix_out)
		s = matrix_array(matrix + (mode == R5_CC_SVD ? 0 : (size_t)(coils * n * (nx / 2))), coils, n, matrix_out);
	r5_array_free(copy);
	r5_array_free(block);
	free(matrix);
	if (s != R5_OK) {
		r5_array_free(result);
		return r5_error_context(s, "coil compression (%s)", mode == R5_CC_SVD ? "svd" : "geometric");
	}
	r5_info("coil compression (%s): %ld -> %d channels", mode == R5_CC_SVD ? "svd" : "geometric", coils, n);
	*out = result;
	*n_out = n;
	return R5_OK;
}

r5_status r5_coil_compress(r5_ctx *ctx, r5_array **kspace_inout, int n_virtual, float energy, int *n_out)
{
	r5_cc_conf conf = r5_cc_defaults;
	conf.n_virtual = n_virtual;
	conf.energy = energy;
	r5_array *out = NULL;
	R5_TRY(r5_coil_compress_to(ctx, *kspace_inout, &conf, &out, n_out, NULL));
	r5_array_free(*kspace_inout);
	*kspace_inout = out;
	return R5_OK;
}
