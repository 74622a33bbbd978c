/* Coil preparation on an r5_scan (coil_prep.h). */
#include "coil_prep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/log.h"

double r5_noise_bandwidth_scale(const r5_scan *scan)
{
	return r5_noise_bandwidth_scale_of(scan->noise_dwell_us, scan->acq_dwell_us, scan->readout_oversampling,
					   scan->header.relative_noise_bw);
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

r5_status r5_calib_region_find(const r5_scan *scan, long calib[3])
{
	if (!scan || !scan->kspace || !scan->sampled)
		return r5_set_error(R5_EINVAL, "calibration region: scan has no k-space or sampling mask");
	long ny = scan->mask_dims[R5_DIM_Y], nz = scan->mask_dims[R5_DIM_Z];
	/* the first frame: mask strides are contiguous over mask_dims with x and coil of size 1 */
	long yz[2];
	r5_status s = r5_calib_region_find_mask(scan->sampled, ny, nz, yz);
	if (s != R5_OK)
		return s;
	calib[0] = scan->kspace->dims[R5_DIM_X];
	calib[1] = yz[0];
	calib[2] = yz[1];
	return R5_OK;
}

/* --- the step before calibration in r5_recon_run --- */

static double seconds_now(r5_ctx *ctx)
{
	r5_ctx_sync(ctx);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* work->kspace / work->noise <- fresh (freeing the old one when it is not the scan's) */
static void replace(r5_array **slot, r5_array *fresh, const r5_array *original)
{
	if (*slot != original)
		r5_array_free(*slot);
	*slot = fresh;
}

static r5_status prewhiten_work(r5_ctx *ctx, const r5_scan *scan, const r5_progress *progress, r5_scan *work)
{
	long coils = scan->kspace->dims[R5_DIM_COIL];
	size_t cc = (size_t)(coils * coils);
	double complex *w = malloc(sizeof *w * cc * 4);
	if (!w)
		return r5_set_error(R5_ENOMEM, "prewhitening (%ld channels)", coils);
	double complex *w_noise = w + cc, *mix = w + 2 * cc, *mix_noise = w + 3 * cc;
	r5_array *kspace = NULL, *noise = NULL;
	r5_progress_part part;
	r5_status s = r5_noise_whitening_matrices(ctx, scan, w, w_noise, r5_progress_part_init(&part, progress, 0, 0.1, NULL));
	for (long i = 0; s == R5_OK && i < coils; i++)
		for (long j = 0; j < coils; j++) {
			mix[j + coils * i] = w[i + coils * j];
			mix_noise[j + coils * i] = w_noise[i + coils * j];
		}
	if (s == R5_OK)
		s = r5_coil_mix(ctx, scan->kspace, mix, (int)coils, r5_progress_part_init(&part, progress, 0.1, 0.95, NULL),
				"prewhitening", &kspace);
	if (s == R5_OK)
		s = r5_coil_mix(ctx, scan->noise, mix_noise, (int)coils, r5_progress_part_init(&part, progress, 0.95, 1, NULL),
				"prewhitening", &noise);
	free(w);
	if (s != R5_OK) {
		r5_array_free(kspace);
		return s;
	}
	replace(&work->kspace, kspace, scan->kspace);
	replace(&work->noise, noise, scan->noise);
	return R5_OK;
}

static r5_status compress_work(r5_ctx *ctx, const r5_scan *scan, const r5_cc_conf *cc, const r5_progress *progress,
			       r5_scan *work)
{
	r5_array *kspace = NULL, *matrix = NULL, *noise = NULL;
	int n = 0;
	r5_cc_conf conf = *cc;
	conf.progress = progress;
	long channels = work->kspace->dims[R5_DIM_COIL];
	r5_status compressed = r5_coil_compress_to(ctx, work->kspace, &conf, &kspace, &n, &matrix);
	/* the parameter's name in front, so that a client sees which value to change */
	if (compressed == R5_EINVAL && cc->n_virtual > channels)
		return r5_error_context(compressed, "coils_virtual %d exceeds the scan's %ld receive channels", cc->n_virtual,
					channels);
	R5_TRY(compressed);
	long coils = matrix->dims[0];
	double complex *m = malloc(sizeof *m * (size_t)(coils * n));
	r5_status s = m ? R5_OK : r5_set_error(R5_ENOMEM, "coil compression of the noise scan");
	for (long i = 0; s == R5_OK && i < coils * n; i++)
		m[i] = matrix->data[i];
	if (s == R5_OK && work->noise)
		s = r5_coil_mix(ctx, work->noise, m, n, progress, "coil compression", &noise);
	free(m);
	r5_array_free(matrix);
	if (s != R5_OK) {
		r5_array_free(kspace);
		return s;
	}
	replace(&work->kspace, kspace, scan->kspace);
	if (work->noise)
		replace(&work->noise, noise, scan->noise);
	work->header.n_channels = n;
	return R5_OK;
}

r5_status r5_coils_prepare(r5_ctx *ctx, const r5_scan *scan, int prewhiten, const r5_cc_conf *cc,
			   const r5_progress *progress, r5_scan *work, double seconds[2])
{
	*work = *scan;
	seconds[0] = seconds[1] = -1;
	r5_status s = R5_OK;
	int compress = cc && (cc->n_virtual > 0 || cc->energy > 0);
	r5_progress_part part;
	if (prewhiten && !scan->noise)
		r5_info("prewhitening skipped: no noise scan");
	if (prewhiten && scan->noise) {
		double t0 = seconds_now(ctx);
		s = prewhiten_work(ctx, scan, r5_progress_part_init(&part, progress, 0, compress ? 0.5 : 1, "prewhitening"),
				   work);
		seconds[0] = seconds_now(ctx) - t0;
	}
	if (s == R5_OK && compress) {
		double t0 = seconds_now(ctx);
		s = compress_work(ctx, scan, cc, r5_progress_part_init(&part, progress, seconds[0] >= 0 ? 0.5 : 0, 1,
									  "coil compression"), work);
		seconds[1] = seconds_now(ctx) - t0;
	}
	if (s != R5_OK) {
		r5_coils_release(work, scan);
		*work = *scan;
	}
	return s;
}

void r5_coils_release(r5_scan *work, const r5_scan *scan)
{
	if (work->kspace != scan->kspace)
		r5_array_free(work->kspace);
	if (work->noise != scan->noise)
		r5_array_free(work->noise);
	work->kspace = scan->kspace;
	work->noise = scan->noise;
}
