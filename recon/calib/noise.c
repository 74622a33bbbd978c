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

double r5_noise_bandwidth_scale_of(double noise_dwell_us, double acq_dwell_us, int readout_oversampling,
				   double relative_noise_bw)
{
	if (!(noise_dwell_us > 0) || !(acq_dwell_us > 0))
		return 1.0;
	double ratio = acq_dwell_us / noise_dwell_us;
	if (readout_oversampling > 1)
		ratio *= relative_noise_bw > 0 ? relative_noise_bw : R5_NOISE_DEFAULT_RELATIVE_BW;
	return sqrt(ratio);
}
