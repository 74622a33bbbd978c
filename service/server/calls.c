/* The per-call state machine. Every batch started holds a reference on the call; completions
 * arrive on completion-queue threads and are handled under the call's lock.
 *
 * Reconstruct:  RECV loop: ScanHeader → budget reserved, scan builder made, Accepted sent;
 *               AcquisitionBatch → each acquisition sorted into k-space as it arrives;
 *               End → scan finished, job queued (jobs.c), the worker sends the rest.
 * Capabilities / Health/Check: one request in, one reply and the status out.
 * Outgoing events go through a FIFO so that only one SEND_MESSAGE is in flight; the status is
 * its last item. Errors end the call with an Error event and the mapped status. */
#include "server.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "recon/core/log.h"
#include "recon/io/bids.h"

#define METHOD_RECONSTRUCT "/recon5t.v1.Recon/Reconstruct"
#define METHOD_CAPABILITIES "/recon5t.v1.Recon/Capabilities"
#define METHOD_HEALTH "/grpc.health.v1.Health/Check"
#define METHOD_CANCEL_JOB "/recon5t.v1.Recon/CancelJob"
#define METHOD_DRAIN "/recon5t.v1.Recon/Drain"

void r5_call_ref(r5_call *c)
{
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
}

static void call_destroy(r5_call *c)
{
	r5_server *s = c->server;
	r5_call_release_memory(c);
	r5_realtime_free(c->realtime); /* its frame thread held a reference: it has ended */
	if (c->header_message)
		protobuf_c_message_free_unpacked(&c->header_message->base, NULL);
	r5_sha256_free(c->stream_hash);
	while (c->out_head) {
		r5_outgoing *o = c->out_head;
		c->out_head = o->next;
		if (o->buffer)
			grpc_byte_buffer_destroy(o->buffer);
		free(o->message);
		free(o);
	}
	if (c->recv_buffer)
		grpc_byte_buffer_destroy(c->recv_buffer);
	if (c->status_details_set)
		grpc_slice_unref(c->status_details);
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->request_metadata);
	if (c->counted) { /* unlisted before its lock goes: the reaper may still look at it until then */
		pthread_mutex_lock(&s->lock);
		r5_admission_unlist(c);
		s->active_streams--;
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void r5_call_unref(r5_call *c)
{
	pthread_mutex_lock(&c->lock);
	int last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		call_destroy(c);
}

int r5_call_is_cancelled(r5_call *c) { return atomic_load(&c->cancelled); }

int r5_call_is_finished(r5_call *c)
{
	pthread_mutex_lock(&c->lock);
	int finished = c->status_queued;
	pthread_mutex_unlock(&c->lock);
	return finished;
}

/* Safe from any thread, any number of times: what the call holds is taken under its lock and
 * freed outside it (the server lock is never taken inside a call's lock). */
void r5_call_release_memory(r5_call *c)
{
	pthread_mutex_lock(&c->lock);
	r5_scan_builder *builder = c->builder;
	long bytes = c->reserved_bytes;
	c->builder = NULL;
	c->reserved_bytes = 0;
	pthread_mutex_unlock(&c->lock);
	r5_scan_builder_destroy(builder);
	if (bytes)
		r5_server_release(c->server, bytes);
	r5_early_calib_release(c); /* coil maps made ahead, if the job did not take them */
	r5_realtime_stop(c);        /* real time: the frame thread gives back what it holds */
}

/* Starts a batch holding a reference (lock held). */
static int start_batch(r5_call *c, const grpc_op *ops, size_t n, r5_tag *tag)
{
	R5_TAG_RELEASE(tag);
	grpc_call_error err = grpc_call_start_batch(c->call, ops, n, tag, NULL);
	if (err != GRPC_CALL_OK) {
		r5_error("job %s: grpc_call_start_batch failed (%d)", c->job_id, (int)err);
		return 0;
	}
	c->refs++;
	return 1;
}

/* Sends the next queued item when nothing is in flight (lock held). */
static void pump(r5_call *c)
{
	if (c->send_in_flight || !c->out_head)
		return;
	r5_outgoing *o = c->out_head;
	c->out_head = o->next;
	if (!c->out_head)
		c->out_tail = NULL;
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof ops);
	if (!c->metadata_sent) { /* a call refused before any message: send headers with the status */
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->metadata_sent = 1;
	}
	grpc_op *op = &ops[n++];
	if (o->buffer) {
		op->op = GRPC_OP_SEND_MESSAGE;
		op->data.send_message.send_message = o->buffer;
		c->sending = o->buffer;
	} else {
		op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		op->data.send_status_from_server.status = o->code;
		c->status_details = grpc_slice_from_copied_string(o->message ? o->message : "");
		c->status_details_set = 1;
		op->data.send_status_from_server.status_details = &c->status_details;
	}
	c->send_in_flight = start_batch(c, ops, n, &c->tag_send);
	if (!c->send_in_flight && c->sending) {
		grpc_byte_buffer_destroy(c->sending);
		c->sending = NULL;
	}
	free(o->message);
	free(o);
}

static void enqueue(r5_call *c, grpc_byte_buffer *buffer, grpc_status_code code, const char *message)
{
	r5_outgoing *o = calloc(1, sizeof *o);
	pthread_mutex_lock(&c->lock);
	if (!o || c->status_queued) {
		pthread_mutex_unlock(&c->lock);
		if (buffer)
			grpc_byte_buffer_destroy(buffer);
		free(o);
		return;
	}
	o->buffer = buffer;
	o->code = code;
	o->message = message ? strdup(message) : NULL;
	if (!buffer)
		c->status_queued = 1;
	if (!buffer && c->mrd)
		r5_metrics_mrd_handled((int)code, r5_svc_now() - c->t_start);
	else if (!buffer)
		r5_metrics_call_handled((int)c->kind, (int)code, r5_svc_now() - c->t_start);
	if (c->mrd) { /* MRD: delivered in order by the connection (mrd.c), not sent by gRPC */
		free(o->message);
		free(o);
		pthread_mutex_unlock(&c->lock);
		r5_mrd_deliver(c, buffer, code, message);
		return;
	}
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	pump(c);
	pthread_mutex_unlock(&c->lock);
}

void r5_call_send(r5_call *c, grpc_byte_buffer *buffer)
{
	if (buffer)
		enqueue(c, buffer, GRPC_STATUS_OK, NULL);
}

void r5_call_send_event(r5_call *c, const Recon5t__V1__ReconEvent *event)
{
	r5_call_send(c, r5_svc_pack(&event->base));
}

/* Status messages are valid UTF-8 on one line whatever the input echoed into them (a client's
 * deserializer refuses invalid UTF-8 and would hide the error behind its own). */
static void finish_escaped(r5_call *c, grpc_status_code code, const char *clean)
{
	if (code != GRPC_STATUS_OK)
		r5_info("job %s: %s: %s", c->job_id[0] ? c->job_id : "-", r5_svc_grpc_code_name(code), clean);
	r5_security_audit(c, code);
	enqueue(c, NULL, code, clean);
}

void r5_call_finish(r5_call *c, grpc_status_code code, const char *message)
{
	char clean[1024];
	r5_text_escape(clean, sizeof clean, message);
	finish_escaped(c, code, clean);
}

void r5_call_fail(r5_call *c, r5_status status, const char *stage)
{
	grpc_status_code code = r5_status_grpc_code(status);
	char raw[1024], message[1024];
	const char *text = r5_last_error();
	if (!text || !*text)
		text = r5_status_name(status);
	if (stage && strncmp(text, "stage ", 6) != 0)
		snprintf(raw, sizeof raw, "stage %s: %s", stage, text);
	else
		snprintf(raw, sizeof raw, "%s", text);
	r5_text_escape(message, sizeof message, raw);
	if (c->kind == CALL_RECONSTRUCT) {
		Recon5t__V1__Error error = RECON5T__V1__ERROR__INIT;
		Recon5t__V1__ReconEvent event = RECON5T__V1__RECON_EVENT__INIT;
		error.code = (int32_t)code;
		error.message = message;
		error.stage = (char *)(stage ? stage : "");
		event.kind_case = RECON5T__V1__RECON_EVENT__KIND_ERROR;
		event.error = &error;
		r5_call_send_event(c, &event);
	}
	finish_escaped(c, code, message); /* escaped above, for the Error event too */
}

static void arm_recv(r5_call *c)
{
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_buffer;
	pthread_mutex_lock(&c->lock);
	if (!c->status_queued)
		start_batch(c, &op, 1, &c->tag_recv);
	pthread_mutex_unlock(&c->lock);
}

static enum r5_call_kind route(r5_call *c)
{
	const grpc_slice m = c->details.method;
	size_t n = GRPC_SLICE_LENGTH(m);
	const char *p = (const char *)GRPC_SLICE_START_PTR(m);
	if (n == strlen(METHOD_HEALTH) && memcmp(p, METHOD_HEALTH, n) == 0)
		return CALL_HEALTH;
	if (c->health_port)
		return CALL_UNKNOWN;
	if (n == strlen(METHOD_RECONSTRUCT) && memcmp(p, METHOD_RECONSTRUCT, n) == 0)
		return CALL_RECONSTRUCT;
	if (n == strlen(METHOD_CAPABILITIES) && memcmp(p, METHOD_CAPABILITIES, n) == 0)
		return CALL_CAPABILITIES;
	if (n == strlen(METHOD_CANCEL_JOB) && memcmp(p, METHOD_CANCEL_JOB, n) == 0)
		return CALL_CANCEL_JOB;
	if (n == strlen(METHOD_DRAIN) && memcmp(p, METHOD_DRAIN, n) == 0)
		return CALL_DRAIN;
	return CALL_UNKNOWN;
}

void r5_call_on_new(r5_call *c, int ok)
{
	r5_server *s = c->server;
	if (!ok) { /* server shutting down: the request was never matched */
		r5_call_unref(c);
		return;
	}
	r5_server_request_call(s, c->grpc_server, c->health_port);
	c->kind = route(c);
	c->t_start = r5_svc_now();
	r5_metrics_call_started((int)c->kind);
	c->deadline = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_MONOTONIC);
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[0].data.recv_close_on_server.cancelled = &c->close_cancelled_out;
	pthread_mutex_lock(&c->lock);
	start_batch(c, ops, 1, &c->tag_close);
	pthread_mutex_unlock(&c->lock);
	char denied[256];
	grpc_status_code auth = GRPC_STATUS_OK;
	if (c->kind == CALL_UNKNOWN) {
		r5_call_finish(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method on this port");
	} else if ((auth = r5_security_authorize(c, denied, sizeof denied)) != GRPC_STATUS_OK) {
		r5_call_finish(c, auth, denied);
	} else if (c->kind != CALL_RECONSTRUCT || r5_admission_admit(c)) {
		memset(ops, 0, sizeof ops);
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[1].op = GRPC_OP_RECV_MESSAGE;
		ops[1].data.recv_message.recv_message = &c->recv_buffer;
		pthread_mutex_lock(&c->lock);
		c->metadata_sent = start_batch(c, ops, 2, &c->tag_recv);
		pthread_mutex_unlock(&c->lock);
	}
	r5_call_unref(c); /* the request's reference */
}

void r5_call_on_send(r5_call *c, int ok)
{
	pthread_mutex_lock(&c->lock);
	if (c->sending) {
		grpc_byte_buffer_destroy(c->sending);
		c->sending = NULL;
	}
	c->send_in_flight = 0;
	if (!ok) /* the call is gone: drop what is queued except the status */
		while (c->out_head && c->out_head->buffer) {
			r5_outgoing *o = c->out_head;
			c->out_head = o->next;
			if (!c->out_head)
				c->out_tail = NULL;
			grpc_byte_buffer_destroy(o->buffer);
			free(o);
		}
	pump(c);
	pthread_mutex_unlock(&c->lock);
	r5_call_unref(c);
}

void r5_call_on_close(r5_call *c, int ok)
{
	if (c->close_cancelled_out) {
		atomic_store(&c->cancelled, 1);
		/* core does not say why; a deadline we can tell, a frozen or vanished client is the
		 * keepalive ping's (no ack within min(10 s, keepalive_s)), or the client's own cancel */
		if (c->kind == CALL_RECONSTRUCT && gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), c->deadline) >= 0)
			r5_info("job %s: deadline passed", c->job_id);
		else if (c->kind == CALL_RECONSTRUCT)
			r5_info("job %s: client cancelled, or its connection was lost (keepalive: no ping ack, "
				"keepalive_s %.1f)", c->job_id, c->server->config.keepalive_s);
	}
	r5_call_unref(c);
}

/* ---------------------------------------------------------------- unary calls */

/* CancelJob and Drain (admin role: checked at routing, security.c) */
static void on_admin(r5_call *c, grpc_byte_buffer *request)
{
	r5_server *s = c->server;
	ProtobufCMessage *message = NULL;
	const ProtobufCMessageDescriptor *d = c->kind == CALL_CANCEL_JOB ? &recon5t__v1__cancel_job_request__descriptor
									  : &recon5t__v1__drain_request__descriptor;
	if (r5_svc_unpack(request, d, c->kind == CALL_CANCEL_JOB ? "CancelJobRequest" : "DrainRequest", &message) !=
	    R5_OK) {
		r5_call_fail(c, R5_EINVAL, NULL);
		return;
	}
	char by[160];
	snprintf(by, sizeof by, "%s", c->identity[0] ? c->identity : "unknown");
	if (c->kind == CALL_CANCEL_JOB) {
		const char *job_id = ((Recon5t__V1__CancelJobRequest *)message)->job_id;
		char state[32] = "";
		int found = job_id && job_id[0] && r5_admission_cancel_job(s, job_id, by, state, sizeof state);
		if (!found) {
			char text[160];
			snprintf(text, sizeof text, "CancelJob: no job %.40s in flight", job_id ? job_id : "");
			r5_call_finish(c, GRPC_STATUS_NOT_FOUND, text);
		} else {
			r5_info("job %s: cancelled by admin %s (%s)", job_id, by, state);
			Recon5t__V1__CancelJobReply reply = RECON5T__V1__CANCEL_JOB_REPLY__INIT;
			reply.state = state;
			r5_call_send(c, r5_svc_pack(&reply.base));
			r5_call_finish(c, GRPC_STATUS_OK, "");
		}
	} else {
		pthread_mutex_lock(&s->lock);
		int in_flight = s->active_streams + s->queued + s->running;
		pthread_mutex_unlock(&s->lock);
		char why[200];
		snprintf(why, sizeof why, "Drain by admin %s", by);
		Recon5t__V1__DrainReply reply = RECON5T__V1__DRAIN_REPLY__INIT;
		reply.started = r5_server_begin_drain(s, why) != 0;
		reply.in_flight = in_flight;
		r5_call_send(c, r5_svc_pack(&reply.base));
		r5_call_finish(c, GRPC_STATUS_OK, "");
	}
	protobuf_c_message_free_unpacked(message, NULL);
}

static void on_unary(r5_call *c, grpc_byte_buffer *request)
{
	if (c->kind == CALL_CANCEL_JOB || c->kind == CALL_DRAIN) {
		on_admin(c, request);
		return;
	}
	if (c->kind == CALL_CAPABILITIES) {
		r5_call_send(c, r5_capabilities_reply(c->server));
		r5_call_finish(c, GRPC_STATUS_OK, "");
		return;
	}
	ProtobufCMessage *message = NULL;
	if (r5_svc_unpack(request, &grpc__health__v1__health_check_request__descriptor, "health check", &message) !=
	    R5_OK) {
		r5_call_fail(c, R5_EINVAL, NULL);
		return;
	}
	Grpc__Health__V1__HealthCheckRequest *check = (Grpc__Health__V1__HealthCheckRequest *)message;
	grpc_status_code code = GRPC_STATUS_OK;
	grpc_byte_buffer *reply = r5_health_reply(c->server, check->service, &code);
	protobuf_c_message_free_unpacked(message, NULL);
	if (code == GRPC_STATUS_OK)
		r5_call_send(c, reply);
	else if (reply)
		grpc_byte_buffer_destroy(reply);
	r5_call_finish(c, code, code == GRPC_STATUS_OK ? "" : "unknown service");
}

/* ---------------------------------------------------------------- Reconstruct ingest */

r5_status r5_ingest_header(r5_call *c, const Recon5t__V1__ScanHeader *header);
r5_status r5_ingest_batch(r5_call *c, const Recon5t__V1__AcquisitionBatch *batch);
r5_status r5_ingest_end(r5_call *c);

/* Returns 1 when the stream goes on (another RECV to arm). */
static int on_scan_message(r5_call *c, grpc_byte_buffer *buffer)
{
	ProtobufCMessage *message = NULL;
	if (r5_svc_unpack(buffer, &recon5t__v1__scan_message__descriptor, "ScanMessage", &message) != R5_OK) {
		r5_call_fail(c, R5_EINVAL, "ingest");
		return 0;
	}
	Recon5t__V1__ScanMessage *scan_message = (Recon5t__V1__ScanMessage *)message;
	r5_status status = R5_OK;
	int keep = 0;
	switch (scan_message->kind_case) {
	case RECON5T__V1__SCAN_MESSAGE__KIND_HEADER:
		r5_security_cap_priority(c, scan_message->header);
		status = r5_ingest_header(c, scan_message->header);
		if (status == R5_OK) {
			c->header_message = scan_message; /* kept: patient data and outputs for the job */
			keep = 1;
		}
		break;
	case RECON5T__V1__SCAN_MESSAGE__KIND_BATCH: status = r5_ingest_batch(c, scan_message->batch); break;
	case RECON5T__V1__SCAN_MESSAGE__KIND_END: status = r5_ingest_end(c); break;
	default: status = r5_set_error(R5_EINVAL, "a ScanMessage with none of header, batch, end set"); break;
	}
	if (!keep)
		protobuf_c_message_free_unpacked(message, NULL);
	if (status != R5_OK) {
		r5_call_release_memory(c);
		r5_call_fail(c, status, "ingest");
		return 0;
	}
	return !c->got_end;
}

static void on_stream_closed(r5_call *c, int ok)
{
	if (atomic_load(&c->idle_expired) && atomic_load(&c->admin_cancelled)) { /* CancelJob (admission.c) */
		r5_call_release_memory(c);
		r5_set_error(R5_ECANCELLED, "cancelled by admin %s after %ld acquisitions", c->cancelled_by, c->n_acquisitions);
		r5_call_fail(c, R5_ECANCELLED, "ingest");
		return;
	}
	if (atomic_load(&c->idle_expired)) { /* the reaper ended it, with its own status */
		r5_call_release_memory(c);
		r5_set_error(R5_ETIMEDOUT, "no message for %.1f s after %ld acquisitions (ingest_idle_s)",
			     c->server->config.ingest_idle_s, c->n_acquisitions);
		r5_call_fail(c, R5_ETIMEDOUT, "ingest");
		return;
	}
	if (!ok || grpc_call_failed_before_recv_message(c->call) || r5_call_is_cancelled(c)) {
		r5_call_release_memory(c);
		r5_set_error(R5_ECANCELLED, "the client cancelled the stream after %ld acquisitions", c->n_acquisitions);
		r5_call_fail(c, R5_ECANCELLED, "ingest");
		return;
	}
	r5_call_release_memory(c);
	r5_set_error(R5_EINVAL, "the stream ended without End after %ld acquisitions%s", c->n_acquisitions,
		     c->header_message ? "" : " and without a ScanHeader");
	r5_call_fail(c, R5_EINVAL, "ingest");
}

void r5_call_on_recv(r5_call *c, int ok)
{
	grpc_byte_buffer *buffer = c->recv_buffer;
	c->recv_buffer = NULL;
	pthread_mutex_lock(&c->lock);
	int finished = c->status_queued;
	pthread_mutex_unlock(&c->lock);
	if (!finished && c->kind == CALL_RECONSTRUCT && ok && buffer) {
		r5_admission_busy(c); /* not idle while the message waits and is processed */
		r5_ingest_submit(c, buffer); /* the ingest thread arms the next receive */
		return;
	}
	if (c->kind == CALL_RECONSTRUCT)
		atomic_store(&c->ingesting, 0);
	if (finished) {
		/* nothing to do: a late message after an error or the status */
	} else if (c->kind != CALL_RECONSTRUCT) {
		if (ok && buffer)
			on_unary(c, buffer);
		else
			r5_call_finish(c, GRPC_STATUS_CANCELLED, "request missing");
	} else {
		on_stream_closed(c, ok);
	}
	if (buffer)
		grpc_byte_buffer_destroy(buffer);
	r5_call_unref(c);
}

void r5_call_on_message(r5_call *c, grpc_byte_buffer *buffer)
{
	pthread_mutex_lock(&c->lock);
	int finished = c->status_queued;
	pthread_mutex_unlock(&c->lock);
	int more = 0;
	if (finished || atomic_load(&c->idle_expired)) {
		/* a message after an error or the status, or the reaper ended the stream */
		if (!finished)
			on_stream_closed(c, 0);
	} else if (atomic_load(&c->server->aborting)) {
		r5_call_release_memory(c);
		r5_call_finish(c, GRPC_STATUS_UNAVAILABLE, "server shutting down: scan not completed");
	} else {
		more = on_scan_message(c, buffer);
	}
	grpc_byte_buffer_destroy(buffer);
	if (more) {
		/* once the next receive is armed, its message may be processed on another ingest
		 * thread at once: nothing of the call's ingest state is touched here after it */
		r5_admission_touch(c);
		arm_recv(c);
	} else {
		atomic_store(&c->ingesting, 0);
	}
	r5_call_unref(c);
}
