/* The named pipelines behind r5_recon_run (pipeline.h), and helpers they share.
 *
 * Each pipeline gets a scan (outer indices without data removed, after prewhitening and coil
 * compression, which r5_recon_run does first) and an image set with header, geometry and FOV already filled; it fills set->images
 * (host, [x, y, z, 1, 1, contrast, ..., repetition(10), phase(11), ..., slice(13)], complex, on
 * the recon matrix), set->gfactor when asked, and its stage timings. Every loop over frames,
 * coils or iterations checks `progress` at least every ~0.5 s of work (core/progress.h) and
 * hands it (as an r5_progress_part) to the calibration, operators and solver it calls. */
#ifndef R5_PIPELINE_PIPELINES_H
#define R5_PIPELINE_PIPELINES_H

#include "pipeline.h"

r5_status r5_pipeline_cartesian(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
				const r5_progress *progress, r5_image_set *set);
r5_status r5_pipeline_sense(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
			    const r5_progress *progress, r5_image_set *set);
r5_status r5_pipeline_grappa(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
			     const r5_progress *progress, r5_image_set *set);
/* Compressed sensing: SENSE's frames, maps and operator (sense.c) with the regularised solve of
 * cs.c instead of CG. */
r5_status r5_pipeline_cs(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			 r5_image_set *set);
/* Gridding of a non-Cartesian scan (grid_pipeline.c, grid.h): density-compensated adjoint NUFFT
 * and coil combination per frame; images on the encoded matrix, frames in dim 10. */
r5_status r5_pipeline_grid(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			   r5_image_set *set);
/* Non-Cartesian `sense` (nc_sense_pipeline.c): coil maps by NLINV from all spokes, then CG-SENSE
 * through the Toeplitz normal per frame (frames as grid's); images as grid's. */
r5_status r5_pipeline_nc_sense(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
			       const r5_progress *progress, r5_image_set *set);
/* Non-Cartesian `cs` (nc_cs_pipeline.c, nc_cs.h): the same maps and frames as the non-Cartesian
 * sense, each frame solved by cs.c's regularised solve with E = NUFFT . maps (cs keys). */
r5_status r5_pipeline_nc_cs(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			    r5_image_set *set);
/* One frame's solve of a non-Cartesian pipeline that takes NLINV maps: image_dims [Nx, Ny, Nz,
 * coils], coords (3 per point, wrapped: r5_grid_wrap_coords), samples [1, n_read, n_lines, coils],
 * maps [Nx, Ny, Nz, coils]; frame (host [Nx, Ny, Nz]) holds the previous frame's image on entry
 * (zeros for the first) and this frame's on return. */
typedef struct r5_nc_frame_solver {
	const char *name;  /* the pipeline's name, in messages */
	const char *stage; /* the stage of the frames' progress and timing */
	r5_status (*solve)(r5_ctx *ctx, const r5_recon_params *p, const long image_dims[R5_DIMS], long n_points,
			   const float *coords, const r5_array *samples, const r5_array *maps,
			   const r5_progress *progress, r5_array *frame);
} r5_nc_frame_solver;
/* The driver both run (nc_sense_pipeline.c): checks the scan, coil maps by NLINV from all spokes,
 * grid's frames (r5_pipeline_grid_frames) each through solver, then the recon matrix. */
r5_status r5_pipeline_nc_frames(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
				const r5_nc_frame_solver *solver, const r5_progress *progress, r5_image_set *set);
/* Its peak bytes beyond the scan, for the memory estimate (image_dims [Nx, Ny, Nz, coils]). */
double r5_pipeline_nc_sense_bytes(const long image_dims[R5_DIMS], long n_read, long n_spokes, long frame_spokes,
				  long frames);
/* grid's frames for a scan of n_spokes spokes: n_frames of `spokes` spokes, frame f from spoke
 * f * step; R5_EINVAL when frame_spokes is larger than the scan or frame_step comes without it. */
/* The image of a non-Cartesian scan (grid_pipeline.c): [Nx, Ny, Nz, coils] on the header's encoded
 * matrix (a size of 0 or 1 is 1). */
void r5_pipeline_nc_image_dims(const r5_header *header, long coils, long dims[R5_DIMS]);
/* The context a non-Cartesian pipeline computes on: ctx when it is a CPU one, else a CPU context
 * of its own in *own (the caller destroys it; one log line names the pipeline). */
r5_status r5_pipeline_nc_context(r5_ctx *ctx, const char *pipeline, r5_ctx **own, r5_ctx **run);
/* delay=ring (every non-Cartesian pipeline; grid_pipeline.c): RING gradient delays estimated from
 * all of the scan's radial spokes, and a new trajectory array (the scan's dims) moved by them. */
r5_status r5_pipeline_delay_correct(const r5_scan *scan, const r5_progress *progress, r5_array **traj, float delay[3]);
r5_status r5_pipeline_grid_frames(const r5_recon_params *p, long n_spokes, long *spokes, long *step, long *n_frames);
/* GRASP of a non-Cartesian scan (grasp_pipeline.c, grasp.h): frames of grid.frame_spokes (0: 21)
 * consecutive spokes, temporal TV; images on the encoded matrix, frames in dim 10. */
r5_status r5_pipeline_grasp(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			    r5_image_set *set);
/* R5_OK when pipeline `name` (a concrete one) takes this scan; else the error r5_recon_run gives:
 * R5_ENOTSUP for a Cartesian pipeline on a non-Cartesian scan or a name not built in, R5_EINVAL
 * for a non-Cartesian pipeline on a Cartesian scan. */
r5_status r5_pipeline_check_takes(const char *name, const r5_scan *scan);
/* One CS problem's solve (cs.c): E the SENSE operator of one frame or of a slab of its readout
 * positions, kspace its data, rhs = E^H kspace, x the image (initial guess in, solution out).
 * o->peak: the absolute weights are lambda times this (0: max |rhs|, so a slab of a volume
 * passes the volume's peak and its weights match the whole volume's); o->reg_flags: the dims
 * the wavelets and finite differences act on (0: every image dim of size > 1 among x, y, z;
 * set, the problems along the dims left out are independent: FISTA's restart test is off, as
 * one test shared by a batch would couple them);
 * o->noise_sigma: the measured noise std in k-space units (0: unknown), for the weights'
 * `auto` rule. Progress is reported as stage "cs" between o->lo and o->hi, its stop status
 * returned. */
struct r5_linop;
typedef struct r5_cs_solve_opts {
	const r5_progress *progress;
	double lo, hi;
	float peak;
	unsigned long reg_flags;
	float noise_sigma;
} r5_cs_solve_opts;
/* The noise std of one frame's k-space from its sampled periphery (cs.c; 0: too few samples). */
float r5_cs_noise_sigma(const r5_scan *scan, long frame);
r5_status r5_cs_solve(r5_ctx *ctx, const r5_recon_params *p, struct r5_linop *E, const r5_array *kspace,
		      const r5_array *rhs, r5_array *x, const r5_cs_solve_opts *o);

/* From images on the k-space grid (work residency, [x, y, z, 1 or maps, ...] as the scan's
 * k-space after oversampling removal) to the recon matrix and FOV of the header: crops the
 * image to the recon FOV, then resizes by zero-padding/cropping k-space when the recon matrix
 * differs, and copies the result to the host into *out. Sums dimension R5_DIM_AVG (averages)
 * into their mean. progress (NULL: never stop) is checked between groups of the FFTs. */
r5_status r5_pipeline_to_recon_matrix(r5_ctx *ctx, const r5_scan *scan, const r5_array *images,
				      const r5_progress *progress, r5_array **out);
/* The two steps' shapes for images on `grid`: crop = the recon FOV on the k-space grid's voxels,
 * target = the recon matrix (the memory estimate replays the same steps). */
void r5_pipeline_recon_matrix_dims(const r5_header *h, const long grid[R5_DIMS], long crop[R5_DIMS],
				   long target[R5_DIMS]);

/* Which pipeline "auto" runs for this scan with the default parameters (r5_recon_run and the
 * memory estimate ask r5_pipeline_auto_choice_for). */
const char *r5_pipeline_auto_choice(const r5_scan *scan);
/* The same for these parameters (NULL: defaults): a non-Cartesian scan of one frame (no
 * frame_spokes) and several coils -> sense, else grid. */
const char *r5_pipeline_auto_choice_for(const r5_scan *scan, const r5_recon_params *p);

/* Seconds on a monotonic clock, after synchronising the context's device. */
double r5_pipeline_clock(r5_ctx *ctx);

/* Frames are the k-space blocks [x, y, z, coil] indexed by the dims after coil (contrast, ...,
 * repetition, phase, slice, average), in memory order. A frame has data when its ky-kz sampling
 * mask has a sampled point; pipelines reconstruct only those (the others keep zero images, and
 * r5_recon_run has already removed the outer indices that hold no data at all, see pipeline.h). */
int r5_pipeline_frame_has_data(const r5_scan *scan, long frame);
long r5_pipeline_frames_with_data(const r5_scan *scan);

/* out = centred unitary FFT (inverse: IFFT) over flags (x, y, z only) of in — contiguous, same
 * dims, in == out allowed — in groups of the dims after z (coils, frames) of about
 * R5_PROGRESS_CHUNK_VALUES values, with a check of progress (NULL: never stop; reported as
 * `stage` at `fraction`) after each group. */
r5_status r5_pipeline_fft_checked(r5_ctx *ctx, unsigned long flags, int inverse, r5_array *out, const r5_array *in,
				  const r5_progress *progress, const char *stage, double fraction);

/* r5_recon_run's checks (scan_prepare.c). Input: R5_EINVAL "k-space contains N non-finite
 * samples (NaN or Inf; first at readout sample x, ky y, ...)" (and the noise scan's, when
 * with_noise). Output: R5_EINTERNAL naming the pipeline when images or g-factor hold a NaN/Inf. */
r5_status r5_pipeline_check_input(const r5_scan *scan, int with_noise, const r5_progress *progress, float *peak);
/* Large raw data: *peak (the largest |re| or |im| the input check saw) is brought to at most
 * 2^40 by scaling with 2^-shift, shift = r5_pipeline_input_shift(peak) (0 for ordinary data;
 * samples above 1e30 are refused by the check). r5_pipeline_scale_input multiplies the scan's
 * k-space and noise by 2^exponent in place (host arrays; exact in floating point, values below
 * ~1e-36 aside), r5_pipeline_scale_images the images. */
int r5_pipeline_input_shift(float peak);
void r5_pipeline_scale_input(r5_scan *scan, int exponent);
void r5_pipeline_scale_images(r5_image_set *set, int exponent);
r5_status r5_pipeline_check_output(const r5_image_set *set);

/* *out = a shallow copy of scan without the outer indices (dims after coil) that hold no sampled
 * line in any frame: new k-space, masks and per-slice geometry when something is dropped (one
 * log line says what), the scan's own arrays otherwise. Images then exist only for the kept
 * indices, in order (the image set's contrast 1 is the second contrast that has data). Free
 * with r5_pipeline_drop_empty_release (also after a failure). */
r5_status r5_pipeline_drop_empty(const r5_scan *scan, const r5_progress *progress, r5_scan *out);
/* Frames r5_pipeline_drop_empty keeps (all of them when nothing is dropped; -1: out of memory). */
long r5_pipeline_kept_frames(const r5_scan *scan);
void r5_pipeline_drop_empty_release(r5_scan *out, const r5_scan *scan);

#endif
