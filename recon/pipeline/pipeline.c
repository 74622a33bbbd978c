/* r5_recon_run: check the parameters and the input (non-finite samples are refused), drop the
 * outer indices without data, choose the pipeline, prepare the image set (header, geometry,
 * provenance), prewhiten and compress coils, make a one-frame sense/cs scan's coil maps (or
 * take those made ahead: calibration.h), run the pipeline, check its output is finite; and the
 * helpers the pipelines share (frames with data, FFTs in checked groups, the step to the recon
 * matrix). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/fft.h"
#include "calibration.h"
#include "coil_prep.h"
#include "cs_slab.h"
#include "../core/log.h"
#include "pipelines.h"
#include "sampling_pattern.h"


int r5_pipeline_frame_has_data(const r5_scan *scan, long frame)
{
	long plane = scan->mask_dims[1] * scan->mask_dims[2];
	const unsigned char *m = scan->sampled + frame * plane;
	for (long i = 0; i < plane; i++)
		if (m[i])
			return 1;
	return 0;
}

static long mask_frames(const r5_scan *scan)
{
	long n = 1;
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS; d++)
		n *= scan->mask_dims[d];
	return n;
}

long r5_pipeline_frames_with_data(const r5_scan *scan)
{
	long n = mask_frames(scan), with_data = 0;
	for (long f = 0; f < n; f++)
		with_data += r5_pipeline_frame_has_data(scan, f);
	return with_data;
}

r5_status r5_pipeline_fft_checked(r5_ctx *ctx, unsigned long flags, int inverse, r5_array *out, const r5_array *in,
				  const r5_progress *progress, const char *stage, double fraction)
{
	if (!r5_dims_equal(out->dims, in->dims) || !r5_array_is_contiguous(out) || !r5_array_is_contiguous(in) ||
	    (flags & ~7UL))
		return inverse ? r5_ifft(ctx, flags, out, in) : r5_fft(ctx, flags, out, in);
	long vol = in->dims[0] * in->dims[1] * in->dims[2], rest = r5_array_size(in) / vol;
	long group = R5_PROGRESS_CHUNK_VALUES / vol;
	group = group < 1 ? 1 : group;
	for (long g0 = 0; g0 < rest; g0 += group) {
		long n = g0 + group < rest ? group : rest - g0, dims[R5_DIMS];
		r5_dims_ones(dims);
		for (int d = 0; d < 3; d++)
			dims[d] = in->dims[d];
		dims[3] = n;
		r5_array *vi = NULL, *vo = NULL;
		r5_status s = r5_array_view(in->where, in->ctx ? in->ctx : ctx, dims, in->data + g0 * vol, &vi);
		if (s == R5_OK)
			s = r5_array_view(out->where, out->ctx ? out->ctx : ctx, dims, out->data + g0 * vol, &vo);
		if (s == R5_OK)
			s = inverse ? r5_ifft(ctx, flags, vo, vi) : r5_fft(ctx, flags, vo, vi);
		r5_array_free(vi);
		r5_array_free(vo);
		R5_TRY(s);
		R5_TRY(r5_progress_check(progress, stage, fraction));
	}
	return R5_OK;
}

double r5_pipeline_clock(r5_ctx *ctx)
{
	if (ctx)
		r5_ctx_sync(ctx);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Which pipeline "auto" means for this scan: decided from the sampling pattern and the header
 * (sampling_pattern.h): cs for irregular (variable-density or random) undersampling with a fully
 * sampled centre; otherwise parallel imaging when the header says the scan is accelerated, or
 * (for .cfl input, which has no such header) when lines are missing; else cartesian. */
const char *r5_pipeline_auto_choice(const r5_scan *scan)
{
	return r5_pipeline_auto_choice_for(scan, NULL);
}

/* non-Cartesian: one frame of several coils -> sense (NLINV maps + CG-SENSE), frames -> grid */
const char *r5_pipeline_auto_choice_for(const r5_scan *scan, const r5_recon_params *p)
{
	if (scan && scan->traj)
		return (p ? p : &r5_recon_defaults)->grid.frame_spokes == 0 && scan->kspace->dims[R5_DIM_COIL] > 1 ? "sense"
														    : "grid";
	return r5_sampling_pattern_auto_choice(scan, NULL, 0);
}

/* The pipeline to run: the one asked for, or auto's choice with its reason in the log. */
static const char *choose_pipeline(const r5_scan *scan, const r5_recon_params *p)
{
	if (strcmp(p->pipeline, "auto"))
		return p->pipeline;
	if (scan->traj) {
		const char *name = r5_pipeline_auto_choice_for(scan, p);
		r5_info("reconstruction: pipeline auto chose %s: the scan is non-Cartesian, %s", name,
			strcmp(name, "sense") ? "frames or one coil" : "one frame of several coils");
		return name;
	}
	char reason[512];
	const char *name = r5_sampling_pattern_auto_choice(scan, reason, sizeof reason);
	r5_info("reconstruction: pipeline auto chose %s: %s", name, reason);
	return name;
}

static r5_status make_image_set(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const char *pipeline,
				r5_image_set **out)
{
	r5_image_set *set = calloc(1, sizeof *set);
	if (!set)
		return r5_set_error(R5_ENOMEM, "image set");
	r5_status s = r5_header_copy(&set->header, &scan->header);
	if (s == R5_OK && scan->n_slices > 0) {
		set->geometry = calloc((size_t)scan->n_slices, sizeof *set->geometry);
		if (!set->geometry)
			s = r5_set_error(R5_ENOMEM, "image geometry");
		else
			memcpy(set->geometry, scan->geometry, sizeof *set->geometry * (size_t)scan->n_slices);
		set->n_slices = scan->n_slices;
	}
	if (s != R5_OK) {
		r5_image_set_free(set);
		return s;
	}
	for (int d = 0; d < 3; d++)
		set->fov_mm[d] = scan->header.recon_fov_mm[d];
	snprintf(set->pipeline, sizeof set->pipeline, "%s", pipeline);
	r5_recon_params used = *p;
	snprintf(used.pipeline, sizeof used.pipeline, "%s", pipeline);
	r5_recon_params_format(&used, set->parameters, sizeof set->parameters);
	snprintf(set->backend, sizeof set->backend, "%s", r5_ctx_backend_name(ctx));
	*out = set;
	return R5_OK;
}

/* A BART 2D k-space [1, ny, nz] (x of size 1: the readout was transformed away) reconstructs in
 * that layout, which keeps the ky-kz sampling mask exact; the images are then presented as
 * ny x nz (the same memory, dimensions shifted down) so that DICOM and viewers see one 2D image
 * rather than nz images one pixel wide. */
static void present_yz_as_xy(r5_image_set *set)
{
	const r5_array *img = set->images;
	if (img->dims[0] != 1 || img->dims[1] == 1 || !r5_array_is_contiguous(img))
		return;
	r5_array *arrays[2] = {set->images, set->gfactor};
	for (int i = 0; i < 2; i++) {
		r5_array *a = arrays[i];
		if (!a)
			continue;
		a->dims[0] = a->dims[1], a->dims[1] = a->dims[2], a->dims[2] = 1;
		r5_dims_strides(a->strides, a->dims);
	}
	float fov_x = set->fov_mm[0];
	set->fov_mm[0] = set->fov_mm[1], set->fov_mm[1] = set->fov_mm[2], set->fov_mm[2] = fov_x;
}

typedef r5_status (*pipeline_fn)(r5_ctx *, const r5_scan *, const r5_recon_params *, const r5_progress *,
				  r5_image_set *);

/* The pipelines, and whether each takes a non-Cartesian scan (1) or a Cartesian one (0). */
static const struct {
	const char *name;
	pipeline_fn run;
	int noncartesian;
} pipelines[] = {
	{"cartesian", r5_pipeline_cartesian, 0},
	{"sense", r5_pipeline_sense, 0},
	{"grappa", r5_pipeline_grappa, 0},
	{"cs", r5_pipeline_cs, 0},
	{"grid", r5_pipeline_grid, 1},
	{"sense", r5_pipeline_nc_sense, 1},
	{"cs", r5_pipeline_nc_cs, 1},
	{"grasp", r5_pipeline_grasp, 1},
};
#define N_PIPELINES (sizeof pipelines / sizeof pipelines[0])

/* The pipeline called name for this scan; R5_ENOTSUP / R5_EINVAL saying which ones take it. */
static r5_status find_pipeline(const char *name, const r5_scan *scan, pipeline_fn *run)
{
	int nc = scan->traj != NULL;
	*run = NULL;
	for (size_t i = 0; i < N_PIPELINES; i++) /* a name may have one row per kind of scan */
		if (!strcmp(pipelines[i].name, name) && pipelines[i].noncartesian == nc) {
			*run = pipelines[i].run;
			return R5_OK;
		}
	for (size_t i = 0; i < N_PIPELINES; i++) {
		if (strcmp(pipelines[i].name, name))
			continue;
		if (pipelines[i].noncartesian == nc) {
			*run = pipelines[i].run;
			return R5_OK;
		}
		char names[128] = "";
		for (size_t j = 0; j < N_PIPELINES; j++)
			if (pipelines[j].noncartesian == nc) {
				strncat(names, names[0] ? ", " : "", sizeof names - strlen(names) - 1);
				strncat(names, pipelines[j].name, sizeof names - strlen(names) - 1);
			}
		if (nc)
			return r5_set_error(R5_ENOTSUP, "pipeline %s does not take a non-Cartesian scan yet (%ld spokes with a "
					    "trajectory): use %s", name, scan->kspace->dims[2], names);
		return r5_set_error(R5_EINVAL, "pipeline %s is for non-Cartesian scans; this one is Cartesian: use %s or "
				    "auto", name, names);
	}
	if (!strcmp(name, "realtime")) /* frames as the spokes arrive: the service's (service/server/realtime.c) */
		return r5_set_error(R5_ENOTSUP, "pipeline realtime runs in recon5td only, on a stream; offline, pipeline "
						"grid with the same frame_spokes and frame_step makes the same frames");
	return r5_set_error(R5_ENOTSUP, "pipeline '%s' is not built in", name);
}

r5_status r5_pipeline_check_takes(const char *name, const r5_scan *scan)
{
	pipeline_fn run;
	return find_pipeline(name, scan, &run);
}

/* The coil maps of a one-frame sense/cs run (calibration.h): the one made ahead when it is this
 * run's, else made now from the scan (raw, as the pipeline sees it) through the same chain.
 * *own: what was made here (the caller frees it). */
static r5_status calibrate(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_calibration *ahead,
			   int input_shift, const r5_progress *progress, r5_image_set *set, int maps_on_host,
			   r5_calibration **own, const r5_calibration **use)
{
	char why[200];
	if (ahead && r5_calibration_matches(ahead, scan, p, input_shift, why, sizeof why)) {
		r5_info("calibration: the maps computed while the scan streamed in are used (%.3f s then)",
			r5_calibration_seconds(ahead));
		r5_image_set_add_stage(set, "espirit-ahead", r5_calibration_seconds(ahead));
		*use = ahead;
		return R5_OK;
	}
	if (ahead)
		r5_info("calibration: the maps computed while the scan streamed in are not used: %s", why);
	r5_progress_part part;
	R5_TRY(r5_calibration_input_copy(scan, p, own));
	r5_status s = r5_calibration_compute(ctx, *own, r5_progress_part_init(&part, progress, 0.05, 0.5, "espirit"),
					     maps_on_host);
	r5_calibration_drop_input(*own);
	if (s == R5_OK)
		r5_image_set_add_stage(set, "espirit", r5_calibration_seconds(*own));
	*use = *own;
	return s;
}

/* Prewhitening and coil compression on a shallow copy (the caller's scan stays untouched), the
 * coil maps' calibration of a one-frame sense/cs run, then the pipeline. */
static r5_status prepare_and_run(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, pipeline_fn run,
				 const r5_calibration *ahead, int input_shift, const r5_progress *progress,
				 r5_image_set *set)
{
	r5_cc_conf cc;
	int compress = 0;
	r5_status s = r5_calibration_cc_conf(p, &cc, &compress);
	r5_scan work = *scan;
	double prep_seconds[2] = {-1, -1};
	if (s == R5_OK)
		s = r5_coils_prepare(ctx, scan, p->prewhiten, &cc, progress, &work, prep_seconds);
	if (prep_seconds[0] >= 0)
		r5_image_set_add_stage(set, "prewhiten", prep_seconds[0]);
	if (prep_seconds[1] >= 0)
		r5_image_set_add_stage(set, "coil-compress", prep_seconds[1]);
	/* gradient delays of radial spokes: the working copy gets the corrected trajectory */
	r5_array *delayed = NULL;
	if (s == R5_OK && !work.traj && !strcmp(p->grid.delay, "ring"))
		s = r5_set_error(R5_EINVAL, "parameter delay=ring: the scan is Cartesian (gradient delays of radial spokes)");
	if (s == R5_OK && work.traj && !strcmp(p->grid.delay, "ring")) {
		float delay[3];
		double t = r5_pipeline_clock(NULL);
		r5_progress_part part;
		s = r5_pipeline_delay_correct(&work, r5_progress_part_init(&part, progress, 0.0, 0.05, "delay"), &delayed,
					      delay);
		if (s == R5_OK) {
			work.traj = delayed;
			r5_image_set_add_stage(set, "delay", r5_pipeline_clock(NULL) - t);
		}
	}
	/* whether a cs frame streams through device memory (cs_slab.h) is decided once, here, before
	 * the calibration's maps take device memory: the run sees stream 0 or 1, and a streamed frame
	 * has its maps made in host memory */
	r5_recon_params resolved = *p;
	if (s == R5_OK && !strcmp(set->pipeline, "cs") && work.kspace)
		resolved.cs.stream = r5_cs_streamed(ctx, p, work.kspace->dims, p->sense.n_maps);
	r5_calibration *own = NULL;
	if (s == R5_OK && r5_calibration_applies(scan, set->pipeline))
		s = calibrate(ctx, scan, p, ahead, input_shift, progress, set, resolved.cs.stream == 1, &own,
			      &work.calibration);
	if (s == R5_OK)
		s = run(ctx, &work, &resolved, progress, set);
	work.calibration = NULL;
	work.traj = scan->traj;
	r5_array_free(delayed);
	r5_calibration_free(own);
	r5_coils_release(&work, scan);
	if (s == R5_OK && !set->images)
		s = r5_set_error(R5_EINTERNAL, "pipeline %s returned no images", set->pipeline);
	if (s == R5_OK)
		s = r5_pipeline_check_output(set);
	return s;
}

r5_status r5_recon_run(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *params, const r5_progress *progress,
		       r5_image_set **out)
{
	return r5_recon_run_calibrated(ctx, scan, params, NULL, progress, out);
}

r5_status r5_recon_run_calibrated(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *params,
				  const r5_calibration *calibration, const r5_progress *progress, r5_image_set **out)
{
	*out = NULL;
	const r5_recon_params *p = params ? params : &r5_recon_defaults;
	if (!scan || !scan->kspace || !scan->sampled)
		return r5_set_error(R5_EINVAL, "reconstruction: no k-space or no sampling mask");
	const char *trajectory = scan->header.trajectory;
	if (!scan->traj && trajectory[0] && strcmp(trajectory, "cartesian") && strcmp(trajectory, "epi"))
		return r5_set_error(R5_EINVAL, "reconstruction: the header's trajectory is '%s' but the scan carries no "
				    "trajectory (trajectory missing)", trajectory);
	if (scan->traj && (scan->traj->dims[0] != 3 || scan->traj->dims[1] != scan->kspace->dims[1] ||
			   scan->traj->dims[2] != scan->kspace->dims[2] || scan->kspace->dims[0] != 1))
		return r5_set_error(R5_EINVAL, "reconstruction: non-Cartesian k-space [%ld %ld %ld %ld] and trajectory "
				    "[%ld %ld %ld] do not match ([1 n_read n_spokes coils], [3 n_read n_spokes])",
				    scan->kspace->dims[0], scan->kspace->dims[1], scan->kspace->dims[2], scan->kspace->dims[3],
				    scan->traj->dims[0], scan->traj->dims[1], scan->traj->dims[2]);
	R5_TRY(r5_recon_params_check(p));
	double t0 = r5_pipeline_clock(ctx);
	R5_TRY(r5_progress_check(progress, "start", 0.0));
	float peak = 0.0f;
	R5_TRY(r5_pipeline_check_input(scan, p->prewhiten, progress, &peak));
	/* Large raw data (some vendors' scaling reaches 1e13 and more) are scaled down by a power of
	 * two in place and restored afterwards; the images scale back unless prewhitening made them
	 * independent of the data's scale (SNR units: k-space and noise scaled alike cancel). */
	int shift = r5_pipeline_input_shift(peak);
	r5_scan *scaled = (r5_scan *)scan;
	if (shift) {
		r5_info("reconstruction: input scaled by 2^-%d (largest sample component %.3g) for single precision", shift,
			(double)peak);
		r5_pipeline_scale_input(scaled, -shift);
	}
	r5_scan kept;
	r5_status s = r5_pipeline_drop_empty(scan, progress, &kept);
	if (s != R5_OK) {
		if (shift)
			r5_pipeline_scale_input(scaled, shift);
		return s;
	}
	const char *name = choose_pipeline(&kept, p);
	pipeline_fn run = NULL;
	r5_image_set *set = NULL;
	s = find_pipeline(name, &kept, &run);
	/* a key set by name that the chosen pipeline does not read would be silently ignored */
	if (s == R5_OK)
		s = r5_recon_params_check_applies(p, name);
	/* ESPIRiT's calibration region, before any work (a narrow one gives zero maps or fails late) */
	if (s == R5_OK)
		s = r5_sampling_pattern_check_calib(&kept, name, p->sense.kernel_size, p->calib_size);
	if (s == R5_OK)
		s = make_image_set(ctx, &kept, p, name, &set);
	if (s == R5_OK) {
		r5_info("reconstruction: pipeline %s on %s", name, r5_ctx_describe(ctx));
		s = prepare_and_run(ctx, &kept, p, run, calibration, shift, progress, set);
	}
	int prewhitened = p->prewhiten && kept.noise;
	r5_pipeline_drop_empty_release(&kept, scan);
	if (shift) {
		r5_pipeline_scale_input(scaled, shift);
		if (s == R5_OK && !prewhitened)
			r5_pipeline_scale_images(set, shift);
	}
	if (s == R5_OK)
		s = r5_progress_check(progress, "done", 1.0);
	if (s != R5_OK) {
		r5_image_set_free(set);
		return s;
	}
	r5_image_set_add_stage(set, "total", r5_pipeline_clock(ctx) - t0);
	present_yz_as_xy(set);
	*out = set;
	return R5_OK;
}

/* Crop about the centre, or transform and zero-pad / crop k-space about the centre. */
static r5_status resize_dims(r5_ctx *ctx, r5_array **img, const long target[R5_DIMS], int in_kspace,
			     const r5_progress *progress)
{
	if (r5_dims_equal((*img)->dims, target))
		return R5_OK;
	unsigned long flags = 0;
	double scale = 1.0;
	for (int d = 0; d < 3; d++) {
		if ((*img)->dims[d] != target[d]) {
			flags |= 1UL << d;
			scale *= (double)target[d] / (double)(*img)->dims[d];
		}
	}
	r5_array *next = NULL;
	R5_TRY(r5_array_alloc_work(ctx, target, &next));
	r5_status s = R5_OK;
	if (in_kspace) {
		s = r5_pipeline_fft_checked(ctx, flags, 0, *img, *img, progress, "resize", 0.95);
		if (s == R5_OK)
			s = r5_zresize_centered(ctx, next, *img);
		if (s == R5_OK)
			s = r5_pipeline_fft_checked(ctx, flags, 1, next, next, progress, "resize", 0.97);
		/* unitary transforms of different sizes: keep the voxel intensities */
		if (s == R5_OK)
			s = r5_zscale(ctx, next, (float)sqrt(scale));
	} else {
		s = r5_zresize_centered(ctx, next, *img);
	}
	r5_array_free(*img);
	*img = next;
	return s;
}

void r5_pipeline_recon_matrix_dims(const r5_header *h, const long grid[R5_DIMS], long crop[R5_DIMS],
				   long target[R5_DIMS])
{
	r5_dims_copy(crop, grid);
	for (int d = 0; d < 3; d++) {
		long n = grid[d];
		/* FOV of the grid the images are on (readout oversampling already removed) */
		double fov = h->enc_matrix[d] > 0 ? h->enc_fov_mm[d] * (double)n / (double)h->enc_matrix[d] : 0;
		if (fov > 0 && h->recon_fov_mm[d] > 0 && h->recon_fov_mm[d] < fov) {
			long c = lround(n * h->recon_fov_mm[d] / fov);
			crop[d] = c < 1 ? 1 : c > n ? n : c;
		}
	}
	r5_dims_copy(target, crop);
	for (int d = 0; d < 3; d++)
		if (h->recon_matrix[d] > 0 && !(d == 2 && grid[2] == 1))
			target[d] = h->recon_matrix[d];
}

r5_status r5_pipeline_to_recon_matrix(r5_ctx *ctx, const r5_scan *scan, const r5_array *images,
				      const r5_progress *progress, r5_array **out)
{
	long crop[R5_DIMS], target[R5_DIMS];
	r5_pipeline_recon_matrix_dims(&scan->header, images->dims, crop, target);
	r5_array *img = NULL;
	R5_TRY(r5_array_alloc_work(ctx, images->dims, &img));
	r5_status s = r5_array_copy(ctx, img, images);
	if (s == R5_OK)
		s = resize_dims(ctx, &img, crop, 0, progress);
	if (s == R5_OK)
		s = resize_dims(ctx, &img, target, 1, progress);
	if (s == R5_OK && img->dims[R5_DIM_AVG] > 1) {
		long mean_dims[R5_DIMS];
		r5_dims_copy(mean_dims, img->dims);
		mean_dims[R5_DIM_AVG] = 1;
		r5_array *mean = NULL;
		s = r5_array_alloc_work(ctx, mean_dims, &mean);
		if (s == R5_OK)
			s = r5_zsum(ctx, mean, img);
		if (s == R5_OK)
			s = r5_zscale(ctx, mean, 1.0f / (float)img->dims[R5_DIM_AVG]);
		r5_array_free(img);
		img = mean;
	}
	if (s == R5_OK)
		s = r5_array_to_host(ctx, img, out);
	r5_array_free(img);
	return s;
}
