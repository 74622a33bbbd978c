/* Pipeline realtime: frames while the scan streams in (issue 14, item 3). A client asks for it
 * with pipeline `realtime` and the keys frame_spokes, frame_step (and mode); every window of
 * spokes becomes a frame the moment its last spoke has been sorted in, and goes out at once as an
 * Image event (repetition = frame index, image_index = frame + 1). No PACS push per frame: the
 * whole series goes to the PACS after End when the server has one and the scan did not skip it.
 *
 * Which spokes make frame f and when it is due: realtime_frames.h. The path of a frame:
 *   ingest thread (r5_realtime_offer, after each batch): for every frame that became due, the
 *     window's samples and coordinates are copied out of the scan builder (which goes on
 *     growing) into a frame task, its bytes reserved from the memory budget without waiting,
 *     and queued; the ingest thread never waits for a frame, so a slow frame never holds
 *     ingest back. Frames are dropped only under overload, counted, logged and reported in
 *     Completed.frames_dropped: a task whose window the budget cannot hold now, and, when the
 *     client set realtime.max_pending, the oldest waiting task once more than that many wait
 *     (a display that wants the newest frame); by default every due frame is made, late if
 *     the frame thread falls behind.
 *   frame thread (one per real-time stream, its own r5_ctx and grid plan, made at the header,
 *     with a warm-up frame that plans the FFTs): takes the tasks in order and makes each frame:
 *     mode grid (default) r5_grid_frame (recon/pipeline/grid.h: the ramp-weighted adjoint NUFFT
 *     + rss, the grid pipeline's frame; its NUFFT realtime.oversampling / tolerance, 1.25 and
 *     1e-3 by default, 4x faster than the grid pipeline's 2 and 1e-5, which give its bits);
 *     mode iterative: realtime.iters CG-SENSE iterations (recon/pipeline/nc_sense.h) warm-
 *     started from the previous frame, through one r5_nc_sense_frames kept for the stream (plan,
 *     buffers and FFT plans made at the header; per frame only the spokes' points, rhs and CG;
 *     CG's normal by the NUFFT pair unless realtime.normal = toeplitz), with coil maps made by
 *     ESPIRiT on frame 0's gridded centre (width calib, 24 by default) and reused, or, with
 *     maps_refresh = K, made again from the window of the frame just sent once K frames have
 *     passed and no frame waits (so a refresh never holds a queued frame back; one coming due
 *     while it runs waits for it: 0.6 CPU s at 256^2 x 8 coils, bench_rt_iterative). It sends the frame's Image events, keeps
 *     the frame for the PACS series when one will be pushed, and frees the task.
 *     Noise prewhitening and coil compression are not applied to real-time frames.
 *   End (r5_realtime_end, ingest thread): the scan is checked (non-Cartesian, spokes came), a
 *     frame_spokes larger than the scan fails here (INVALID_ARGUMENT, no frame was made); the
 *     builder and what it still holds are freed; the frame thread, once the queue is empty, pushes the series to
 *     the PACS when wanted, sends Completed (frames sent and dropped, server-side latency
 *     p50/p99) and ends the call with OK.
 *
 * Memory: the stream reserves at its header the plan's fixed part (the NUFFT grid, coil images,
 * image: r5_grid_plan_bytes; for mode iterative the kept solver's: solver_bytes), each queued
 * task its window, the maps when made (a refresh holds the new beside the old until they swap), the kept series its frames; the scan
 * builder's spokes are reserved by ingest as for any scan, and released (after each batch, once
 * the frames that became due have copied their windows) below the first spoke of the next frame
 * to schedule: r5_scan_builder_release_spokes. Nothing at End needs the spokes — the PACS series
 * is the frames, and realtime has no offline reconstruction at the end — so none are kept for it,
 * and the builder's bytes (and the stream's reservation, which ingest follows down) stay about
 * one window plus a batch however long the scan runs: a live scan's length is bounded by time,
 * not by the memory budget (only a kept PACS series still grows with it, by its frames). A
 * client that vanishes (or
 * cancels, or a deadline, an ingest error, the idle reaper, the server's abort) stops the frame
 * thread within one frame: r5_call_release_memory calls r5_realtime_stop, the thread frees its
 * context, plan, queue and series and gives every byte back before it drops its reference.
 *
 * Threads: begin/offer/end on ingest threads (one message of a stream at a time); the frame
 * thread; stop from any thread. rt->lock guards the queue and the flags, never held while the
 * server lock or a call's lock is taken. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "realtime_frames.h"
#include "recon/core/log.h"
#include "recon/pipeline/grid.h"
#include "recon/pipeline/nc_sense.h"
#include "server.h"

typedef struct rt_frame {
	long index;
	double t_due;      /* r5_svc_now() when its last spoke was sorted in */
	r5_array *samples; /* [1, n_read, frame_spokes, coils] */
	float *coords;     /* 3 x n_read x frame_spokes */
	long bytes;        /* reserved from the budget for this task */
	struct rt_frame *next;
} rt_frame;

struct r5_realtime {
	r5_call *call;
	long frame_spokes, frame_step;
	long image_dims[R5_DIMS]; /* Nx, Ny, 1, coils */
	long n_read;              /* samples per spoke, from the first spoke */
	int keep_series;          /* the series goes to the PACS after End */
	r5_image_set *frame_set;  /* header, geometry, fov of the frames (made at the first frame) */

	pthread_mutex_t lock;
	pthread_cond_t changed;
	rt_frame *head, *tail;
	long next_frame; /* ingest thread: the next frame to schedule */
	long n_spokes;   /* at End: the scan's spokes */
	int ended, stop, running;
	long reserved_fixed;
	long readout_reserved; /* spokes longer than the fixed part assumed (reserve_readout; rt->lock) */
	long frames_dropped;

	int iterative;      /* mode iterative: CG-SENSE per frame, warm-started, maps reused */
	long max_pending;   /* realtime.max_pending (0: never drop) */
	long pending;       /* tasks queued now (under lock) */
	r5_nufft_opts nufft; /* the frames' NUFFT (realtime.oversampling, tolerance) */

	/* frame thread only */
	r5_ctx *ctx;
	r5_grid_plan *plan;
	r5_nc_sense_frames *solver; /* iterative: CG-SENSE kept across the frames (nc_sense.h) */
	r5_array *maps;     /* ESPIRiT maps from frame maps_frame's window [Nx, Ny, 1, coils] */
	long maps_reserved;
	long maps_frame, maps_refreshed; /* the frame the maps came from; refreshes made */
	r5_array *image; /* [Nx, Ny, 1] */
	float complex *series; /* kept frames (keep_series), frames x Nx x Ny */
	long series_frames, series_capacity, series_reserved;
	double *latency; /* seconds, per frame sent */
	long frames_sent, latency_capacity;
	double compute_s;
};

/* What mode iterative's kept solver holds for frames of n_points (nc_sense.h r5_nc_sense_frames):
 * its NUFFT plan (as the grid plan's), coil images, rhs and CG's three vectors, and either the
 * NUFFT pair's samples or the Toeplitz kernel, its 2N coil-group grid and the PSF plan's (4N)^2
 * grid, 2N output and per-point tables. */
static double solver_bytes(const r5_realtime *rt, long n_points, int toeplitz)
{
	double pixels = (double)rt->image_dims[0] * (double)rt->image_dims[1], coils = (double)rt->image_dims[3];
	double cplx = sizeof(float complex), points = (double)n_points;
	double normal = toeplitz ? (4.0 * pixels * (2.0 + coils) + 16.0 * pixels) * cplx + points * (2.0 * cplx + 24.0)
				 : points * coils * cplx;
	return r5_grid_plan_bytes(rt->image_dims, n_points, &rt->nufft) + (pixels * coils + 4.0 * pixels) * cplx + normal;
}

static long rt_frame_bytes(const r5_realtime *rt, long n_read)
{
	double points = (double)n_read * (double)rt->frame_spokes;
	return (long)(points * (double)rt->image_dims[3] * sizeof(float complex) + points * 3 * sizeof(float) +
		      sizeof(rt_frame));
}

/* ---------------------------------------------------------------- header */

int r5_realtime_wanted(const r5_call *c) { return strcmp(c->params.pipeline, "realtime") == 0; }

static void *frame_main(void *arg);

/* The request's real-time parameters, checked before anything is reserved. */
static r5_status check_request(const r5_call *c, const Recon5t__V1__ScanHeader *h, const r5_header *header)
{
	R5_TRY(r5_recon_params_check_applies(&c->params, "realtime"));
	if (c->params.grid.frame_spokes < 1)
		return r5_set_error(R5_EINVAL, "pipeline realtime: frame_spokes = %d: a frame needs at least 1 spoke "
					       "(set frame_spokes, e.g. 21)", c->params.grid.frame_spokes);
	int maps = !strcmp(c->params.realtime.mode, "iterative") || c->params.realtime.coil_maps;
	if (maps && c->params.calib_size > 0 && c->params.calib_size < 8)
		return r5_set_error(R5_EINVAL, "pipeline realtime: calib = %d: the coil maps' ESPIRiT calibration width "
					       "must be at least 8", c->params.calib_size);
	if (c->params.realtime.maps_refresh > 0 && !maps)
		return r5_set_error(R5_EINVAL, "pipeline realtime: maps_refresh = %d refreshes coil maps, which only mode "
					       "iterative or coil_maps = 1 makes", c->params.realtime.maps_refresh);
	if (h->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM || h->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI)
		return r5_set_error(R5_EINVAL, "pipeline realtime sends its frames as FORMAT_FLOAT32 (the DICOM series goes "
					       "to the PACS after End): ask for FORMAT_FLOAT32");
	if (header->enc_matrix[2] > 1)
		return r5_set_error(R5_ENOTSUP, "pipeline realtime: 2D scans only (the header's encoded matrix is "
						"%ldx%ldx%ld)", header->enc_matrix[0], header->enc_matrix[1],
				    header->enc_matrix[2]);
	if (header->trajectory[0] && !strcmp(header->trajectory, "cartesian"))
		return r5_set_error(R5_EINVAL, "pipeline realtime needs a non-Cartesian scan (radial or spiral spokes); the "
					       "header's trajectory is cartesian");
	if (header->n_channels < 1)
		return r5_set_error(R5_EINVAL, "pipeline realtime: the header names no receiver channels");
	return R5_OK;
}

r5_status r5_realtime_begin(r5_call *c, const Recon5t__V1__ScanHeader *h)
{
	r5_server *s = c->server;
	const r5_header *header = r5_scan_builder_header(c->builder);
	R5_TRY(check_request(c, h, header));
	r5_realtime *rt = calloc(1, sizeof *rt);
	if (!rt)
		return r5_set_error(R5_ENOMEM, "pipeline realtime: stream state");
	rt->call = c;
	rt->frame_spokes = c->params.grid.frame_spokes;
	rt->frame_step = c->params.grid.frame_step > 0 ? c->params.grid.frame_step : c->params.grid.frame_spokes;
	for (int d = 0; d < R5_DIMS; d++)
		rt->image_dims[d] = 1;
	rt->image_dims[0] = header->enc_matrix[0];
	rt->image_dims[1] = header->enc_matrix[1];
	rt->image_dims[3] = header->n_channels;
	rt->keep_series = s->pacs_enabled && !h->skip_pacs; /* r5_pacs_out_wanted once the header is kept */
	rt->iterative = !strcmp(c->params.realtime.mode, "iterative");
	rt->max_pending = c->params.realtime.max_pending;
	char tolerance[32]; /* the decimal the client wrote, not its float: 1e-5 picks the grid pipeline's width */
	snprintf(tolerance, sizeof tolerance, "%.6g", (double)c->params.realtime.tolerance);
	rt->nufft = r5_nufft_defaults;
	rt->nufft.oversampling = c->params.realtime.oversampling;
	rt->nufft.tolerance = strtod(tolerance, NULL);
	rt->nufft.width = 0;
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->changed, NULL);
	c->realtime = rt;
	/* the plan's fixed part (grid, coil images, weighted samples) for frames of 2x oversampled
	 * spokes, the image and its pixels */
	double n_points = 2.0 * (double)rt->image_dims[0] * (double)rt->frame_spokes;
	double pixels = (double)rt->image_dims[0] * (double)rt->image_dims[1];
	double need = r5_grid_plan_bytes(rt->image_dims, (long)n_points, &rt->nufft) + 3.0 * pixels * sizeof(float complex);
	if (rt->iterative) /* the kept solver (solver_bytes); the maps (reserved when made) */
		need += solver_bytes(rt, (long)n_points, !strcmp(c->params.realtime.normal, "toeplitz"));
	long got = r5_server_reserve(s, (long)need);
	if (got < 0)
		return r5_set_error(R5_EBUSY, "memory budget: the real-time frames of this %ldx%ld, %ld-coil scan need "
					      "%.0f MiB and other jobs hold %.0f of %.0f MiB; retry later",
				    rt->image_dims[0], rt->image_dims[1], rt->image_dims[3], need / 1048576.0,
				    (double)-got / 1048576.0, (double)s->memory_budget / 1048576.0);
	rt->reserved_fixed = got;
	r5_call_ref(c); /* the frame thread's */
	rt->running = 1;
	pthread_mutex_lock(&s->lock);
	s->frame_threads++;
	pthread_mutex_unlock(&s->lock);
	pthread_t thread;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int error = pthread_create(&thread, &attr, frame_main, rt);
	pthread_attr_destroy(&attr);
	if (error) {
		rt->running = 0;
		r5_server_release(s, rt->reserved_fixed);
		rt->reserved_fixed = 0;
		pthread_mutex_lock(&s->lock);
		s->frame_threads--;
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->lock);
		r5_call_unref(c); /* not the last: the ingest thread holds one */
		return r5_set_error(R5_ENOMEM, "pipeline realtime: cannot start the frame thread");
	}
	r5_info("job %s: real time: frames of %ld spokes every %ld spokes, %ldx%ld, %ld coils (%.0f MiB reserved)%s",
		c->job_id, rt->frame_spokes, rt->frame_step, rt->image_dims[0], rt->image_dims[1], rt->image_dims[3],
		need / 1048576.0, rt->keep_series ? "; the series goes to the PACS after End" : "");
	return R5_OK;
}

/* ---------------------------------------------------------------- ingest: frames due */

/* The frames' image set (header, geometry of slice 0, FOV, provenance), without images. */
static r5_status make_frame_set(r5_realtime *rt, const r5_scan *partial)
{
	r5_image_set *set = calloc(1, sizeof *set);
	if (!set)
		return r5_set_error(R5_ENOMEM, "pipeline realtime: frame set");
	r5_status st = r5_header_copy(&set->header, &partial->header);
	if (st == R5_OK && partial->n_slices > 0 && partial->geometry) {
		set->geometry = calloc(1, sizeof *set->geometry);
		if (!set->geometry)
			st = r5_set_error(R5_ENOMEM, "pipeline realtime: frame geometry");
		else
			set->geometry[0] = partial->geometry[0];
		set->n_slices = 1;
	}
	if (st != R5_OK) {
		r5_image_set_free(set);
		return st;
	}
	for (int d = 0; d < 3; d++)
		set->fov_mm[d] = partial->header.recon_fov_mm[d];
	snprintf(set->pipeline, sizeof set->pipeline, "realtime");
	r5_recon_params_format(&rt->call->params, set->parameters, sizeof set->parameters);
	rt->frame_set = set;
	return R5_OK;
}

/* Copies frame f's window out of the builder (its spokes as they came: r5_scan_builder_spokes). */
static r5_status copy_window(r5_realtime *rt, const r5_scan_builder *b, long f, long n_read, rt_frame *task)
{
	long dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
	dims[1] = n_read, dims[2] = rt->frame_spokes, dims[3] = rt->image_dims[3];
	R5_TRY(r5_array_alloc_host(dims, &task->samples));
	task->coords = malloc((size_t)(3 * n_read * rt->frame_spokes) * sizeof(float));
	if (!task->coords)
		return r5_set_error(R5_ENOMEM, "frame %ld coordinates", f);
	return r5_scan_builder_spokes(b, r5_rt_first_spoke(f, rt->frame_step), rt->frame_spokes, task->samples,
				      task->coords);
}

static void free_task(r5_server *s, rt_frame *task)
{
	if (!task)
		return;
	r5_array_free(task->samples);
	free(task->coords);
	if (task->bytes)
		r5_server_release(s, task->bytes);
	free(task);
}

/* Frame f is due: its window copied into a task, reserved and queued for the frame thread. */
static r5_status schedule_frame(r5_call *c, r5_realtime *rt, long f, long n_read, double now)
{
	rt_frame *task = calloc(1, sizeof *task);
	if (!task)
		return r5_set_error(R5_ENOMEM, "pipeline realtime: frame %ld", f);
	task->index = f;
	task->t_due = now;
	long bytes = rt_frame_bytes(rt, n_read);
	long got = r5_server_reserve(c->server, bytes);
	if (got < 0) { /* overload: the budget cannot hold this window now (module header) */
		free(task);
		pthread_mutex_lock(&rt->lock);
		long dropped = ++rt->frames_dropped;
		pthread_mutex_unlock(&rt->lock);
		r5_warn("job %s: real-time frame %ld dropped: the memory budget cannot hold its window now (%ld "
			"dropped)", c->job_id, f, dropped);
		return R5_OK;
	}
	task->bytes = got;
	r5_status st = copy_window(rt, c->builder, f, n_read, task);
	if (st != R5_OK) {
		free_task(c->server, task);
		return r5_error_context(st, "pipeline realtime: frame %ld", f);
	}
	pthread_mutex_lock(&rt->lock);
	if (!rt->running || rt->stop) { /* the frame thread has gone (or goes): it would never free it */
		pthread_mutex_unlock(&rt->lock);
		free_task(c->server, task);
		return R5_OK; /* the stream ends: whoever stopped it says why */
	}
	if (rt->tail)
		rt->tail->next = task;
	else
		rt->head = task;
	rt->tail = task;
	rt->pending++;
	rt_frame *late = NULL; /* max_pending: the oldest waiting frame makes room (module header) */
	if (rt->max_pending > 0 && rt->pending > rt->max_pending) {
		late = rt->head;
		rt->head = late->next;
		rt->pending--;
		rt->frames_dropped++;
	}
	long dropped = rt->frames_dropped;
	pthread_cond_signal(&rt->changed);
	pthread_mutex_unlock(&rt->lock);
	if (late) {
		r5_info("job %s: real-time frame %ld dropped: %ld frames wait for the frame thread (max_pending), "
			"%ld dropped", c->job_id, late->index, rt->max_pending, dropped);
		free_task(c->server, late);
	}
	return R5_OK;
}

/* The fixed reservation assumed 2x oversampled spokes of Nx samples; longer ones (spiral
 * interleaves, or a hostile stream's 65535-sample spokes on a small matrix) reserve the rest of
 * the plan's per-frame buffers before any window of them is made. */
static r5_status reserve_readout(r5_call *c, r5_realtime *rt, long n_read)
{
	long assumed = 2 * rt->image_dims[0];
	if (n_read <= assumed)
		return R5_OK;
	double more = r5_grid_plan_bytes(rt->image_dims, n_read * rt->frame_spokes, &rt->nufft) -
		      r5_grid_plan_bytes(rt->image_dims, assumed * rt->frame_spokes, &rt->nufft);
	if (rt->iterative) /* the solve's own plan as well */
		more *= 2;
	long got = r5_server_reserve(c->server, (long)more);
	if (got < 0)
		return r5_set_error(R5_EBUSY, "memory budget: real-time frames of %ld-sample spokes need %.0f MiB more "
					      "and other jobs hold %.0f of %.0f MiB; retry later",
				    n_read, more / 1048576.0, (double)-got / 1048576.0,
				    (double)c->server->memory_budget / 1048576.0);
	pthread_mutex_lock(&rt->lock);
	int running = rt->running;
	if (running)
		rt->readout_reserved = got;
	pthread_mutex_unlock(&rt->lock);
	if (!running) /* the frame thread has ended (and given back what it held) */
		r5_server_release(c->server, got);
	return R5_OK;
}

r5_status r5_realtime_offer(r5_call *c)
{
	r5_realtime *rt = c->realtime;
	if (!rt || !c->builder)
		return R5_OK;
	const r5_scan *partial = r5_scan_builder_peek(c->builder);
	if (!r5_scan_builder_is_noncartesian(c->builder)) {
		if (partial && partial->kspace) /* imaging data on a Cartesian grid */
			return r5_set_error(R5_EINVAL, "pipeline realtime needs a non-Cartesian scan (radial spokes): the "
						       "acquisitions carry no trajectory (the scan is Cartesian)");
		return R5_OK; /* noise scans only so far */
	}
	long n_read = 0, coils = 0;
	long n_spokes = r5_scan_builder_spoke_count(c->builder, &n_read, &coils);
	if (coils != rt->image_dims[3])
		return r5_set_error(R5_EINVAL, "pipeline realtime: spokes have %ld coils, the header %ld", coils,
				    rt->image_dims[3]);
	if (!rt->frame_set && partial)
		R5_TRY(make_frame_set(rt, partial));
	if (!rt->frame_set)
		return r5_set_error(R5_EINTERNAL, "pipeline realtime: the scan builder shows no scan");
	if (!rt->n_read) {
		rt->n_read = n_read;
		R5_TRY(reserve_readout(c, rt, n_read));
	}
	long due = r5_rt_frames_due(n_spokes, rt->frame_spokes, rt->frame_step);
	double now = r5_svc_now();
	for (long f = rt->next_frame; f < due; f++)
		R5_TRY(schedule_frame(c, rt, f, n_read, now));
	if (due > rt->next_frame)
		rt->next_frame = due;
	/* every frame before next_frame has its window copied (or was dropped), and nothing at End
	 * needs spokes (the PACS series is the frames): what no later frame reads goes; ingest then
	 * gives the bytes back (r5_ingest_batch follows r5_scan_builder_bytes down) */
	return r5_scan_builder_release_spokes(c->builder, r5_rt_first_spoke(rt->next_frame, rt->frame_step));
}

/* The call's k-space reservation, after End handed the scan to us and it is freed. */
static void release_scan_reservation(r5_call *c)
{
	pthread_mutex_lock(&c->lock);
	long bytes = c->reserved_bytes;
	c->reserved_bytes = 0;
	pthread_mutex_unlock(&c->lock);
	if (bytes)
		r5_server_release(c->server, bytes);
}

r5_status r5_realtime_end(r5_call *c)
{
	r5_realtime *rt = c->realtime;
	r5_scan_builder *builder = c->builder;
	c->builder = NULL;
	/* no r5_scan_builder_finish: the spokes frames no longer needed were released as they went
	 * (module header), so there is no whole scan to assemble, and nothing here would use one */
	long n_spokes = r5_scan_builder_spoke_count(builder, NULL, NULL);
	const r5_scan *partial = r5_scan_builder_peek(builder);
	r5_status st = R5_OK;
	if (!r5_scan_builder_is_noncartesian(builder))
		st = partial && partial->kspace
			     ? r5_set_error(R5_EINVAL, "pipeline realtime needs a non-Cartesian scan (radial or spiral "
						       "spokes); this scan is Cartesian")
			     : r5_set_error(R5_EINVAL, "End: no imaging acquisition came (%ld acquisitions): no real-time "
						       "frame", r5_scan_builder_count(builder));
	else if (rt->frame_spokes > n_spokes)
		st = r5_set_error(R5_EINVAL, "End: frame_spokes = %ld is larger than the scan's %ld spokes: no real-time "
					     "frame", rt->frame_spokes, n_spokes);
	r5_scan_builder_destroy(builder);
	release_scan_reservation(c);
	if (st != R5_OK)
		return st;
	c->t_end = r5_svc_now();
	c->got_end = 1;
	pthread_mutex_lock(&rt->lock);
	rt->n_spokes = n_spokes;
	rt->ended = 1;
	pthread_cond_signal(&rt->changed);
	pthread_mutex_unlock(&rt->lock);
	r5_info("job %s: End after %ld spokes (%ld acquisitions, %.1f MiB in %.3f s): %ld real-time frames", c->job_id,
		n_spokes, c->n_acquisitions, (double)c->bytes_in / 1048576.0, c->t_end - c->t_start,
		r5_rt_frames_due(n_spokes, rt->frame_spokes, rt->frame_step));
	return R5_OK;
}

void r5_realtime_stop(r5_call *c)
{
	r5_realtime *rt = c->realtime;
	if (!rt)
		return;
	pthread_mutex_lock(&rt->lock);
	rt->stop = 1;
	pthread_cond_broadcast(&rt->changed);
	pthread_mutex_unlock(&rt->lock);
}

void r5_realtime_free(r5_realtime *rt)
{
	if (!rt)
		return;
	r5_image_set_free(rt->frame_set);
	pthread_cond_destroy(&rt->changed);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

/* ---------------------------------------------------------------- the frame thread */

/* Why the frame thread must stop now (R5_OK: go on), with the message set. */
static r5_status stop_reason(r5_realtime *rt)
{
	r5_job probe = {.call = rt->call};
	r5_status why = r5_job_stop_reason(&probe);
	if (why != R5_OK)
		return why;
	pthread_mutex_lock(&rt->lock);
	int stop = rt->stop;
	pthread_mutex_unlock(&rt->lock);
	if (stop || r5_call_is_finished(rt->call)) /* whoever stopped it says why (ingest error, End) */
		return r5_set_error(R5_ECANCELLED, "the stream ended before its real-time frames were made");
	return R5_OK;
}

/* One frame of zeros on two radial spokes before the first real one: the FFT plans (measured,
 * with the server's fft_wisdom, which takes a while the first time) and the plan's buffers are
 * made while the scan's first window still streams in, not in the first frame's latency. */
static r5_status warm_up(r5_realtime *rt)
{
	long n_read = 2 * rt->image_dims[0], dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
	dims[1] = n_read, dims[2] = 2, dims[3] = rt->image_dims[3];
	r5_array *zeros = NULL;
	float *coords = malloc(sizeof *coords * 3 * (size_t)(2 * n_read));
	r5_status st = coords ? r5_array_zeros(NULL, R5_HOST, dims, &zeros)
			      : r5_set_error(R5_ENOMEM, "pipeline realtime: warm-up frame");
	for (long j = 0; st == R5_OK && j < 2 * n_read; j++) {
		/* each spoke spans its own axis' range (a matrix may be wider than it is tall) */
		float t = (float)((j % n_read) - n_read / 2) / (float)n_read;
		coords[3 * j] = j < n_read ? t * (float)rt->image_dims[0] : 0;
		coords[3 * j + 1] = j < n_read ? 0 : t * (float)rt->image_dims[1], coords[3 * j + 2] = 0;
	}
	if (st == R5_OK)
		st = r5_grid_frame(rt->ctx, rt->plan, 2 * n_read, coords, NULL, zeros, NULL, NULL, rt->image);
	free(coords);
	r5_array_free(zeros);
	return st == R5_OK ? R5_OK : r5_error_context(st, "pipeline realtime: warm-up frame");
}

/* The frame thread's context, plan and image. A back end the NUFFT does not run on (a device
 * context: nufft.h) gives way to the CPU, with a log line. */
static r5_status setup(r5_realtime *rt)
{
	r5_server *s = rt->call->server;
	const r5_nufft_opts opts = rt->nufft;
	R5_TRY(r5_ctx_create(&rt->ctx, s->worker_backend, 0));
	r5_status st = r5_grid_plan_make(rt->ctx, rt->image_dims, &opts, &rt->plan);
	if (st == R5_ENOTSUP && strcmp(r5_ctx_backend_name(rt->ctx), "cpu")) {
		r5_info("job %s: real-time frames on the CPU: %s", rt->call->job_id, r5_last_error());
		r5_ctx_destroy(rt->ctx);
		rt->ctx = NULL;
		R5_TRY(r5_ctx_create(&rt->ctx, "cpu", 0));
		st = r5_grid_plan_make(rt->ctx, rt->image_dims, &opts, &rt->plan);
	}
	R5_TRY(st);
	long dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = d < 3 ? rt->image_dims[d] : 1;
	R5_TRY(r5_array_alloc_host(dims, &rt->image));
	if (rt->iterative) {
		const r5_realtime_params *p = &rt->call->params.realtime;
		r5_nc_sense_opts sopts = r5_nc_sense_defaults;
		sopts.iters = p->iters;
		sopts.normal = strcmp(p->normal, "toeplitz") ? R5_NC_NORMAL_NUFFT : R5_NC_NORMAL_TOEPLITZ;
		sopts.nufft = rt->nufft;
		R5_TRY(r5_nc_sense_frames_make(rt->ctx, rt->image_dims, &sopts, &rt->solver));
	}
	return warm_up(rt);
}

/* Appends the frame to the series kept for the PACS, reserving as it grows (doubling). */
static r5_status keep_frame(r5_realtime *rt)
{
	long voxels = rt->image_dims[0] * rt->image_dims[1];
	if (rt->series_frames == rt->series_capacity) {
		long capacity = rt->series_capacity ? 2 * rt->series_capacity : 16;
		long more = (capacity - rt->series_capacity) * voxels * (long)sizeof(float complex);
		long got = r5_server_reserve(rt->call->server, more);
		if (got < 0)
			return r5_set_error(R5_EBUSY, "memory budget: the real-time series kept for the PACS (%ld frames of "
						      "%ldx%ld) cannot grow by %.0f MiB; retry with skip_pacs or later",
					    rt->series_frames, rt->image_dims[0], rt->image_dims[1], (double)more / 1048576.0);
		float complex *grown = realloc(rt->series, (size_t)(capacity * voxels) * sizeof(float complex));
		if (!grown) {
			r5_server_release(rt->call->server, got);
			return r5_set_error(R5_ENOMEM, "pipeline realtime: the series kept for the PACS (%ld frames)", capacity);
		}
		rt->series = grown;
		rt->series_capacity = capacity;
		rt->series_reserved += got;
	}
	memcpy(rt->series + rt->series_frames * voxels, rt->image->data, (size_t)voxels * sizeof(float complex));
	rt->series_frames++;
	return R5_OK;
}

static r5_status record_latency(r5_realtime *rt, double seconds)
{
	if (rt->frames_sent == rt->latency_capacity) {
		long capacity = rt->latency_capacity ? 2 * rt->latency_capacity : 256;
		double *grown = realloc(rt->latency, (size_t)capacity * sizeof *grown);
		if (!grown)
			return r5_set_error(R5_ENOMEM, "pipeline realtime: frame latencies");
		rt->latency = grown;
		rt->latency_capacity = capacity;
	}
	rt->latency[rt->frames_sent++] = seconds;
	return R5_OK;
}

/* The output kinds the frames go out as (magnitude by default; a g-factor is not made). */
static size_t frame_kinds(const r5_call *c, Recon5t__V1__OutputKind kinds[4])
{
	const Recon5t__V1__ScanHeader *h = c->header_message->header;
	size_t n = 0;
	for (size_t i = 0; i < h->n_outputs && n < 4; i++)
		if (h->outputs[i] != RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR)
			kinds[n++] = h->outputs[i];
	if (!h->n_outputs)
		kinds[n++] = RECON5T__V1__OUTPUT_KIND__OUTPUT_MAGNITUDE;
	return n;
}

/* The solver's stop hook: the stream's stop reasons, checked every CG iteration. */
static int solve_hook(void *user, const char *stage, double fraction, r5_status *stop_status)
{
	(void)stage, (void)fraction;
	r5_status why = stop_reason(user);
	if (why == R5_OK)
		return 0;
	*stop_status = why;
	return 1;
}

/* The coil maps from this frame's window: ESPIRiT (width calib, 24 by default) on its gridded centre
 * (nc_sense.h), reserved from the budget. coords: the NUFFT's wrapped ones. A refresh (maps
 * already made) reserves the new maps beside the old until they replace them; a refresh that
 * fails keeps the old maps and says so (R5_OK), the first maps failing fail the stream. */
static r5_status make_maps(r5_realtime *rt, const rt_frame *task, long n_points, const float *coords)
{
	r5_call *c = rt->call;
	int refresh = rt->maps != NULL;
	long calib = c->params.calib_size > 0 ? c->params.calib_size : 24;
	calib = calib < rt->image_dims[0] ? calib : rt->image_dims[0];
	calib = calib < rt->image_dims[1] ? calib : rt->image_dims[1];
	long bytes = (long)((double)r5_array_size(rt->image) * (double)rt->image_dims[3] * sizeof(float complex));
	long got = r5_server_reserve(c->server, bytes);
	r5_array *maps = NULL;
	r5_status st = got < 0 ? r5_set_error(R5_EBUSY, "memory budget: the coil maps of the real-time frames (%.0f MiB) "
							 "do not fit now; retry later", (double)bytes / 1048576.0)
			       : r5_nc_maps_espirit(rt->ctx, rt->image_dims, n_points, coords, task->samples, (int)calib, &maps);
	if (st != R5_OK) {
		if (got >= 0)
			r5_server_release(c->server, got);
		if (!refresh)
			return got < 0 ? st : r5_error_context(st, "coil maps from frame %ld's %ld spokes", task->index,
								rt->frame_spokes);
		r5_warn("job %s: real-time coil maps not refreshed at frame %ld (those of frame %ld kept): %s", c->job_id,
			task->index, rt->maps_frame, r5_last_error());
		return R5_OK;
	}
	if (refresh) {
		r5_array_free(rt->maps);
		r5_server_release(c->server, rt->maps_reserved);
		rt->maps_refreshed++;
	}
	rt->maps = maps;
	rt->maps_reserved = got;
	rt->maps_frame = task->index;
	if (!refresh)
		r5_info("job %s: real-time coil maps from frame %ld's %ld spokes (ESPIRiT, calibration %ld), %s", c->job_id,
			task->index, rt->frame_spokes, calib,
			c->params.realtime.maps_refresh ? "refreshed every maps_refresh frames" : "reused");
	return R5_OK;
}

/* maps_refresh: after frame task was sent, new maps are due when maps_refresh frames have passed
 * since the last ones and no frame waits (a refresh, one ESPIRiT, then delays only a frame that
 * comes due while it runs; under a backlog it waits for the queue to empty). */
static int refresh_due(r5_realtime *rt, const rt_frame *task)
{
	long every = rt->call->params.realtime.maps_refresh;
	if (every <= 0 || !rt->maps || task->index - rt->maps_frame < every)
		return 0;
	pthread_mutex_lock(&rt->lock);
	long pending = rt->pending;
	pthread_mutex_unlock(&rt->lock);
	return pending == 0;
}

/* A copy of the task's coordinates wrapped to the NUFFT's [-N/2, N/2) (*out: free it). */
static r5_status wrapped_coords(const r5_realtime *rt, const rt_frame *task, long n_points, float **out)
{
	float *wrapped = malloc(sizeof *wrapped * 3 * (size_t)n_points);
	if (!wrapped)
		return r5_set_error(R5_ENOMEM, "pipeline realtime: coordinates for the coil maps");
	memcpy(wrapped, task->coords, sizeof *wrapped * 3 * (size_t)n_points);
	r5_grid_wrap_coords(rt->image_dims, n_points, wrapped);
	*out = wrapped;
	return R5_OK;
}

/* Mode grid: r5_grid_frame, rss or (coil_maps=1) the maps' SENSE combination. */
static r5_status grid_frame(r5_realtime *rt, const rt_frame *task, long n_points)
{
	if (rt->call->params.realtime.coil_maps && !rt->maps) {
		float *wrapped = NULL;
		R5_TRY(wrapped_coords(rt, task, n_points, &wrapped));
		r5_status st = make_maps(rt, task, n_points, wrapped);
		free(wrapped);
		R5_TRY(st);
	}
	return r5_grid_frame(rt->ctx, rt->plan, n_points, task->coords, NULL, task->samples, rt->maps, NULL, rt->image);
}

/* Mode iterative: a few CG-SENSE iterations (nc_sense.h) warm-started from the previous frame,
 * through the solver kept across frames, with the maps of frame maps_frame. */
static r5_status iterate_frame(r5_realtime *rt, rt_frame *task, long n_points)
{
	r5_grid_wrap_coords(rt->image_dims, n_points, task->coords); /* the NUFFT's [-N/2, N/2) */
	if (!rt->maps)
		R5_TRY(make_maps(rt, task, n_points, task->coords));
	r5_progress hook = {.report = solve_hook, .user = rt};
	int warm = rt->frames_sent > 0; /* rt->image holds the previous frame */
	return r5_nc_sense_frames_solve(rt->ctx, rt->solver, n_points, task->coords, task->samples, rt->maps, warm,
					&hook, rt->image);
}

/* maps_refresh after the frame went out (refresh_due): the maps from its window */
static r5_status after_frame(r5_realtime *rt, const rt_frame *task, long n_points)
{
	if (!refresh_due(rt, task))
		return R5_OK;
	if (rt->iterative) /* iterate_frame wrapped the task's coordinates */
		return make_maps(rt, task, n_points, task->coords);
	float *wrapped = NULL;
	R5_TRY(wrapped_coords(rt, task, n_points, &wrapped));
	r5_status st = make_maps(rt, task, n_points, wrapped);
	free(wrapped);
	return st;
}

static r5_status make_frame(r5_realtime *rt, rt_frame *task)
{
	r5_call *c = rt->call;
	double t0 = r5_svc_now();
	long n_points = task->samples->dims[1] * task->samples->dims[2];
	r5_status st = rt->iterative ? iterate_frame(rt, task, n_points) : grid_frame(rt, task, n_points);
	if (st != R5_OK)
		return r5_error_context(st, "frame %ld", task->index);
	rt->compute_s += r5_svc_now() - t0;
	Recon5t__V1__OutputKind kinds[4];
	size_t n_kinds = frame_kinds(c, kinds);
	for (size_t k = 0; k < n_kinds; k++)
		if (!r5_images_out_frame(c, rt->frame_set, rt->image, task->index, kinds[k], (uint32_t)task->index + 1))
			return r5_set_error(R5_ENOMEM, "frame %ld could not be encoded", task->index);
	R5_TRY(record_latency(rt, r5_svc_now() - task->t_due));
	if (rt->keep_series)
		R5_TRY(keep_frame(rt));
	return after_frame(rt, task, n_points);
}

/* Frames in order until End's queue is empty (R5_OK) or the stream stops. */
static r5_status frame_loop(r5_realtime *rt)
{
	r5_server *s = rt->call->server;
	for (;;) {
		pthread_mutex_lock(&rt->lock);
		while (!rt->head && !rt->ended && !rt->stop) {
			gpr_timespec wake = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(100, GPR_TIMESPAN));
			struct timespec until = {.tv_sec = wake.tv_sec, .tv_nsec = wake.tv_nsec};
			pthread_cond_timedwait(&rt->changed, &rt->lock, &until);
			if (rt->stop)
				break;
			pthread_mutex_unlock(&rt->lock);
			R5_TRY(stop_reason(rt));
			pthread_mutex_lock(&rt->lock);
		}
		rt_frame *task = rt->stop ? NULL : rt->head;
		if (task) {
			rt->head = task->next;
			if (!rt->head)
				rt->tail = NULL;
			rt->pending--;
		}
		int done = !task && !rt->stop;
		pthread_mutex_unlock(&rt->lock);
		if (done)
			return R5_OK; /* ended, and every frame made */
		r5_status st = stop_reason(rt);
		if (st == R5_OK)
			st = make_frame(rt, task);
		free_task(s, task);
		if (st != R5_OK)
			return st;
	}
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The q-quantile of the latencies (nearest rank); 0 without frames. */
static double quantile(const double *sorted, long n, double q)
{
	if (n <= 0)
		return 0;
	long rank = (long)ceil(q * (double)n) - 1;
	return sorted[rank < 0 ? 0 : rank >= n ? n - 1 : rank];
}

/* The series as one image set (frames in dim 10, as the grid pipeline's) for the PACS push. */
static r5_status series_set(r5_realtime *rt, r5_image_set **out)
{
	r5_image_set *set = calloc(1, sizeof *set);
	if (!set)
		return r5_set_error(R5_ENOMEM, "pipeline realtime: series");
	const r5_image_set *f = rt->frame_set;
	r5_status st = r5_header_copy(&set->header, &f->header);
	if (st == R5_OK && f->n_slices) {
		set->geometry = calloc(1, sizeof *set->geometry);
		if (set->geometry) {
			set->geometry[0] = f->geometry[0];
			set->n_slices = 1;
		} else {
			st = r5_set_error(R5_ENOMEM, "pipeline realtime: series geometry");
		}
	}
	long dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = d < 3 ? rt->image_dims[d] : 1;
	dims[R5_DIM_TIME] = rt->series_frames;
	if (st == R5_OK)
		st = r5_array_view(R5_HOST, NULL, dims, rt->series, &set->images);
	if (st != R5_OK) {
		r5_image_set_free(set);
		return st;
	}
	memcpy(set->fov_mm, f->fov_mm, sizeof set->fov_mm);
	memcpy(set->pipeline, f->pipeline, sizeof set->pipeline);
	memcpy(set->parameters, f->parameters, sizeof set->parameters);
	snprintf(set->backend, sizeof set->backend, "%s", r5_ctx_backend_name(rt->ctx));
	*out = set;
	return R5_OK;
}

/* After End: the PACS push of the series (when wanted), Completed, status OK. */
static void finish(r5_realtime *rt)
{
	r5_call *c = rt->call;
	r5_pacs_outcome pacs;
	memset(&pacs, 0, sizeof pacs);
	if (rt->keep_series && rt->series_frames > 0) {
		r5_image_set *set = NULL;
		if (series_set(rt, &set) == R5_OK) {
			uint32_t none = 0;
			r5_pacs_out_job(c, set, 0, &none, &pacs); /* told in Completed, never an error */
		} else {
			pacs.attempted = 1;
			snprintf(pacs.message, sizeof pacs.message, "the series could not be assembled: %s", r5_last_error());
		}
		r5_image_set_free(set);
	}
	qsort(rt->latency, (size_t)rt->frames_sent, sizeof *rt->latency, compare_double);
	Recon5t__V1__OutputKind kinds[4];
	size_t n_kinds = frame_kinds(c, kinds);
	Recon5t__V1__Completed done = RECON5T__V1__COMPLETED__INIT;
	Recon5t__V1__ReconEvent event = RECON5T__V1__RECON_EVENT__INIT;
	Recon5t__V1__StageTiming timing = RECON5T__V1__STAGE_TIMING__INIT, *timings[1] = {&timing};
	timing.stage = "realtime-frames";
	timing.seconds = rt->compute_s;
	done.job_id = c->job_id;
	done.n_timings = 1;
	done.timings = timings;
	done.n_images = (uint32_t)(rt->frames_sent * (long)n_kinds);
	done.backend = (char *)r5_ctx_backend_name(rt->ctx);
	done.pipeline = "realtime";
	done.parameters = rt->frame_set ? rt->frame_set->parameters : "";
	done.ingest_seconds = c->t_end - c->t_start;
	done.frames_sent = (uint32_t)rt->frames_sent;
	done.frames_dropped = (uint32_t)rt->frames_dropped;
	done.frame_latency_p50 = quantile(rt->latency, rt->frames_sent, 0.50);
	done.frame_latency_p99 = quantile(rt->latency, rt->frames_sent, 0.99);
	if (pacs.attempted) {
		done.pacs_stored = (uint32_t)pacs.result.n_stored;
		done.pacs_spooled = (uint32_t)pacs.result.n_spooled;
		done.pacs_failed = (uint32_t)pacs.result.n_failed;
		done.pacs_message = pacs.message;
	}
	event.kind_case = RECON5T__V1__RECON_EVENT__KIND_COMPLETED;
	event.completed = &done;
	/* logged before the status goes out: a client that reads the log after its call has it */
	r5_info("job %s: real time done: %ld frames sent, %ld dropped, latency in the server p50 %.1f ms p99 %.1f ms, "
		"%.3f s making frames, coil maps refreshed %ld times", c->job_id, rt->frames_sent, rt->frames_dropped,
		1e3 * done.frame_latency_p50, 1e3 * done.frame_latency_p99, rt->compute_s, rt->maps_refreshed);
	r5_call_send_event(c, &event);
	r5_call_finish(c, GRPC_STATUS_OK, "");
}

/* Everything the thread holds goes back: tasks still queued, plan, context, series, budget. */
static void cleanup(r5_realtime *rt)
{
	r5_server *s = rt->call->server;
	pthread_mutex_lock(&rt->lock);
	rt_frame *task = rt->head;
	rt->head = rt->tail = NULL;
	rt->running = 0;
	long readout = rt->readout_reserved;
	rt->readout_reserved = 0;
	pthread_mutex_unlock(&rt->lock);
	while (task) {
		rt_frame *next = task->next;
		free_task(s, task);
		task = next;
	}
	r5_grid_plan_destroy(rt->plan);
	rt->plan = NULL;
	r5_nc_sense_frames_destroy(rt->solver);
	rt->solver = NULL;
	r5_array_free(rt->maps);
	rt->maps = NULL;
	r5_array_free(rt->image);
	rt->image = NULL;
	r5_ctx_destroy(rt->ctx);
	rt->ctx = NULL;
	free(rt->series);
	rt->series = NULL;
	free(rt->latency);
	rt->latency = NULL;
	long bytes = rt->reserved_fixed + rt->series_reserved + rt->maps_reserved + readout;
	rt->reserved_fixed = rt->series_reserved = rt->maps_reserved = 0;
	if (bytes)
		r5_server_release(s, bytes);
}

static void *frame_main(void *arg)
{
	r5_realtime *rt = arg;
	r5_call *c = rt->call;
	r5_server *s = c->server;
#ifdef _OPENMP
	/* this thread's parallel regions and its context's FFTW plans (realtime_threads): on a loaded
	 * machine one thread has no barrier to wait at for a descheduled partner */
	if (s->config.realtime_threads > 0)
		omp_set_num_threads(s->config.realtime_threads);
#endif
	r5_status st = setup(rt);
	if (st == R5_OK)
		st = frame_loop(rt);
	pthread_mutex_lock(&rt->lock);
	int stopped = rt->stop; /* by r5_call_release_memory: its caller ends the call with the reason */
	long dropped = rt->frames_dropped;
	pthread_mutex_unlock(&rt->lock);
	/* a job that returns OK returns images: every frame dropped (the budget never held a window)
	 * is an overload, said as such */
	if (st == R5_OK && rt->frames_sent == 0 && dropped > 0)
		st = r5_set_error(R5_EBUSY, "all %ld real-time frames were dropped: the memory budget held no window "
					    "(other jobs hold it); retry later", dropped);
	if (st == R5_OK)
		finish(rt);
	else if (!stopped && !r5_call_is_finished(c))
		r5_call_fail(c, st, "realtime");
	if (st != R5_OK)
		r5_info("job %s: real time stopped after %ld frames: %s", c->job_id, rt->frames_sent, r5_last_error());
	cleanup(rt);
	r5_call_unref(c); /* may destroy the call, and rt with it */
	/* counted down last: r5_server_stop waits for 0 before the server's state goes */
	pthread_mutex_lock(&s->lock);
	s->frame_threads--;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void r5_realtime_wait_all(r5_server *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->frame_threads > 0)
		pthread_cond_wait(&s->changed, &s->lock);
	pthread_mutex_unlock(&s->lock);
}
