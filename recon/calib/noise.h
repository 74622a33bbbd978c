/* Noise prewhitening: the coil noise covariance Psi from the ISMRMRD noise scan, its Cholesky
 * factor Psi = L L^H, and the whitening W = L^-1 applied to all k-space as a coil mixing, so
 * that the noise of the data is white with unit variance per channel (Pruessmann et al., MRM
 * 46:638, 2001, appendix; Kellman & McVeigh, "Image reconstruction in SNR units", MRM 54:1439,
 * 2005). Every later step (ESPIRiT, SENSE, GRAPPA g-factors, coil compression) then assumes
 * white noise.
 *
 * Bandwidth: the noise scan is sampled at noise_dwell_us with the receiver's full filter
 * response, the imaging data at acq_dwell_us (recon5t's dwell after readout-oversampling
 * removal, r5_scan). Noise variance per sample goes as 1/dwell; and when the readout was
 * oversampled and cropped to the flat central half of the filter, the data lack the filter
 * roll-off that the noise scan's variance includes — the header's relativeReceiverNoiseBandwidth
 * b (0.793 when absent, as Gadgetron assumes). The data whitener is therefore
 *     W_data = s L^-1,  s = sqrt(acq_dwell_us / noise_dwell_us * b)   (oversampled readout)
 *                       s = sqrt(acq_dwell_us / noise_dwell_us)       (otherwise)
 * For the 2x oversampled data Gadgetron is built for this is exactly its
 * noise_bw_scale_factor = sqrt(2 * acquisition_dwell_time_us / noise_dwell_time_us *
 * receiver_noise_bandwidth) with the raw (oversampled) acquisition dwell
 * (gadgetron/gadgetron, gadgets/mri_core/NoiseAdjustGadget.cpp), which multiplies the
 * prewhitening matrix inv(chol(Psi / (n - 1))) the same way. */
#ifndef R5_CALIB_NOISE_H
#define R5_CALIB_NOISE_H

#include <complex.h>

#include "../core/array.h"
#include "../core/progress.h"

/* Relative receiver noise bandwidth assumed when the header has none (Gadgetron's default). */
#define R5_NOISE_DEFAULT_RELATIVE_BW 0.793

/* psi[i + C j] = E[n_i conj(n_j)] = sum_s n_i(s) conj(n_j(s)) / (S - 1) from a noise array
 * [S samples, 1, 1, C] (host or work), through the back end's zgemm over blocks of samples,
 * with a check of progress (NULL: never stop; stage "noise covariance") after each. Needs S >= C. */
r5_status r5_noise_estimate_covariance(r5_ctx *ctx, const r5_array *noise, double complex *psi,
				       const r5_progress *progress);

/* W = L^-1 (lower triangular, column-major w[i + C j]) with psi = L L^H. A channel with no noise
 * or one that is a combination of the channels before it (dead, duplicated) is an R5_EINVAL
 * naming the channel. */
r5_status r5_noise_whitener(int n_coils, const double complex *psi, double complex *w);

/* s above from the dwell times (us), the readout oversampling factor and the header's relative
 * receiver noise bandwidth (<= 0: R5_NOISE_DEFAULT_RELATIVE_BW); 1 when a dwell time is unknown.
 * Applying it to a scan (and prewhitening one) is pipeline work: recon/pipeline/coil_prep.h. */
double r5_noise_bandwidth_scale_of(double noise_dwell_us, double acq_dwell_us, int readout_oversampling,
				   double relative_noise_bw);

#endif
