/* Early calibration (issue 13, item 6): the coil maps of a one-frame sense/cs scan are computed
 * while the rest of the scan streams in, so that the time from the last acquisition to the
 * images is the solve's, not calibration's too.
 *
 * After every batch the ingest thread calls r5_early_calib_offer. The first time the scan's
 * calibration block (recon/pipeline/calibration.h: the centred W x W ky-kz window, all
 * readouts and channels) is fully sampled — and the lines are in proportion to the header's
 * grid, as the builder demands at End — the block and the noise scan are copied and a
 * calibration task joins the job queue with the scan's priority, so FIFO puts it ahead of the
 * scan's own job. A worker runs it like a job (r5_early_calib_run), on its own context, with
 * the memory it needs reserved from the budget (an upper bound: the sense estimate of the scan
 * less its k-space; when the budget cannot hold it the task is skipped, never failed), its
 * stop hook ending it when the client cancels or vanishes, the deadline passes, the stream
 * fails or is reaped for idling, or the server aborts. The result (maps on the host and the
 * copied block, which r5_recon_run_calibrated compares with the finished scan) stays with the
 * call, its budget shrunk to those bytes, until the job takes it (r5_early_calib_take: it
 * waits while the task is still running, with Progress "calibration"). r5_call_release_memory
 * (job end, ingest error, cancel, idle timeout) and the call's destruction free whatever is
 * left. An early calibration that fails or stops is only logged: the job computes its own and
 * reports any error then, exactly as without early calibration (config early_calibration = 0).
 *
 * States (c->early_state, under the server lock): NONE until offered; QUEUED; RUNNING; DONE
 * (c->early holds the result); OFF (not for this scan, failed, skipped or taken — final).
 * Threads: offer on ingest threads (one message of a stream in flight, so never concurrently
 * for one call); run on workers; take on the worker that runs the job; release anywhere.
 * Blocks only on the server lock (and take on its condition variable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "recon/core/log.h"
#include "recon/pipeline/calibration.h"
#include "recon/pipeline/memory_estimate.h"
#include "server.h"

enum { EARLY_NONE = 0, EARLY_QUEUED, EARLY_RUNNING, EARLY_DONE, EARLY_OFF };

static void set_state(r5_call *c, int state)
{
	pthread_mutex_lock(&c->server->lock);
	c->early_state = state;
	pthread_cond_broadcast(&c->server->changed);
	pthread_mutex_unlock(&c->server->lock);
}

/* The pipeline the job will run when it is one whose maps the calibration makes: sense or cs
 * by name, or auto for a scan whose header says it is accelerated (auto then picks one of
 * them; without that, auto's choice depends on the finished mask). NULL: none. */
static const char *calibrated_pipeline(const r5_call *c, const r5_scan *partial)
{
	const char *name = c->params.pipeline;
	if (!strcmp(name, "sense") || !strcmp(name, "cs"))
		return name;
	if (!strcmp(name, "auto") && (partial->header.accel[0] > 1 || partial->header.accel[1] > 1))
		return "sense";
	return NULL;
}

/* What the task reserves while it runs: the sense estimate of the scan without its k-space
 * (already reserved by ingest) — ESPIRiT's tables and workspace and the maps, and more. */
static long calibration_need(const r5_call *c, const r5_scan *partial)
{
	r5_recon_params p = c->params;
	snprintf(p.pipeline, sizeof p.pipeline, "sense");
	double total = 0;
	if (r5_recon_memory_estimate(partial, &p, &total) != R5_OK)
		return -1;
	double kspace = (double)r5_array_size(partial->kspace) * (double)sizeof(float complex);
	return total > kspace ? (long)(total - kspace) : 0;
}

/* The copies the task computes from, and its job. */
static r5_status make_task(r5_call *c, const r5_scan *partial, r5_job **out)
{
	r5_array *noise = NULL;
	R5_TRY(r5_scan_builder_noise(c->builder, &noise));
	r5_scan view = *partial;
	view.noise = noise;
	r5_calibration *cal = NULL;
	r5_status s = r5_calibration_input_copy(&view, &c->params, &cal);
	r5_array_free(noise);
	long need = s == R5_OK ? calibration_need(c, partial) : 0;
	if (s == R5_OK && need < 0)
		s = R5_EINVAL;
	r5_job *task = s == R5_OK ? calloc(1, sizeof *task) : NULL;
	if (s == R5_OK && !task)
		s = r5_set_error(R5_ENOMEM, "early calibration task");
	if (s != R5_OK) {
		r5_calibration_free(cal);
		return s;
	}
	task->calibration = 1;
	task->early_input = cal;
	task->call = c;
	task->need_bytes = need + r5_calibration_bytes(cal);
	task->scan_bytes = (long)((double)r5_array_size(partial->kspace) * (double)sizeof(float complex));
	task->priority = c->header_message && c->header_message->header->priority ==
					RECON5T__V1__PRIORITY__PRIORITY_RESEARCH ? 1 : 0;
	task->t_queued = r5_svc_now();
	*out = task;
	return R5_OK;
}

void r5_early_calib_offer(r5_call *c)
{
	r5_server *s = c->server;
	pthread_mutex_lock(&s->lock);
	int state = c->early_state;
	pthread_mutex_unlock(&s->lock);
	if (state != EARLY_NONE || !c->builder)
		return;
	const r5_scan *partial = r5_scan_builder_peek(c->builder);
	if (!partial || !partial->kspace)
		return; /* no imaging data yet */
	const char *pipeline = calibrated_pipeline(c, partial);
	if (!s->config.early_calibration || !pipeline || !r5_calibration_applies(partial, pipeline)) {
		set_state(c, EARLY_OFF);
		return;
	}
	if (!r5_calibration_block_complete(partial, &c->params) || r5_scan_builder_check_proportion(c->builder) != R5_OK)
		return; /* not yet */
	r5_job *task = NULL;
	r5_status made = make_task(c, partial, &task);
	if (made != R5_OK) {
		r5_info("job %s: no early calibration: %s", c->job_id, r5_last_error());
		set_state(c, EARLY_OFF);
		return;
	}
	r5_call_ref(c);
	pthread_mutex_lock(&s->lock);
	c->early_state = EARLY_QUEUED;
	pthread_mutex_unlock(&s->lock);
	r5_info("job %s: calibration block complete after %ld acquisitions: coil maps queued (%.0f MiB reserved when "
		"they run)", c->job_id, c->n_acquisitions, (double)task->need_bytes / 1048576.0);
	if (r5_jobs_submit_calibration(s, task) != R5_OK) {
		r5_info("job %s: no early calibration: the queue is full or no worker is usable", c->job_id);
		set_state(c, EARLY_OFF);
		r5_early_calib_discard(task);
	}
}

void r5_early_calib_discard(r5_job *task)
{
	if (!task)
		return;
	r5_calibration_free(task->early_input);
	r5_call_unref(task->call);
	free(task);
}

/* The task's stop hook: its call is gone or going. */
static int stop_hook(void *user, const char *stage, double fraction, r5_status *stop_status)
{
	r5_call *c = user;
	(void)stage, (void)fraction;
	int deadline = gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), c->deadline) >= 0;
	if (deadline || r5_call_is_cancelled(c) || r5_call_is_finished(c) || atomic_load(&c->idle_expired) ||
	    atomic_load(&c->server->aborting)) {
		*stop_status = deadline ? R5_ETIMEDOUT : R5_ECANCELLED;
		return 1;
	}
	return 0;
}

/* Reserves the task's need when the budget also holds the scan's whole k-space on top (part of
 * it is reserved already and so counted twice: the stream's ingest must not be starved by its
 * own calibration). Returns the bytes reserved, 0 when they do not fit. */
static long reserve_beside_scan(r5_server *s, const r5_job *task)
{
	pthread_mutex_lock(&s->lock);
	int fits = (double)s->memory_in_use + (double)task->need_bytes + (double)task->scan_bytes <=
		   (double)s->memory_budget;
	if (fits)
		s->memory_in_use += task->need_bytes;
	pthread_mutex_unlock(&s->lock);
	return fits ? task->need_bytes : 0;
}

void r5_early_calib_run(r5_ctx *ctx, r5_job *task)
{
	r5_call *c = task->call;
	r5_server *s = c->server;
	pthread_mutex_lock(&s->lock);
	int go = c->early_state == EARLY_QUEUED; /* else the job took over (or the stream ended) */
	if (go)
		c->early_state = EARLY_RUNNING;
	pthread_mutex_unlock(&s->lock);
	r5_progress hook = {.report = stop_hook, .user = c};
	r5_status status = R5_OK;
	r5_status dummy;
	if (go && stop_hook(c, NULL, 0, &dummy))
		go = 0;
	long reserved = go ? reserve_beside_scan(s, task) : 0;
	if (go && reserved <= 0) {
		r5_info("job %s: early calibration skipped: the memory budget cannot hold its %.0f MiB beside the rest "
			"of the scan now", c->job_id, (double)task->need_bytes / 1048576.0);
		go = 0, reserved = 0;
	}
	double t0 = r5_svc_now();
	if (go) {
		r5_info("job %s: coil maps being computed (%.0f MiB reserved)", c->job_id, (double)reserved / 1048576.0);
		r5_clear_error();
		status = r5_calibration_compute(ctx, task->early_input, &hook, 1);
	}
	int keep = go && status == R5_OK && !stop_hook(c, NULL, 1, &dummy);
	long held = 0;
	pthread_mutex_lock(&s->lock);
	keep = keep && c->early_state == EARLY_RUNNING; /* else the job gave up waiting */
	if (keep) {
		held = r5_calibration_bytes(task->early_input);
		held = held < reserved ? held : reserved;
		c->early = task->early_input;
		c->early_reserved += held;
		task->early_input = NULL;
	}
	if (c->early_state == EARLY_RUNNING)
		c->early_state = keep ? EARLY_DONE : EARLY_OFF;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	if (reserved > held)
		r5_server_release(s, reserved - held);
	if (keep)
		r5_info("job %s: coil maps computed while the scan streams in, in %.3f s", c->job_id, r5_svc_now() - t0);
	else if (go)
		r5_info("job %s: early calibration %s: %s", c->job_id, status == R5_OK ? "dropped" : "stopped",
			status == R5_OK ? "the stream ended first" : r5_last_error());
	r5_early_calib_discard(task);
}

r5_calibration *r5_early_calib_take(r5_job *job)
{
	r5_call *c = job->call;
	r5_server *s = c->server;
	int told = 0;
	pthread_mutex_lock(&s->lock);
	while (c->early_state == EARLY_RUNNING && r5_job_stop_reason(job) == R5_OK) {
		if (!told) {
			pthread_mutex_unlock(&s->lock);
			r5_info("job %s: waits for the coil maps being computed", c->job_id);
			r5_job_send_progress(job, "calibration", 0.0);
			told = 1;
			pthread_mutex_lock(&s->lock);
			continue;
		}
		gpr_timespec wake = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(100, GPR_TIMESPAN));
		struct timespec until = {.tv_sec = wake.tv_sec, .tv_nsec = wake.tv_nsec};
		pthread_cond_timedwait(&s->changed, &s->lock, &until);
	}
	r5_calibration *cal = c->early_state == EARLY_DONE ? c->early : NULL;
	if (cal)
		c->early = NULL;
	job->early_held = cal ? c->early_reserved : 0;
	/* QUEUED (not reached yet) or RUNNING (the job stops): the task drops its result itself */
	c->early_state = EARLY_OFF;
	pthread_mutex_unlock(&s->lock);
	return cal;
}

void r5_early_calib_release(r5_call *c)
{
	r5_server *s = c->server;
	pthread_mutex_lock(&s->lock);
	r5_calibration *cal = c->early;
	long bytes = c->early_reserved;
	c->early = NULL;
	c->early_reserved = 0;
	if (c->early_state == EARLY_DONE)
		c->early_state = EARLY_OFF;
	pthread_mutex_unlock(&s->lock);
	r5_calibration_free(cal);
	if (bytes)
		r5_server_release(s, bytes);
}
