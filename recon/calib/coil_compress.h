/* Coil compression: fewer, "virtual" coils that keep most of the signal, so that calibration,
 * SENSE and GRAPPA after it run on N instead of C channels.
 *
 *   svd        one C x N matrix for all of k-space: the N dominant eigenvectors of the coil
 *              covariance of the central (calibration) block (Huang et al., MRI 26:133, 2008;
 *              Buehrer et al., MRM 57:1131, 2007 — PCA of the channels).
 *   geometric  one matrix per readout position x (Zhang, Pauly, Vasanawala, Lustig, "Coil
 *              compression for accelerated imaging with Cartesian sampling", MRM 69:571, 2013):
 *              inverse FFT along the fully sampled readout, per-x SVD of the calibration block,
 *              then the alignment step — each x's matrix is rotated within its subspace to be
 *              as close as possible (orthogonal Procrustes) to its neighbour's, so that the
 *              virtual-coil sensitivities stay smooth along x — applied per x and FFT'd back.
 *              Alignment starts at the centre x (highest SNR) and proceeds outwards.
 *   auto       geometric for 3D k-space (nz > 1), svd otherwise.
 *
 * Virtual coil n = sum_c x_c V[c, n], V with orthonormal columns: white noise stays white.
 * Every mixing of all k-space is one back-end zgemm per frame ([voxels x C] times [C x N]);
 * the small eigenproblems run on the host in double (herm_eig.h). */
#ifndef R5_CALIB_COIL_COMPRESS_H
#define R5_CALIB_COIL_COMPRESS_H

#include <complex.h>

#include "../core/array.h"
#include "../core/progress.h"

typedef enum r5_cc_mode { R5_CC_AUTO = 0, R5_CC_SVD = 1, R5_CC_GEOMETRIC = 2 } r5_cc_mode;

typedef struct r5_cc_conf {
	int n_virtual;   /* > 0: keep exactly this many virtual coils */
	float energy;    /* (0, 1]: else keep the fewest that hold this fraction of the calibration energy */
	r5_cc_mode mode;
	long calib[2];   /* ky, kz widths of the central block the covariance comes from; 0: all */
	/* stop hook (NULL: never stop): checked between chunks of the mixing (blocks of voxels;
	 * geometric: groups of coils and of readout positions), stage "coil compression" */
	const r5_progress *progress;
} r5_cc_conf;

/* n_virtual 0, energy 0.95, auto, calibration block 24 x 24 (BART's cc default). */
extern const r5_cc_conf r5_cc_defaults;

/* "auto" | "svd" | "geometric" */
r5_status r5_cc_mode_parse(const char *name, r5_cc_mode *mode);

/* out[.., c_out, ..] = sum_c in[.., c, ..] matrix[c + C * c_out]: a coil mixing of an array
 * [x, y, z, coil, ...] (contiguous) by a host C x n_out column-major matrix, zgemms over blocks
 * of voxels of each frame (about R5_PROGRESS_CHUNK_MACS each) with a check of progress (NULL:
 * never stop; stage `stage`) after each. *out is new, with n_out coils, in the residency of
 * `in`; nothing is left allocated when the hook stops it. A host `in` on a device context whose
 * input and output together take more than half of its free memory is streamed: each block is
 * uploaded, mixed and downloaded into the host output (the same zgemm blocks, so the same
 * values), and the device never holds the whole array. */
r5_status r5_coil_mix(r5_ctx *ctx, const r5_array *in, const double complex *matrix, int n_out,
		      const r5_progress *progress, const char *stage, r5_array **out);

/* Compresses kspace [x, y, z, coil, ...] (host or work) into *out (new, residency of kspace),
 * n_out virtual coils. matrix_out (optional): a host [C, n_out] array of the compression
 * matrix (geometric: the centre readout position's, e.g. to compress white noise alike).
 * Errors: "N virtual coils requested but the scan has C channels", bad energy. */
r5_status r5_coil_compress_to(r5_ctx *ctx, const r5_array *kspace, const r5_cc_conf *conf, r5_array **out,
			      int *n_out, r5_array **matrix_out);

/* The same with defaults for the rest: *kspace_inout is replaced by the compressed array and the
 * array it pointed to is freed (so pass an array you own). */
r5_status r5_coil_compress(r5_ctx *ctx, r5_array **kspace_inout, int n_virtual, float energy, int *n_out);

#endif
