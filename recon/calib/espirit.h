/* ESPIRiT coil sensitivity maps (Uecker et al., "ESPIRiT — an eigenvalue approach to
 * autocalibrating parallel MRI: where SENSE meets GRAPPA", MRM 71:990-1001, 2014).
 *
 *   1. calibration matrix: every kernel-sized patch of the ACS block, all coils, as a row
 *   2. its right singular vectors: the Gram A^H A built from summed-area tables of coil-pair
 *      products (never forming A), then its signal subspace by randomized subspace iteration
 *      (r5_herm_eig_signal; below n = 400, or when that does not converge, Householder + QL
 *      and inverse iteration for the kept vectors: herm_eig.h, host double); kept: singular
 *      value >= threshold x the largest (the signal subspace V)
 *   3. the image-space operator G(r) = 1/K sum_{a,b} P_ab e^{i 2 pi r.(a-b)}, P = V V^H, built
 *      from the kernel-offset sums G_delta and sinc-interpolated to the image grid; the readout
 *      direction is transformed first (explicit DFT over the 2k-1 offsets), then slabs of
 *      readout positions are transformed over y-z: 3D is decoupled along the readout, 2D is
 *      the one-slab case
 *   4. per pixel, the n_maps leading eigenvectors of the C x C matrix G(r), by the back end's
 *      zheev_top_batched: one double-precision routine on both back ends (eig_math.h), so a CPU
 *      and a GPU context give the same maps and crop mask; map set m is the m-th eigenvector,
 *      coil 0 real >= 0, zero where its eigenvalue is below `crop`.
 * Defaults follow BART's ecalib (src/calib/calib.c) except the threshold (see espirit.c). */
#ifndef R5_CALIB_ESPIRIT_H
#define R5_CALIB_ESPIRIT_H

#include "../core/array.h"
#include "../core/progress.h"

typedef struct r5_espirit_conf {
	int kernel;      /* kernel width in each calibrated dimension (6) */
	long calib;      /* cap on the ACS width per dimension, 0: all (24) */
	float threshold; /* singular value threshold relative to the largest (0.001 .. 0.02) */
	float crop;      /* eigenvalue mask threshold (0.8) */
	int n_maps;      /* 1 or 2 */
	/* stop hook (NULL: never stop), checked between chunks of every step (Gram tables by coil
	 * pairs, the eigen-decomposition, P by columns, slabs and per-pixel chunks); reports stage
	 * "espirit" with fractions 0..1 of this call */
	const r5_progress *progress;
	/* 1: the maps are made in host memory, each slab of readout positions downloaded as it is
	 * done, so the volume's maps are never in work memory at once (a device context whose
	 * memory does not hold them: the streamed cs path, sense.c); 0: where ctx computes */
	int host_maps;
} r5_espirit_conf;

extern const r5_espirit_conf r5_espirit_defaults;

/* acs: host or work [cx, cy, cz, coil] fully sampled calibration k-space (centred block).
 * img_dims: the image grid [nx, ny, nz]. maps: new work array [nx, ny, nz, coil, n_maps] (a host
 * array with conf->host_maps).
 * eigenvalues: optional new work array [nx, ny, nz, 1, n_maps] (real parts). Errors: the ACS
 * block smaller than the kernel, more than 64 coils, no signal; the hook's status when it says
 * stop ("ESPIRiT maps: stage ...: cancelled by the caller"), with nothing allocated left. */
r5_status r5_espirit_maps(r5_ctx *ctx, const r5_espirit_conf *conf, const r5_array *acs, const long img_dims[3],
			  r5_array **maps, r5_array **eigenvalues);

/* The calibration step alone (steps 1-2), exposed for tests: number of kernels kept and the
 * normalised singular values (n_values = kernel^d x coils, may be NULL; with the randomized
 * path, values beyond its block — all below the threshold — are 0). */
r5_status r5_espirit_calibrate(r5_ctx *ctx, const r5_espirit_conf *conf, const r5_array *acs, int *n_kept,
			       double **singular_values, int *n_values);

#endif
