/* Noise prewhitening (noise.h): covariance from the noise scan with the back end's zgemm,
 * Cholesky and triangular inverse on the host in double (C is at most a few hundred), then one
 * coil mixing of all k-space (coil_compress.h: r5_coil_mix). Bandwidth convention and the
 * Gadgetron reference are in noise.h. */
#include "noise.h"

#include "../core/dense.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "coil_compress.h"

r5_status r5_noise_estimate_covariance(r5_ctx *ctx, const r5_array *noise, double complex *psi,
				       const r5_progress *progress)
{
	long samples = noise->dims[0], coils = noise->dims[R5_DIM_COIL];
	if (r5_array_size(noise) != samples * coils || !r5_array_is_contiguous(noise))
		return r5_set_error(R5_EINVAL, "noise covariance: noise array must be [samples, 1, 1, coils], contiguous");
	if (samples < coils || samples < 2)
		return r5_set_error(R5_EINVAL, "noise covariance: %ld noise samples per channel, need at least %ld (one per channel)",
				    samples, coils > 2 ? coils : 2);
	r5_array *work = NULL, *gram = NULL, *gram_host = NULL;
	const r5_array *in = noise;
	r5_status s = R5_OK;
	if (noise->where != r5_ctx_residency(ctx)) {
		s = r5_array_to_work(ctx, noise, &work);
		in = work;
	}
	long gdims[R5_DIMS];
	r5_dims_ones(gdims);
	gdims[0] = coils;
	gdims[1] = coils;
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, gdims, &gram);
	/* G = N^H N: G[i, j] = sum_s conj(n_i(s)) n_j(s) = conj(Psi_ij) (S - 1) */
	long block = R5_PROGRESS_CHUNK_MACS / (coils * coils); /* samples per zgemm */
	block = block < 1024 ? 1024 : block;
	for (long s0 = 0; s0 < samples && s == R5_OK; s0 += block) {
		long ns = s0 + block < samples ? block : samples - s0;
		s = r5_zgemm(ctx, 1, coils, coils, ns, 1.0f, in->data + s0, samples,
			     in->data + s0, samples, s0 ? 1.0f : 0.0f, gram->data, coils);
		if (s == R5_OK)
			s = r5_progress_check(progress, "noise covariance", (double)(s0 + ns) / (double)samples);
	}
	if (s == R5_OK)
		s = r5_array_to_host(ctx, gram, &gram_host);
	if (s == R5_OK)
		for (long i = 0; i < coils * coils; i++)
			psi[i] = conj((double complex)gram_host->data[i]) / (double)(samples - 1);
	r5_array_free(work);
	r5_array_free(gram);
	r5_array_free(gram_host);
	return s == R5_OK ? s : r5_error_context(s, "noise covariance");
}

/* Lower Cholesky factor (column-major) with the failing channel named. */
static r5_status cholesky_lower(int n, const double complex *psi, double complex *lower)
{
	double max_diag = 0;
	for (int j = 0; j < n; j++) {
		double d = creal(psi[j + n * j]);
		if (!isfinite(d))
			return r5_set_error(R5_EINVAL, "noise covariance: channel %d has a non-finite noise variance", j);
		max_diag = d > max_diag ? d : max_diag;
	}
	for (int j = 0; j < n; j++) {
		double var = creal(psi[j + n * j]);
		if (!(var > 1e-12 * max_diag))
			return r5_set_error(R5_EINVAL,
					    "noise covariance is not positive definite: channel %d has no noise (variance %g, "
					    "largest %g) — a dead channel?", j, var, max_diag);
	}
	memcpy(lower, psi, sizeof *lower * (size_t)n * (size_t)n);
	long bad = r5_dense_cholesky(n, lower, 1e-9, 0);
	if (bad >= 0)
		return r5_set_error(R5_EINVAL,
				    "noise covariance is not positive definite: channel %ld is a combination of channels "
				    "0..%ld (a duplicated or dead channel?)", bad, bad - 1);
	for (int j = 1; j < n; j++) /* keep L alone: clear the upper triangle */
		for (int i = 0; i < j; i++)
			lower[i + n * j] = 0;
	return R5_OK;
}

r5_status r5_noise_whitener(int n_coils, const double complex *psi, double complex *w)
{
	if (n_coils < 1)
		return r5_set_error(R5_EINVAL, "noise whitener: %d channels", n_coils);
	size_t n = (size_t)n_coils;
	double complex *lower = malloc(sizeof *lower * n * n);
	if (!lower)
		return r5_set_error(R5_ENOMEM, "noise whitener (%d channels)", n_coils);
	r5_status s = cholesky_lower(n_coils, psi, lower);
	if (s == R5_OK) {
		/* W = L^-1 column by column: L w_j = e_j by forward substitution (w_j is 0 above j) */
		memset(w, 0, sizeof *w * n * n);
		for (int j = 0; j < n_coils; j++) {
			for (int i = j; i < n_coils; i++) {
				double complex sum = i == j ? 1.0 : 0.0;
				for (int k = j; k < i; k++)
					sum -= lower[i + n_coils * k] * w[k + n_coils * j];
				w[i + n_coils * j] = sum / lower[i + n_coils * i];
			}
		}
	}
	free(lower);
	return s;
}

double r5_noise_bandwidth_scale(const r5_scan *scan)
{
	if (!(scan->noise_dwell_us > 0) || !(scan->acq_dwell_us > 0))
		return 1.0;
	double ratio = (double)scan->acq_dwell_us / (double)scan->noise_dwell_us;
	if (scan->readout_oversampling > 1) {
		double bw = scan->header.relative_noise_bw > 0 ? scan->header.relative_noise_bw
							      : R5_NOISE_DEFAULT_RELATIVE_BW;
		ratio *= bw;
	}
	return sqrt(ratio);
}

r5_status r5_noise_whitening_matrices(r5_ctx *ctx, const r5_scan *scan, double complex *w_data,
				      double complex *w_noise, const r5_progress *progress)
{
	if (!scan->noise)
		return r5_set_error(R5_ENOTFOUND, "prewhitening: no noise scan");
	long coils = scan->kspace->dims[R5_DIM_COIL], noise_coils = scan->noise->dims[R5_DIM_COIL];
	if (noise_coils != coils)
		return r5_set_error(R5_EINVAL, "prewhitening: the noise scan has %ld channels, k-space has %ld", noise_coils,
				    coils);
	size_t n = (size_t)coils;
	double complex *psi = malloc(sizeof *psi * n * n);
	if (!psi)
		return r5_set_error(R5_ENOMEM, "prewhitening: noise covariance (%ld channels)", coils);
	r5_status s = r5_noise_estimate_covariance(ctx, scan->noise, psi, progress);
	if (s == R5_OK)
		s = r5_noise_whitener((int)coils, psi, w_data);
	free(psi);
	if (s != R5_OK)
		return r5_error_context(s, "prewhitening");
	if (w_noise)
		memcpy(w_noise, w_data, sizeof *w_data * n * n);
	double scale = r5_noise_bandwidth_scale(scan);
	for (size_t i = 0; i < n * n; i++)
		w_data[i] *= scale;
	r5_info("prewhitening: %ld channels, %ld noise samples, bandwidth scale %.4f (dwell %.3g us noise, %.3g us data)",
		coils, scan->noise->dims[0], scale, scan->noise_dwell_us, scan->acq_dwell_us);
	return R5_OK;
}

/* matrix[c_in + C c_out] = W[c_out, c_in]: the transpose, as r5_coil_mix wants it. */
static void transpose(long n, const double complex *w, double complex *out)
{
	for (long i = 0; i < n; i++)
		for (long j = 0; j < n; j++)
			out[j + n * i] = w[i + n * j];
}

r5_status r5_noise_prewhiten(r5_ctx *ctx, const r5_scan *scan, r5_array *kspace_inout, r5_array **whitening_out,
			     const r5_progress *progress)
{
	if (whitening_out)
		*whitening_out = NULL;
	if (!scan->noise) {
		r5_info("prewhitening skipped: no noise scan");
		return R5_OK;
	}
	long coils = kspace_inout->dims[R5_DIM_COIL];
	if (coils != scan->kspace->dims[R5_DIM_COIL])
		return r5_set_error(R5_EINVAL, "prewhitening: k-space has %ld channels, the scan %ld", coils,
				    scan->kspace->dims[R5_DIM_COIL]);
	size_t n = (size_t)coils;
	double complex *w = malloc(sizeof *w * n * n * 2);
	if (!w)
		return r5_set_error(R5_ENOMEM, "prewhitening (%ld channels)", coils);
	double complex *mix = w + n * n;
	r5_array *white = NULL;
	r5_progress_part part;
	r5_status s = r5_noise_whitening_matrices(ctx, scan, w, NULL, r5_progress_part_init(&part, progress, 0, 0.1, NULL));
	if (s == R5_OK) {
		transpose(coils, w, mix);
		s = r5_coil_mix(ctx, kspace_inout, mix, (int)coils, r5_progress_part_init(&part, progress, 0.1, 0.9, NULL),
				"prewhitening", &white);
	}
	if (s == R5_OK)
		s = r5_array_copy(ctx, kspace_inout, white);
	if (s == R5_OK && whitening_out) {
		long dims[R5_DIMS];
		r5_dims_ones(dims);
		dims[0] = dims[1] = coils;
		s = r5_array_alloc_host(dims, whitening_out);
		for (size_t i = 0; s == R5_OK && i < n * n; i++)
			(*whitening_out)->data[i] = (float complex)w[i];
	}
	r5_array_free(white);
	free(w);
	return s;
}
