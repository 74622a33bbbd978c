/* Jobs: a bounded queue with two priorities (console before research, FIFO within each) served
 * by worker threads, one per GPU (or cpu_workers on the CPU), each owning an r5_ctx. A worker
 * runs r5_recon_run with a progress hook that sends Progress events and stops the run when the
 * client cancelled (R5_ECANCELLED), the call's deadline passed (R5_ETIMEDOUT) or the server's
 * drain grace ran out; then it streams the images back (images_out.c) and ends the call.
 *
 * Device loss: a job that fails on a context its back end has retired (R5_EDEVICE_LOST, a
 * sticky CUDA error) fails with that status (UNAVAILABLE) naming the error; the worker then
 * destroys its context and makes a new one. A worker whose context cannot be made (at start or
 * on a rebuild) leaves the pool with a log line; when none is left, queued and new jobs fail
 * with UNAVAILABLE and health says NOT_SERVING (capabilities.c). */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "recon/backends/backends.h"
#include "recon/core/backend.h"
#include "recon/core/log.h"
#include "recon/pipeline/calibration.h"
#include "server.h"
#include "metrics.h"

void r5_jobs_send_results(r5_job *job, const r5_image_set *set);

long r5_server_reserve(r5_server *s, long bytes)
{
	pthread_mutex_lock(&s->lock);
	long in_use = s->memory_in_use;
	int ok = in_use + bytes <= s->memory_budget;
	if (ok)
		s->memory_in_use += bytes;
	pthread_mutex_unlock(&s->lock);
	return ok ? bytes : -(in_use > 0 ? in_use : 1);
}

void r5_server_release(r5_server *s, long bytes)
{
	pthread_mutex_lock(&s->lock);
	s->memory_in_use -= bytes;
	pthread_cond_broadcast(&s->changed); /* a worker may be waiting for memory */
	pthread_mutex_unlock(&s->lock);
}

r5_status r5_jobs_submit_calibration(r5_server *s, r5_job *task)
{
	pthread_mutex_lock(&s->lock);
	int ok = s->usable_workers > 0 && !s->stop_workers && s->calibrations_queued < s->config.max_queue;
	if (ok) {
		int p = task->priority ? 1 : 0;
		if (s->queue_tail[p])
			s->queue_tail[p]->next = task;
		else
			s->queue_head[p] = task;
		s->queue_tail[p] = task;
		s->calibrations_queued++;
		pthread_cond_broadcast(&s->changed);
	}
	pthread_mutex_unlock(&s->lock);
	return ok ? R5_OK : R5_EBUSY;
}

r5_status r5_jobs_submit(r5_server *s, r5_job *job, int *position)
{
	pthread_mutex_lock(&s->lock);
	if (s->usable_workers == 0 && !s->stop_workers) {
		r5_status st = r5_set_error(R5_EDEVICE_LOST, "no usable worker, the server is not serving: %s",
					    s->no_worker_reason);
		pthread_mutex_unlock(&s->lock);
		return st;
	}
	if (s->queued >= s->config.max_queue || s->stop_workers) {
		pthread_mutex_unlock(&s->lock);
		return R5_EBUSY;
	}
	int p = job->priority ? 1 : 0;
	*position = s->running + s->queued;
	if (s->queue_tail[p])
		s->queue_tail[p]->next = job;
	else
		s->queue_head[p] = job;
	s->queue_tail[p] = job;
	s->queued++;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	return R5_OK;
}

static r5_job *pop(r5_server *s)
{
	pthread_mutex_lock(&s->lock);
	while (!s->queue_head[0] && !s->queue_head[1] && !s->stop_workers)
		pthread_cond_wait(&s->changed, &s->lock);
	r5_job *job = NULL;
	for (int p = 0; p < 2 && !job; p++) {
		job = s->queue_head[p];
		if (job) {
			s->queue_head[p] = job->next;
			if (!s->queue_head[p])
				s->queue_tail[p] = NULL;
			if (job->calibration)
				s->calibrations_queued--;
			else
				s->queued--;
			s->running++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return job;
}

/* How far ahead of our copy of the deadline a client-side expiry can arrive as a cancel: our copy
 * starts when the call reaches us, later than the client's by the transit and by the time the
 * completion queue takes to hand it over, which reached more than a second under ThreadSanitizer
 * on a loaded 2-core machine (250 ms was too little there). A true cancel this close to the
 * deadline is reported as the deadline. */
#define R5_DEADLINE_SLACK_MS 2000

/* Why a job must stop now (R5_OK: go on), with the message set. */
r5_status r5_job_stop_reason(r5_job *job)
{
	r5_call *c = job->call;
	gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
	if (atomic_load(&c->admin_cancelled))
		return r5_set_error(R5_ECANCELLED, "cancelled by admin %s", c->cancelled_by);
	if (gpr_time_cmp(now, c->deadline) >= 0)
		return r5_set_error(R5_ETIMEDOUT, "the call's deadline passed");
	if (r5_call_is_cancelled(c)) {
		/* The client's own deadline timer fires first and cancels the call: our copy of the
		 * deadline (arrival time + grpc-timeout) is later by the transit time. A cancel that
		 * comes this close to the deadline is the deadline. */
		gpr_timespec slack = gpr_time_from_millis(R5_DEADLINE_SLACK_MS, GPR_TIMESPAN);
		if (gpr_time_cmp(gpr_time_add(now, slack), c->deadline) >= 0)
			return r5_set_error(R5_ETIMEDOUT, "the call's deadline passed");
		return r5_set_error(R5_ECANCELLED, "the client cancelled the call");
	}
	if (atomic_load(&c->server->aborting))
		return r5_set_error(R5_ECANCELLED, "server shutting down: job cancelled after the %.0f s grace period",
				    c->server->config.grace_s);
	return R5_OK;
}

void r5_job_send_progress(r5_job *job, const char *stage, double fraction)
{
	Recon5t__V1__Progress progress = RECON5T__V1__PROGRESS__INIT;
	Recon5t__V1__ReconEvent event = RECON5T__V1__RECON_EVENT__INIT;
	progress.stage = (char *)stage;
	progress.fraction = fraction;
	event.kind_case = RECON5T__V1__RECON_EVENT__KIND_PROGRESS;
	event.progress = &progress;
	r5_call_send_event(job->call, &event);
}

/* r5_progress hook: throttled Progress events (new stage, +10 %, or 0.5 s), and the stop check. */
static int progress_hook(void *user, const char *stage, double fraction, r5_status *stop_status)
{
	r5_job *job = user;
	r5_status why = r5_job_stop_reason(job);
	if (why != R5_OK) {
		*stop_status = why;
		return 1;
	}
	double now = r5_svc_now();
	int new_stage = strncmp(job->last_stage, stage, sizeof job->last_stage - 1) != 0;
	if (new_stage || fraction >= job->last_fraction + 0.1 || now - job->last_sent > 0.5 || fraction >= 1.0) {
		if (!new_stage && fraction == job->last_fraction)
			return 0;
		if (new_stage)
			r5_metrics_stage(job->last_stage, now - job->stage_started), job->stage_started = now;
		snprintf(job->last_stage, sizeof job->last_stage, "%s", stage);
		job->last_fraction = fraction;
		job->last_sent = now;
		r5_job_send_progress(job, stage, fraction);
	}
	return 0;
}

/* How long a job waits for memory while no other job runs: then only streams still ingesting
 * and queued jobs hold the budget, and queued jobs cannot free it before this one ends. */
#define R5_MEMORY_WAIT_ALONE_S 10.0

/* Reserves the rest of the job's estimated peak (its k-space is reserved already), waiting
 * while other jobs and streams hold the budget; the wait ends with the call's deadline, a
 * cancel, the drain grace, or R5_MEMORY_WAIT_ALONE_S without another job running
 * (RESOURCE_EXHAUSTED: retry later). */
static r5_status reserve_for_job(r5_job *job)
{
	r5_call *c = job->call;
	r5_server *s = c->server;
	/* maps made ahead are held by the call (early_held) in place of the ones the estimate counts */
	long extra = job->need_bytes - c->reserved_bytes - job->early_held;
	if (extra <= 0)
		return R5_OK;
	int told = 0;
	r5_status status = R5_OK;
	double alone_since = 0;
	pthread_mutex_lock(&s->lock);
	while (s->memory_in_use + extra > s->memory_budget) {
		if ((status = r5_job_stop_reason(job)) != R5_OK)
			break;
		double now = r5_svc_now();
		if (s->running > 1)
			alone_since = 0;
		else if (alone_since == 0)
			alone_since = now;
		else if (now - alone_since > R5_MEMORY_WAIT_ALONE_S) {
			status = r5_set_error(R5_EBUSY,
					      "memory budget: the %s reconstruction needs %.0f MiB more and streaming or "
					      "queued scans hold %.0f of %.0f MiB; retry later",
					      c->params.pipeline, (double)extra / 1048576.0,
					      (double)s->memory_in_use / 1048576.0, (double)s->memory_budget / 1048576.0);
			break;
		}
		if (!told) {
			pthread_mutex_unlock(&s->lock);
			r5_info("job %s: waits for memory: needs %.0f MiB more, %.0f of %.0f MiB in use", c->job_id,
				(double)extra / 1048576.0, (double)s->memory_in_use / 1048576.0,
				(double)s->memory_budget / 1048576.0);
			r5_job_send_progress(job, "waiting for memory", 0.0);
			told = 1;
			pthread_mutex_lock(&s->lock);
			continue;
		}
		gpr_timespec wake = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(200, GPR_TIMESPAN));
		struct timespec until = {.tv_sec = wake.tv_sec, .tv_nsec = wake.tv_nsec};
		pthread_cond_timedwait(&s->changed, &s->lock, &until);
	}
	if (status == R5_OK) {
		s->memory_in_use += extra;
		c->reserved_bytes += extra;
	}
	pthread_mutex_unlock(&s->lock);
	return status;
}

/* A failure on a context its back end has retired is the device's loss, whatever status the
 * stage that met it reported. */
static r5_status device_lost_status(r5_ctx *ctx, r5_status status)
{
	if (status == R5_OK || status == R5_EDEVICE_LOST || status == R5_ECANCELLED || status == R5_ETIMEDOUT ||
	    !r5_ctx_retired(ctx))
		return status;
	char message[512];
	snprintf(message, sizeof message, "%s", r5_last_error());
	return r5_set_error(R5_EDEVICE_LOST, "%s (the device context is retired: %s)", message,
			    r5_ctx_retired_reason(ctx));
}

/* The context's FFT plan cache outlives jobs (bounded: R5_CTX_FFT_CACHE_BYTES of ramps): what it
 * holds in host memory counts against the server's memory budget like a scan's reservation, so
 * the budget sees every byte the workers keep. *held: what is counted now; ctx NULL: nothing. */
static void account_fft_cache(r5_server *s, r5_ctx *ctx, long *held)
{
	long entries = 0, bytes = 0;
	if (ctx && r5_ctx_residency(ctx) == R5_HOST)
		r5_ctx_fft_cache_usage(ctx, &entries, &bytes);
	if (bytes == *held)
		return;
	pthread_mutex_lock(&s->lock);
	s->memory_in_use += bytes - *held;
	if (bytes < *held)
		pthread_cond_broadcast(&s->changed); /* a worker may be waiting for memory */
	pthread_mutex_unlock(&s->lock);
	*held = bytes;
}

/* A job that would wait for memory first gets what this worker's own FFT cache holds. */
static void make_room(r5_server *s, r5_ctx *ctx, long *cache_held, long extra)
{
	if (*cache_held <= 0 || extra <= 0)
		return;
	pthread_mutex_lock(&s->lock);
	int short_of_memory = s->memory_in_use + extra > s->memory_budget;
	pthread_mutex_unlock(&s->lock);
	if (!short_of_memory)
		return;
	r5_ctx_fft_cache_clear(ctx);
	account_fft_cache(s, ctx, cache_held);
}

static r5_status run_job(r5_ctx *ctx, r5_job *job, long *cache_held)
{
	r5_call *c = job->call;
	r5_status status = r5_job_stop_reason(job);
	/* the coil maps made while the scan streamed in (waiting while they are being made) */
	r5_calibration *calibration = status == R5_OK ? r5_early_calib_take(job) : NULL;
	if (status == R5_OK) {
		make_room(c->server, ctx, cache_held, job->need_bytes - c->reserved_bytes - job->early_held);
		status = reserve_for_job(job);
	}
	r5_image_set *set = NULL;
	double t_start = r5_svc_now();
	if (status == R5_OK) {
		r5_job_send_progress(job, "queued", 1.0);
		snprintf(job->last_stage, sizeof job->last_stage, "start");
		job->stage_started = r5_svc_now();
		r5_progress progress = {.report = progress_hook, .user = job};
		r5_clear_error();
		status = device_lost_status(ctx, r5_recon_run_calibrated(ctx, job->scan, &c->params, calibration, &progress,
									 &set));
	}
	r5_calibration_free(calibration);
	/* k-space is no longer needed: free it before the images go out */
	r5_scan_free(job->scan);
	job->scan = NULL;
	if (status == R5_OK) {
		r5_jobs_send_results(job, set);
		r5_info("job %s: done in %.3f s (queued %.3f s)", c->job_id, r5_svc_now() - t_start, t_start - job->t_queued);
	} else {
		const char *stage = job->last_stage[0] ? job->last_stage : "reconstruction";
		if (status == R5_ECANCELLED && atomic_load(&c->server->aborting)) {
			char message[512];
			snprintf(message, sizeof message, "stage %s: %s", stage, r5_last_error());
			r5_call_finish(c, GRPC_STATUS_UNAVAILABLE, message);
		} else {
			r5_call_fail(c, status, stage);
		}
	}
	r5_image_set_free(set);
	if (job->stage_started > 0)
		r5_metrics_stage(job->last_stage, r5_svc_now() - job->stage_started);
	r5_metrics_job(c->params.pipeline, status);
	pthread_mutex_lock(&c->server->lock);
	if (status == R5_OK)
		c->server->jobs_done++;
	else
		c->server->jobs_failed++;
	pthread_mutex_unlock(&c->server->lock);
	return status;
}

typedef struct worker_arg {
	r5_server *server;
	int device, index;
} worker_arg;

/* Ends a job that never ran: its call gets `code` and `message`, its memory goes (a calibration
 * task is only dropped: its stream goes on, and its job, if any, will say). */
static void end_unrun_job(r5_job *job, grpc_status_code code, const char *message)
{
	if (job->calibration) {
		r5_early_calib_discard(job);
		return;
	}
	r5_call_finish(job->call, code, message);
	r5_scan_free(job->scan);
	r5_call_release_memory(job->call);
	r5_call_unref(job->call);
	free(job);
}

/* The worker cannot make a context: it leaves the pool. The last one to leave fails the jobs
 * still queued (r5_jobs_submit refuses new ones from then on). */
static void leave_pool(worker_arg *w, const char *why)
{
	r5_server *s = w->server;
	r5_job *orphans[2];
	pthread_mutex_lock(&s->lock);
	int left = --s->usable_workers;
	snprintf(s->no_worker_reason, sizeof s->no_worker_reason, "%s", why);
	for (int p = 0; p < 2; p++) {
		orphans[p] = left == 0 ? s->queue_head[p] : NULL;
		if (left == 0)
			s->queue_head[p] = s->queue_tail[p] = NULL;
	}
	if (left == 0)
		s->queued = s->calibrations_queued = 0;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	r5_error("worker %d (%s device %d) leaves the pool: %s; %d usable worker%s left%s", w->index,
		 s->worker_backend, w->device, why, left, left == 1 ? "" : "s", left ? "" : ": NOT_SERVING");
	char message[400];
	snprintf(message, sizeof message, "no usable worker, the server is not serving: %s", why);
	for (int p = 0; p < 2; p++)
		while (orphans[p]) {
			r5_job *job = orphans[p];
			orphans[p] = job->next;
			end_unrun_job(job, GRPC_STATUS_UNAVAILABLE, message);
		}
}

/* Makes the worker's context (at start, or after the last one was retired); on failure the
 * worker leaves the pool and *ctx stays NULL. */
static r5_status make_context(worker_arg *w, r5_ctx **ctx)
{
	r5_server *s = w->server;
	r5_status made = r5_ctx_create(ctx, s->worker_backend, w->device);
	char why[256];
	snprintf(why, sizeof why, "%s", made == R5_OK ? "" : r5_last_error());
	if (made == R5_OK)
		r5_info("worker %d ready: %s", w->index, r5_ctx_describe(*ctx));
	if (w->index < 16) {
		pthread_mutex_lock(&s->lock);
		snprintf(s->worker_describe[w->index], sizeof s->worker_describe[w->index], "%s",
			 made == R5_OK ? r5_ctx_describe(*ctx) : "no back end");
		pthread_mutex_unlock(&s->lock);
	}
	if (made != R5_OK)
		leave_pool(w, why);
	return made;
}

/* After a failed job: a retired context is replaced (R5_OK), or the worker leaves the pool. */
static r5_status renew_if_retired(worker_arg *w, r5_ctx **ctx)
{
	if (!r5_ctx_retired(*ctx))
		return R5_OK;
	r5_warn("worker %d: its %s context is retired (%s); making a new one", w->index, r5_ctx_backend_name(*ctx),
		r5_ctx_retired_reason(*ctx));
	r5_ctx_destroy(*ctx);
	*ctx = NULL;
	return make_context(w, ctx);
}

static void *worker_main(void *arg)
{
	worker_arg *w = arg;
	r5_server *s = w->server;
	r5_ctx *ctx = NULL;
	long cache_held = 0;
	r5_status usable = make_context(w, &ctx);
	while (usable == R5_OK) {
		r5_job *job = pop(s);
		if (!job)
			break;
		r5_status status = R5_OK;
		if (job->calibration) {
			r5_early_calib_run(ctx, job); /* frees the task */
			if (r5_ctx_retired(ctx))
				status = R5_EDEVICE_LOST;
		} else {
			status = run_job(ctx, job, &cache_held);
			r5_call_release_memory(job->call);
			r5_call_unref(job->call);
			free(job);
			malloc_trim(0); /* hand freed k-space and images back to the system */
		}
		if (status != R5_OK)
			usable = renew_if_retired(w, &ctx);
		account_fft_cache(s, usable == R5_OK ? ctx : NULL, &cache_held);
		pthread_mutex_lock(&s->lock);
		s->running--;
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->lock);
	}
	account_fft_cache(s, NULL, &cache_held);
	r5_ctx_destroy(ctx);
	free(w);
	return NULL;
}

r5_status r5_jobs_start(r5_server *s)
{
	const r5_server_config *cfg = &s->config;
	R5_TRY(r5_backends_init());
	int gpus = r5_backend_devices("cuda");
	/* a back end named in the config (cpu; for tests cpu-fault, or cpu-device with a worker per
	 * simulated device) is used as it is */
	int named_host = strcmp(cfg->backend, "auto") && strcmp(cfg->backend, "gpu") && strcmp(cfg->backend, "cuda");
	const struct r5_backend *named = named_host ? r5_backend_find(cfg->backend) : NULL;
	int named_devices = named && named->residency == R5_DEVICE ? r5_backend_devices(cfg->backend) : 0;
	if (named_host && !named)
		return r5_set_error(R5_EINVAL, "backend = %s is not registered in this process%s", cfg->backend,
				    strcmp(cfg->backend, "cpu-device") == 0 ? " (it needs R5_CPU_DEVICE=N)" : "");
	int use_gpu = !named_host && gpus > 0;
	if ((strcmp(cfg->backend, "gpu") == 0 || strcmp(cfg->backend, "cuda") == 0) && gpus == 0)
		return r5_set_error(R5_ENOTSUP, "backend = gpu but no CUDA device is usable (%s)",
				    r5_backend_find("cuda") ? "no device or driver" : "built without CUDA");
	snprintf(s->worker_backend, sizeof s->worker_backend, "%s",
		 use_gpu ? "gpu" : named_host ? cfg->backend : "cpu");
	int devices = use_gpu ? gpus : named_devices;
	int wanted = cfg->workers > 0 ? cfg->workers : devices > 0 ? devices : cfg->cpu_workers;
	pthread_mutex_lock(&s->lock);
	s->usable_workers = wanted; /* until one fails to make its context */
	pthread_mutex_unlock(&s->lock);
	s->n_workers = 0; /* counts the threads started: r5_jobs_stop joins exactly those */
	s->workers = calloc((size_t)wanted, sizeof *s->workers);
	if (!s->workers)
		return r5_set_error(R5_ENOMEM, "workers");
	for (int i = 0; i < wanted; i++) {
		worker_arg *w = malloc(sizeof *w);
		int error = w ? 0 : ENOMEM;
		if (w) {
			w->server = s;
			w->device = devices > 0 ? i % devices : 0;
			w->index = i;
			error = pthread_create(&s->workers[i], NULL, worker_main, w);
		}
		if (error) {
			free(w);
			r5_jobs_stop(s); /* the workers already started end and are joined */
			return r5_set_error(R5_ENOMEM, "cannot start worker %d of %d (%s)", i + 1, wanted, strerror(error));
		}
		s->n_workers = i + 1;
	}
	r5_info("%d %s worker(s)%s", s->n_workers, use_gpu ? "GPU" : named_devices ? cfg->backend : "CPU",
		use_gpu || named_devices ? "" : gpus == 0 ? " (no usable GPU)" : " (backend = cpu)");
	return R5_OK;
}

void r5_jobs_stop(r5_server *s)
{
	pthread_mutex_lock(&s->lock);
	s->stop_workers = 1;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);
	free(s->workers);
	s->workers = NULL;
	/* jobs still queued (none after a drain): end them */
	for (int p = 0; p < 2; p++)
		while (s->queue_head[p]) {
			r5_job *job = s->queue_head[p];
			s->queue_head[p] = job->next;
			end_unrun_job(job, GRPC_STATUS_UNAVAILABLE, "server shutting down");
		}
}
