/* r5_scan: one measurement as the reconstruction sees it — header, k-space sorted by encode
 * steps, which lines were sampled (and which were calibration), per-slice geometry, and noise
 * scans kept apart. Built acquisition by acquisition (the service sorts acquisitions into
 * k-space as they arrive) or from an ISMRMRD HDF5 file / a BART .cfl, through the same builder.
 *
 * k-space: host array [x, y, z, coil, 1, contrast(5), ..., repetition(10), phase(11), ...,
 * slice(13), average(14)] with x the encoded readout after oversampling removal (encoded
 * matrix x), y/z the encoded matrix; a line whose k1 counter is c lands at row
 * c + (ny/2 - k1.center) so that k-space centre sits at ny/2 (zero-filled partial Fourier).
 * Unsampled points are 0.
 *
 * Readout trajectories (ramp-sampled EPI, any line sampled at non-uniform k0): an imaging
 * acquisition of a Cartesian or epi header (or one without a trajectory) with
 * trajectory_dimensions 1 carries traj[j] = k0 of sample j in cycles per FOV of the encoded x
 * (the grid points are the integers -N0/2 .. N0/2-1, N0 = encodedSpace x), samples in time order.
 * Its kept samples (after discard_pre/post) are regridded onto those N0 points
 * (recon/io/readout_grid.h: regularised least squares on a line band-limited by the FOV, 2 N0
 * voxels across it so that the ends of k-space do not wrap onto each other; exact for samples on
 * the grid, 5e-5 image NRMSE on the Pulseq ramp-sampled EPI phantom), per coil, and the line is
 * then placed by its counters as any Cartesian line — readout oversampling removal included when
 * the header says the encoded x is 2x oversampled. The reverse flag and center_sample are not
 * used (traj says where every sample is), and the sample count says nothing about oversampling.
 * Lines with and without traj may be mixed; each is taken on its own. Refused (R5_EINVAL, naming
 * the acquisition): no traj array, no encodedSpace x, fewer than N0/2 or more than 8 N0 kept
 * samples (R5_ERANGE beyond 4096: the matrix costs M^3), a position that is not finite or outside
 * [-N0/2 - 2, N0/2 + 2], trajectory_dimensions 1 under a non-Cartesian header trajectory;
 * R5_ENOMEM when 4 position patterns' matrices (N0 x samples, complex double) and the work of
 * computing one exceed the k-space budget. trajectory_dimensions >= 2 keeps its meaning below.
 *
 * Non-Cartesian scans (a header trajectory other than cartesian or epi, or imaging acquisitions
 * with trajectory_dimensions >= 2): every imaging acquisition is a spoke, kept in arrival order
 * (their order in time, which defines frames; counters other than slice are not used): kspace is
 * [1, n_read, n_spokes, coils] and traj [3, n_read, n_spokes] (complex, real parts the
 * coordinates in cycles per FOV of the encoded space, imaginary parts 0; k2 = 0 for a 2D
 * trajectory) — BART's layouts, which recon/linop/nufft.h takes. All the samples a spoke kept
 * after discard_pre/post are stored (an oversampled readout stays oversampled: 2x the samples at
 * half the k-spacing; readout_oversampling says 2 when n_read is twice the encoded x), reverse
 * flags and center_sample are not applied (the trajectory says where each sample is). The image
 * is the encodedSpace matrix. mask_dims are all 1 and sampled = imaging = {1} (one frame of
 * data). Refused (R5_EINVAL, naming the acquisition): a non-Cartesian header without traj (and
 * without a trajectory it describes, below: "trajectory missing", saying why), traj in some
 * spokes and not others, trajectory_dimensions not 2 or 3 or changing, a coordinate outside [-N_d/2, N_d/2] of the
 * encoded matrix (N_d = 1 along a dimension of size 1), spokes of different lengths, a scan that
 * switches between Cartesian and not; a slice index other than 0 is R5_ENOTSUP (one slice per
 * non-Cartesian scan for now), and so is a 2D trajectory in a 3D encoded matrix (stack of
 * stars).
 *
 * Trajectories from the header: when the first imaging acquisition carries no traj and the
 * header's encoding/trajectory is ISMRMRD's radial or goldenangle, every spoke's trajectory is
 * computed (2D, the 2D kinds of recon/linop/traj.h: the same numbers r5_traj_radial writes, through
 * recon/core/radial_math.h) from encoding/trajectoryDescription:
 *   identifier radial_golden_angle (or golden_angle, goldenangle), or no trajectoryDescription under
 *     trajectory goldenangle: golden angle, pi / phi = 111.246 degrees per spoke;
 *   radial_tiny_golden_angle with userParameterLong tiny_golden_index N >= 1: pi / (phi + N - 1);
 *   radial_uniform (radial_uniform_360): a set of S spokes pi / S (2 pi / S) apart, acquired again
 *     and again (spoke s has the angle of s mod S), S from userParameterLong spokes (or
 *     number_of_spokes, num_spokes, projections), else encodingLimits/kspace_encoding_step_1;
 *   radial: as radial_uniform, or, with userParameterDouble angle_increment_deg (or
 *     angle_increment_rad), the kind that increment is (golden, tiny golden N = 2..64, 180 / S
 *     degrees) to 1e-6 rad; an increment given with another identifier must agree with it.
 * Spoke s is the s-th spoke in arrival order (0 first, noise and skipped acquisitions not
 * counted), as Gadgetron's golden-ratio radial gadgets count profiles (their trajectory comes
 * from a gadget property, mode, never from the header; kspace_encode_step_1 is not used here). Its
 * kept samples (after discard_pre/post) span the encoded x: sample i at (i - n_read/2) N_x/n_read
 * cycles per FOV along (sin a, cos a) — BART's `traj -r -c` convention, N_x = encodedSpace x, so
 * 2N_x samples are a 2x oversampled readout; center_sample, when set, must be the middle kept
 * sample (R5_ENOTSUP otherwise: an asymmetric echo needs traj), and the encoded matrix must be
 * square (R5_ENOTSUP: a spoke reaching N_x/2 along y would leave a narrower y range). A spoke that carries traj after
 * header-computed ones is refused. Any other header (a bare radial, spiral, an unknown
 * identifier such as Gadgetron's spiral HargreavesVDS2000, an increment that is no kind) stays
 * "trajectory missing". The acquisitions' traj, when they carry one, always wins. */
#ifndef R5_IO_SCAN_H
#define R5_IO_SCAN_H

#include <ismrmrd/ismrmrd.h>

#include "../core/array.h"
#include "header.h"

typedef struct r5_slice_geometry {
	float position[3]; /* mm, LPS, centre of the excited volume (ISMRMRD convention) */
	float read_dir[3], phase_dir[3], slice_dir[3];
	float table_position[3];
	int present;
} r5_slice_geometry;

typedef struct r5_scan {
	r5_header header;
	r5_array *kspace; /* host, see above */
	r5_array *traj;   /* host [3, n_read, n_spokes] for a non-Cartesian scan, NULL for Cartesian */
	/* sampled[i]: 1 when line i was acquired; index over the k-space dims with x and coil set to
	 * 1 (contiguous strides of those dims). calib[i]: 1 when it was flagged a calibration line
	 * (ISMRMRD_ACQ_IS_PARALLEL_CALIBRATION[_AND_IMAGING]); imaging[i]: 1 when it is image data
	 * (not calibration-only). */
	unsigned char *sampled, *calib, *imaging;
	long mask_dims[R5_DIMS];
	r5_slice_geometry *geometry; /* one per slice index */
	long n_slices;
	r5_array *noise;      /* host [samples, coils] (dims 0 and 3), NULL when no noise scan came */
	float noise_dwell_us; /* sample time of the noise scan */
	float acq_dwell_us;   /* sample time of the imaging acquisitions (after oversampling removal) */
	long n_acquisitions, n_noise_acquisitions;
	int readout_oversampling; /* 2 when the readout was acquired oversampled and cropped */
	/* Set only on the working copy r5_recon_run hands a pipeline: the coil maps' calibration
	 * made for this run (recon/pipeline/calibration.h), NULL elsewhere; never owned here. */
	const struct r5_calibration *calibration;
} r5_scan;

typedef struct r5_scan_limits {
	long max_kspace_bytes; /* 0: R5_ARRAY_MAX_BYTES */
	long max_header_bytes; /* 0: R5_HEADER_MAX_BYTES_DEFAULT */
} r5_scan_limits;

typedef struct r5_scan_builder r5_scan_builder;

/* Parses the XML header, checks the sizes against the limits (R5_ENOMEM with "matrix ... needs
 * N GiB, budget M GiB") and allocates k-space. */
r5_status r5_scan_builder_create(const char *xml, size_t xml_length, const r5_scan_limits *limits,
				 r5_scan_builder **out);
/* Adds one acquisition: data holds active_channels x number_of_samples complex values, channel
 * major (ISMRMRD layout); traj may be NULL. Checks channels, samples and counters against the
 * header, naming the acquisition by its scan_counter in any error. Noise scans are kept apart. */
r5_status r5_scan_builder_add(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
			      const float *traj);
long r5_scan_builder_count(const r5_scan_builder *b);
/* The scan as far as it is built (valid until the next add, finish or destroy; read it only
 * between adds): header, k-space (NULL before the first imaging acquisition; unsampled points
 * 0), masks, geometry. Its noise is not gathered yet: r5_scan_builder_noise. A non-Cartesian
 * scan's kspace and traj stay NULL until finish: its spokes are read with r5_scan_builder_spokes. */
const r5_scan *r5_scan_builder_peek(const r5_scan_builder *b);
/* A new host array [samples, coils] of the noise scans so far (as finish will gather them);
 * *out NULL when none came. */
r5_status r5_scan_builder_noise(const r5_scan_builder *b, r5_array **out);
/* R5_OK when the lines that came are in proportion to the grid the header implies (finish
 * refuses a grid more than 256 times the lines, with the message it would give). */
r5_status r5_scan_builder_check_proportion(const r5_scan_builder *b);
/* The parsed header (valid until finish or destroy). */
const r5_header *r5_scan_builder_header(const r5_scan_builder *b);
/* Bytes the builder holds now: the k-space pages the lines that came have touched (the grid is
 * allocated zeroed, so untouched pages cost nothing), noise scans, masks, line buffers. The
 * service reserves memory as this grows. */
long r5_scan_builder_bytes(const r5_scan_builder *b);
/* Non-Cartesian scans: 1 once the first spoke has made it one. The spokes that came (released
 * ones included; n_read and coils as they are; 0 for a Cartesian scan), and a copy of spokes first .. first + n - 1: samples
 * into a host array [1, n_read, n, coils] (NULL: not wanted), coordinates into coords (3 n_read n
 * floats, cycles per FOV as given; NULL: not wanted). For the real-time path, which grids spokes
 * as they arrive. */
int r5_scan_builder_is_noncartesian(const r5_scan_builder *b);
long r5_scan_builder_spoke_count(const r5_scan_builder *b, long *n_read, long *coils);
r5_status r5_scan_builder_spokes(const r5_scan_builder *b, long first, long n, r5_array *samples, float *coords);
/* Bounded memory for long (real-time) scans: spokes 0 .. before - 1 are dropped from memory
 * (before beyond the spokes that came: all of them; a Cartesian scan, or spokes already
 * released: nothing happens). Their count and numbers stay — r5_scan_builder_spoke_count still
 * counts them and later spokes keep their absolute index, so windows are asked for as before —
 * but r5_scan_builder_spokes refuses a window that reaches below `before` (R5_EINVAL), and
 * finish refuses the scan (R5_EINVAL: the whole scan is gone; the caller that released spokes
 * ends with r5_scan_builder_destroy). r5_scan_builder_bytes falls with the buffers: they shrink
 * to twice the spokes kept (at least 64) once they are a quarter full, so a stream that releases
 * what its frames no longer need holds about one frame window however long it runs. Costs a
 * copy of the spokes kept. */
r5_status r5_scan_builder_release_spokes(r5_scan_builder *b, long before);
/* Hands the assembled scan over (and destroys the builder). Fails when no imaging data came,
 * or when the grid the header implies is more than 256 times the lines that came. */
r5_status r5_scan_builder_finish(r5_scan_builder *b, r5_scan **out);
void r5_scan_builder_destroy(r5_scan_builder *b); /* NULL is harmless */

/* Opens an ISMRMRD HDF5 file for reading only (ismrmrd_init_dataset, then H5Fopen read-only):
 * libismrmrd's ismrmrd_open_dataset opens read-write, which takes HDF5's exclusive file lock (a
 * second reader of the same scan fails) and creates a missing group. Every path that only reads
 * a file opens it here. group NULL or "": "dataset". Errors name the path: missing
 * (R5_ENOTFOUND), not an HDF5 file (R5_EINVAL), unreadable (R5_EIO), no such group
 * (R5_ENOTFOUND). Success: close with ismrmrd_close_dataset; failure: *dset holds nothing. */
struct ISMRMRD_Dataset;
r5_status r5_ismrmrd_open_readonly(const char *path, const char *group, struct ISMRMRD_Dataset *dset);

/* ISMRMRD HDF5 file, dataset group (NULL: "dataset"). */
r5_status r5_scan_read_ismrmrd(const char *path, const char *group, const r5_scan_limits *limits, r5_scan **out);
/* BART .cfl k-space [x y z coil ...]: unsampled points are zeros; the sampling mask is found
 * from the data and a minimal header is made up (FOV = matrix in mm, 1 T unknown). */
r5_status r5_scan_from_cfl(const char *path, r5_scan **out);
/* BART .cfl non-Cartesian k-space [1, n_read, n_spokes, coils] with its trajectory
 * [3, n_read, n_spokes] (BART units: cycles per FOV) as a non-Cartesian scan. The encoded matrix
 * is the smallest even N >= 2 max |k_d| (at least 2) for d = 0, 1 (square: the larger of the
 * two), 1 along z when every k2 is within [-1/2, 1/2] (2D), else likewise; FOV = matrix in mm.
 * Refused (R5_EINVAL naming the files): dims that do not match each other or these layouts, a
 * non-finite coordinate, a trajectory with an imaginary part (not a coordinate array). */
r5_status r5_scan_from_cfl_traj(const char *kspace_path, const char *traj_path, r5_scan **out);
void r5_scan_free(r5_scan *scan); /* NULL is harmless */

/* Index into the mask arrays for a k-space position (x and coil ignored). */
long r5_scan_mask_index(const r5_scan *scan, const long pos[R5_DIMS]);

#endif
