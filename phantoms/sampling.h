/* Cartesian sampling patterns over the phase-encode plane (ky x kz; kz = 1 in 2D), with the
 * ISMRMRD meaning of each line: imaging, calibration, or both.
 *   full     every line.
 *   uniform  every R_y-th ky and R_z-th kz line, the grid passing through the k-space centre
 *            (index n/2), plus a fully sampled calib x calib (2D: calib) centre block.
 *   poisson  3D: variable-density Poisson disc in ky-kz (Bridson's dart throwing with an
 *            exclusion radius that grows linearly with the distance from the centre; the radius
 *            scale is bisected until the count matches n/(R_y R_z)); 2D: variable-density random
 *            ky lines (probability falling off as (1 - |ky|/kmax)^2, scaled to the exact count).
 *            Both keep the calibration block fully sampled; a line in it is flagged
 *            calibration-and-imaging.
 * Bridson, "Fast Poisson disk sampling in arbitrary dimensions", SIGGRAPH sketches 2007; Lustig,
 * Donoho, Pauly, "Sparse MRI", MRM 58, 2007 (variable density). */
#ifndef R5_PHANTOMS_SAMPLING_H
#define R5_PHANTOMS_SAMPLING_H

#include <stdint.h>

#include "../recon/core/status.h"

typedef enum r5_sampling {
	R5_SAMPLING_FULL = 0,
	R5_SAMPLING_UNIFORM = 1,
	R5_SAMPLING_POISSON = 2,
} r5_sampling;

/* mask values (bit flags) */
enum {
	R5_MASK_IMAGING = 1, /* line is image data */
	R5_MASK_CALIB = 2,   /* line is in the calibration region */
};

/* mask: ny * nz bytes, index iy + ny * iz. accel: R_y, R_z (>= 1; the product is the
 * Poisson-disc acceleration). calib: width of the fully sampled centre (0: none; clamped to the
 * matrix). Returns the number of sampled lines in *n_sampled. */
r5_status r5_sampling_mask(r5_sampling kind, int ny, int nz, const int accel[2], int calib, uint64_t seed,
			   unsigned char *mask, long *n_sampled);

/* The variable-density Poisson-disc mask alone (`recon5t mask --poisson`; BART's `poisson -Y -Z
 * -v -C calib` does the same job): accel any real R >= 1, met within a few % (the radius scale
 * is bisected and the closest count kept); a calib x calib centre (2D: calib lines) fully
 * sampled; the same seed gives the same mask on every machine (xoshiro256** and only exact
 * IEEE operations). Refuses an empty matrix, R < 1 or not finite, a calibration region larger
 * than the matrix or than the samples R allows. */
r5_status r5_sampling_poisson(int ny, int nz, double accel, int calib, uint64_t seed, unsigned char *mask,
			      long *n_sampled);

const char *r5_sampling_name(r5_sampling kind);
/* "full", "uniform", "poisson" -> kind; R5_EINVAL otherwise. */
r5_status r5_sampling_parse(const char *name, r5_sampling *kind);

#endif
