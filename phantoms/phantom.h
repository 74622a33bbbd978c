/* Numerical phantom scans written as ISMRMRD HDF5, the same data a scanner sends, plus the
 * ground truth in the same file (image variable "ground_truth" in the dataset group).
 *
 * What is simulated:
 *  - object: Shepp-Logan 2D / 3D with k-space from the closed-form Fourier transform of the
 *    ellipses/ellipsoids (shepp_logan.h) — no inverse crime; or the black-blood vessel-wall
 *    phantom (vessel_wall.h: arteries as cylinders, also closed-form), which adds a "wall_mask"
 *    image (1 in the walls, plaque included; float, [nx, ny, nz]) to the file;
 *  - receive coils: 1..128 coils whose sensitivities are low-order Fourier series, so each
 *    coil's k-space is a weighted sum of shifted analytic spectra (coils.h);
 *  - noise: complex Gaussian with a correlated coil covariance Psi (noise.h), also written as a
 *    noise scan (ISMRMRD_ACQ_IS_NOISE_MEASUREMENT acquisitions, same dwell) before the data;
 *  - sampling: full, uniform R with calibration lines, variable-density Poisson disc
 *    (sampling.h); readout oversampling; oblique geometry.
 *  - the dynamic kind (dynamic.h): a 2D golden-angle radial scan of a beating ring and
 *    contrast-uptake regions, k-space analytic per spoke time, each acquisition with its
 *    trajectory (ISMRMRD traj, cycles per FOV), one "ground_truth" and one "object" image per
 *    frame (repetition = frame), the frame timing as header userParameters (frame_spokes, ...).
 *
 * Conventions (what a reconstruction may rely on):
 *  - Voxel (i, j, k) of the recon matrix N = (nx, ny, nz) sits at
 *      position + (i - nx/2) dx read_dir + (j - ny/2) dy phase_dir [+ (k - nz/2) dz slice_dir]
 *    (mm, LPS), d = fov/N; `position` is the point at index N/2 (the k-space centre convention),
 *    the slice centre in 2D and the volume centre in 3D.
 *  - k-space line ky (0..ny-1; kz likewise) holds spatial frequency (ky - ny/2)/fov_y; a readout
 *    of os*nx samples holds (s - os*nx/2)/(os*fov_x), center_sample = os*nx/2.
 *  - Scaling: k = F(k)/(dx dy [dz] sqrt(os nx ny [nz])) with F the continuous transform, so the
 *    centred unitary inverse FFT (recon/core/fft.h) of the fully sampled k-space, cropped to the
 *    central nx in x, gives the coil images S_c(r) f(r) in intensity units (the phantom's 1.0 is
 *    the skull). The rss of the coil images ≈ the ground truth (Σ|S_c|² ≈ 1 over the object).
 *  - noise_sigma: standard deviation of the complex noise per k-space sample (E|n|² = sigma² on
 *    a coil with level 1) in those k-space units; after the unitary inverse FFT the image noise
 *    has the same standard deviation per voxel.
 *  - Ground truth: the phantom intensity averaged over each voxel (4 x 4 sub-samples in 2D,
 *    2 x 2 x 2 in 3D),
 *    float magnitude, one image per slice (2D) or one 3D image [nx, ny, nz].
 */
#ifndef R5_PHANTOMS_PHANTOM_H
#define R5_PHANTOMS_PHANTOM_H

#include <complex.h>
#include <stdint.h>

#include "../recon/core/status.h"
#include "coils.h"
#include "noise.h"
#include "sampling.h"
#include "shepp_logan.h"
#include "vessel_wall.h"

typedef enum r5_phantom_kind {
	R5_PHANTOM_SHEPP_LOGAN = 0,    /* 2D, one slice */
	R5_PHANTOM_SHEPP_LOGAN_3D = 1, /* 3D, ky-kz phase encoding */
	R5_PHANTOM_VESSEL_WALL = 2,    /* 3D, ky-kz phase encoding, 0.5 mm voxels by default */
	R5_PHANTOM_DYNAMIC = 3,        /* 2D golden-angle radial, motion and contrast (dynamic.h) */
} r5_phantom_kind;

/* Image variable of the vessel-wall phantom's wall mask. */
#define R5_PHANTOM_WALL_MASK_VAR "wall_mask"

struct r5_phantom_params {
	r5_phantom_kind kind;
	int matrix[3];          /* recon matrix nx, ny, nz (nz = 1 for 2D) */
	double fov_mm[3];       /* recon FOV; 2D: fov_mm[2] = slice thickness */
	int n_coils;            /* 1..128 */
	int uniform_coil;       /* 1: one coil of sensitivity 1 (n_coils = 1; coils.h r5_coils_uniform) */
	int along_sequence;     /* 1: matrix, FOV and trajectory are a Pulseq sequence's (seq_phantom.h);
				 * the dynamic kind's own radial constraints do not apply */
	r5_sampling sampling;
	int accel[2];           /* R along ky, kz (uniform); their product (poisson) */
	int calib;              /* width of the fully sampled centre (lines; 3D: calib x calib) */
	double noise_sigma;     /* see above; 0 = no noise (the noise scan is then left out) */
	double noise_correlation; /* neighbour-coil correlation of Psi, [0, 0.9) */
	int n_noise_samples;    /* noise scan length in samples per coil (split into readouts) */
	int oblique_count;      /* 0, 1 or 2 angles used */
	double oblique_deg[2];  /* about the slice axis, then about the (new) read axis */
	double position_mm[3];  /* LPS, slice / volume centre */
	int readout_oversampling; /* >= 1, default 2 */
	uint64_t seed;
	double tr_ms, te_ms, flip_deg;
	double field_T;         /* header only */
	/* the dynamic kind (dynamic.h); ignored by the others */
	int n_frames;           /* frames of frame_spokes spokes: the scan has their product */
	int frame_spokes;       /* spokes per frame of the truth (a header userParameter) */
	int per_frame_motion;   /* 0: object at each spoke's time; 1: at each frame's middle */
	double heart_period_s;  /* the beating ring's period */
};

extern const struct r5_phantom_params r5_phantom_defaults_2d;
extern const struct r5_phantom_params r5_phantom_defaults_3d;
extern const struct r5_phantom_params r5_phantom_defaults_vessel_wall; /* 128 x 128 x 64, 0.5 mm */
/* 128 x 128, 2 mm, 8 coils, 24 frames x 21 spokes, TR 4 ms, readout x2, noise 0.01 */
extern const struct r5_phantom_params r5_phantom_defaults_dynamic;

/* 1 for the 3D kinds (ky-kz encoding), 0 for 2D. */
int r5_phantom_is_3d(const struct r5_phantom_params *p);

/* The kind's object for the parameters' FOV (Shepp-Logan or vessel-wall shapes). */
r5_status r5_phantom_object(const struct r5_phantom_params *p, r5_shape_set *object);

/* What was written. */
struct r5_phantom_summary {
	long n_lines_total, n_lines_sampled, n_calib_lines, n_noise_acquisitions;
	double sampled_fraction;
	double rss_min, rss_max; /* Σ|S_c|² range over the object (coil normalisation quality) */
	double seconds;
};

/* Checks every field; the message names the first bad one. */
r5_status r5_phantom_check(const struct r5_phantom_params *p);

/* Scan geometry: direction cosines (LPS) of read, phase and slice after the oblique rotations
 * of an axial base (read = +x, phase = +y, slice = +z). Orthonormal and right-handed. */
void r5_phantom_directions(const struct r5_phantom_params *p, float read[3], float phase[3], float slice[3]);

/* The analytic coil k-space on the full Cartesian grid, no noise: out holds
 * [os*nx, ny, nz, n_coils] (x fastest), scaled as above. For tests and small matrices. */
r5_status r5_phantom_kspace(const struct r5_phantom_params *p, const r5_shape_set *object,
			    const r5_coil_model *coils, float complex *out);

/* Ground truth [nx, ny, nz] (voxel averages of the object, see above). */
r5_status r5_phantom_ground_truth(const struct r5_phantom_params *p, const r5_shape_set *object, float *out);

/* The object band-limited to the encoded k-space extent [nx, ny, nz] (magnitude): the image an
 * ideal reconstruction of fully sampled noise-free data gives. Written as "ground_truth";
 * the voxel averages above are written as "object". */
r5_status r5_phantom_bandlimited(const struct r5_phantom_params *p, const r5_shape_set *object, float *out);

/* Builds object, coils, mask and noise, and writes the ISMRMRD file `path` (replaced if it
 * exists): header, noise scan, sampled acquisitions, then the ground-truth image. */
r5_status r5_phantom_write(const struct r5_phantom_params *p, const char *path, struct r5_phantom_summary *summary);

/* The ISMRMRD XML header for these parameters (malloc'd, caller frees). */
r5_status r5_phantom_header_xml(const struct r5_phantom_params *p, char **xml);

/* An encoding the parameters do not imply: a Pulseq sequence's (seq_phantom.h). */
struct r5_phantom_encoding {
	int encoded[3], recon[3];
	double encoded_fov_mm[3], recon_fov_mm[3];
	int limits[3][3];          /* kspace_encoding_step_0..2: minimum, maximum, center */
	int n_slices;
	const char *trajectory;    /* ISMRMRD trajectoryType: cartesian, epi, radial, other */
	const char *sequence_name; /* [A-Za-z0-9_.-] only (it goes into the XML as is); NULL: none */
};
/* The same header with `given` in place of the parameters' encoding (NULL: theirs). */
r5_status r5_phantom_header_xml_encoding(const struct r5_phantom_params *p, const struct r5_phantom_encoding *given,
					 char **xml);

/* "shepp-logan" / "shepp-logan-3d" / "vessel-wall" / "dynamic" */
const char *r5_phantom_kind_name(r5_phantom_kind kind);
r5_status r5_phantom_kind_parse(const char *name, r5_phantom_kind *kind);

#endif
