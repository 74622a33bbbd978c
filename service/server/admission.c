/* Admission of Reconstruct streams and the ingest idle reaper: the one place that decides
 * whether a stream may start and how long it may hold its slot without sending anything.
 *
 * - draining: refused UNAVAILABLE; max_streams and max_streams_per_peer (the client address
 *   without its port): refused RESOURCE_EXHAUSTED, so that one host opening streams and
 *   sending nothing cannot lock the others out.
 * - Every admitted stream is listed (server lock) until its call is destroyed. The reaper
 *   thread wakes every quarter of ingest_idle_s (at most once a second) and ends streams that
 *   are still ingesting and have sent no message for ingest_idle_s: grpc_call_cancel_with_status
 *   with DEADLINE_EXCEEDED and a message naming the timeout; the pending receive then
 *   completes and calls.c frees the scan builder and the memory it held. Once the drain's
 *   grace is over (s->aborting) every stream still ingesting is ended with UNAVAILABLE.
 * - MRD connections (mrd.c, c->call NULL) are admitted and listed the same way, their peer
 *   named as gRPC names its peers; the reaper only marks them (idle_expired): their reader
 *   thread polls the mark and ends the connection with ERR + CLOSE (end_stream).
 * Threads: admit on completion-queue threads and MRD connection threads; touch on
 * completion-queue threads and MRD connection threads; the reaper is its own thread and blocks
 * only on the server lock. Lock order: server lock, then a call's
 * lock (never the other way). */
#include "server.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "recon/core/log.h"

static long now_ms(void)
{
	gpr_timespec t = gpr_now(GPR_CLOCK_MONOTONIC);
	return (long)t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* "ipv4:127.0.0.1:5432" -> "ipv4:127.0.0.1"; "ipv6:[::1]:5432" -> "ipv6:[::1]". */
static void peer_address(grpc_call *call, char *out, size_t size)
{
	char *peer = call ? grpc_call_get_peer(call) : NULL;
	snprintf(out, size, "%s", peer ? peer : "unknown");
	if (peer)
		gpr_free(peer);
	char *colon = strrchr(out, ':');
	char *bracket = strrchr(out, ']');
	if (colon && (!bracket || colon > bracket) && colon != strchr(out, ':'))
		*colon = '\0';
}

void r5_admission_touch(r5_call *c) { atomic_store(&c->last_message_ms, now_ms()); }

/* From a message's arrival until the next receive is armed the stream is not idle: queued for
 * an ingest thread or being sorted into k-space. (A message still in transit is invisible to
 * us: ingest_idle_s must exceed the time one message of max_message_mb takes on the link.) */
void r5_admission_busy(r5_call *c) { atomic_store(&c->last_message_ms, LONG_MAX / 2); }

int r5_admission_admit(r5_call *c)
{
	r5_server *s = c->server;
	if (atomic_load(&s->draining)) {
		r5_call_finish(c, GRPC_STATUS_UNAVAILABLE, "server is draining (shutting down): no new scans accepted");
		return 0;
	}
	if (c->call) /* an MRD call came with its peer named (mrd.c) */
		peer_address(c->call, c->peer, sizeof c->peer);
	char message[200] = "";
	pthread_mutex_lock(&s->lock);
	int from_peer = 0;
	for (r5_call *o = s->open_head; o; o = o->open_next)
		from_peer += strcmp(o->peer, c->peer) == 0;
	if (s->active_streams >= s->config.max_streams)
		snprintf(message, sizeof message, "too many concurrent streams: %d open, limit max_streams = %d",
			 s->active_streams, s->config.max_streams);
	else if (from_peer >= s->config.max_streams_per_peer)
		snprintf(message, sizeof message,
			 "too many concurrent streams from this client address: %d open, limit max_streams_per_peer = %d",
			 from_peer, s->config.max_streams_per_peer);
	if (!message[0]) {
		s->active_streams++;
		c->counted = 1;
		r5_job_id_next(s, c->job_id, sizeof c->job_id); /* unique across restarts (job_ids.c) */
		c->open_next = s->open_head;
		if (s->open_head)
			s->open_head->open_prev = c;
		s->open_head = c;
		atomic_store(&c->ingesting, 1);
		atomic_store(&c->last_message_ms, now_ms());
	}
	pthread_mutex_unlock(&s->lock);
	if (message[0]) {
		r5_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
		return 0;
	}
	return 1;
}

void r5_admission_unlist(r5_call *c)
{
	r5_server *s = c->server;
	if (c->open_prev)
		c->open_prev->open_next = c->open_next;
	else if (s->open_head == c)
		s->open_head = c->open_next;
	if (c->open_next)
		c->open_next->open_prev = c->open_prev;
	c->open_prev = c->open_next = NULL;
}

int r5_admission_cancel_job(r5_server *s, const char *job_id, const char *by, char *state, size_t state_size)
{
	int found = 0;
	pthread_mutex_lock(&s->lock);
	for (r5_call *c = s->open_head; c && !found; c = c->open_next) {
		if (strcmp(c->job_id, job_id) != 0 || atomic_load(&c->admin_cancelled))
			continue;
		pthread_mutex_lock(&c->lock);
		int finished = c->status_queued;
		pthread_mutex_unlock(&c->lock);
		if (finished)
			continue;
		snprintf(c->cancelled_by, sizeof c->cancelled_by, "%s", by);
		snprintf(state, state_size, "%s", atomic_load(&c->ingesting) ? "ingesting" : "queued or running");
		atomic_store(&c->admin_cancelled, 1);
		found = 1;
	}
	if (found)
		pthread_cond_broadcast(&s->changed); /* the reaper ends a stream still ingesting */
	pthread_mutex_unlock(&s->lock);
	return found;
}

/* A reference on a listed call, unless its last one is already gone (call_destroy is waiting
 * for the server lock that the caller holds). */
static int try_ref(r5_call *c)
{
	pthread_mutex_lock(&c->lock);
	int alive = c->refs > 0;
	if (alive)
		c->refs++;
	pthread_mutex_unlock(&c->lock);
	return alive;
}

#define REAP_BATCH 64

/* Ends a stream the reaper marked (idle_expired set). A gRPC call is cancelled with the status;
 * an MRD connection has no gRPC call: its reader thread sees the mark within its poll period and
 * sends ERR + CLOSE itself (mrd.c end_by_reaper). Its socket is never touched from here: the
 * connection thread owns it and may be closing it at this moment. */
static void end_stream(r5_call *c, grpc_status_code code, const char *message)
{
	if (c->call)
		grpc_call_cancel_with_status(c->call, code, message, NULL);
}

static void *reaper_main(void *arg)
{
	r5_server *s = arg;
	double idle_s = s->config.ingest_idle_s;
	long period_ms = (long)(idle_s * 250.0);
	if (period_ms > 1000)
		period_ms = 1000;
	if (period_ms < 20)
		period_ms = 20;
	pthread_mutex_lock(&s->lock);
	while (!s->stop_reaper) {
		gpr_timespec wake = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(period_ms, GPR_TIMESPAN));
		struct timespec until = {.tv_sec = wake.tv_sec, .tv_nsec = wake.tv_nsec};
		pthread_cond_timedwait(&s->changed, &s->lock, &until);
		if (s->stop_reaper)
			break;
		r5_call *expired[REAP_BATCH];
		int n = 0;
		long now = now_ms(), limit = (long)(idle_s * 1000.0);
		/* the drain's grace is over: a stream still ingesting ends now (UNAVAILABLE), not at
		 * the server's stop (a bare CANCELLED) */
		int aborting = atomic_load(&s->aborting);
		for (r5_call *c = s->open_head; c && n < REAP_BATCH; c = c->open_next)
			if (atomic_load(&c->ingesting) && !atomic_load(&c->idle_expired) &&
			    (aborting || atomic_load(&c->admin_cancelled) || now - atomic_load(&c->last_message_ms) > limit) &&
			    try_ref(c)) {
				atomic_store(&c->idle_expired, 1);
				expired[n++] = c;
			}
		pthread_mutex_unlock(&s->lock);
		for (int i = 0; i < n && aborting; i++) {
			r5_info("job %s: drain grace over while ingesting: ending the stream", expired[i]->job_id);
			/* a status sent, not a cancel: a cancel's status can be lost in the socket's close
			 * at the server's stop (the client saw "Socket closed"); the pending receive then
			 * completes and finds the status queued. Its memory goes with its last reference
			 * (call_destroy), not from here: an ingest thread may be sorting one of its batches
			 * into the builder right now (it sees `aborting` when it finishes). */
			r5_call_finish(expired[i], GRPC_STATUS_UNAVAILABLE,
				       "server shutting down: grace period over, scan not completed");
			r5_call_unref(expired[i]);
		}
		for (int i = 0; i < n && !aborting; i++) {
			if (atomic_load(&expired[i]->admin_cancelled)) {
				/* CancelJob while ingesting: a cancel, as for an idle stream, not a status and a
				 * release from here: an ingest thread may be sorting this stream's batch into
				 * its builder right now. The failed receive then releases (on_stream_closed). */
				char message[220];
				snprintf(message, sizeof message, "stage ingest: cancelled by admin %s", expired[i]->cancelled_by);
				end_stream(expired[i], GRPC_STATUS_CANCELLED, message);
				r5_call_unref(expired[i]);
				continue;
			}
			char message[160];
			snprintf(message, sizeof message,
				 "stage ingest: no message for %.1f s (server ingest_idle_s = %.1f); the stream was ended",
				 idle_s, idle_s);
			r5_info("job %s: ingest idle for %.1f s: ending the stream", expired[i]->job_id, idle_s);
			end_stream(expired[i], GRPC_STATUS_DEADLINE_EXCEEDED, message);
			r5_call_unref(expired[i]);
		}
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

r5_status r5_admission_start(r5_server *s)
{
	s->stop_reaper = 0;
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
		return r5_set_error(R5_ENOMEM, "cannot start the ingest idle reaper thread");
	s->reaper_started = 1;
	return R5_OK;
}

void r5_admission_stop(r5_server *s)
{
	if (!s->reaper_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop_reaper = 1;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->reaper, NULL);
	s->reaper_started = 0;
}
