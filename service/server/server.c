/* recon5td's gRPC plumbing: the main server (and an optional separate health server) on one
 * completion queue, a few threads draining it and dispatching each tag to the call's state
 * machine (calls.c). Nothing here blocks: parsing and sorting acquisitions is the ingest
 * threads' (ingest.c), reconstruction the workers' (jobs.c). */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "recon/core/log.h"
#include "metrics.h"

static void *cq_thread(void *arg)
{
	r5_server *s = arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		r5_tag *tag = ev.tag;
		R5_TAG_ACQUIRE(tag);
		switch (tag->kind) {
		case TAG_NEW: r5_call_on_new(tag->call, ev.success); break;
		case TAG_RECV: r5_call_on_recv(tag->call, ev.success); break;
		case TAG_SEND: r5_call_on_send(tag->call, ev.success); break;
		case TAG_CLOSE: r5_call_on_close(tag->call, ev.success); break;
		case TAG_SHUTDOWN:
			pthread_mutex_lock(&s->lock);
			s->shutdowns_pending--;
			pthread_cond_broadcast(&s->changed);
			pthread_mutex_unlock(&s->lock);
			free(tag);
			break;
		}
	}
	return NULL;
}

/* Arms one grpc_server_request_call; its completion (TAG_NEW) arms the next. */
void r5_server_request_call(r5_server *s, grpc_server *on, int health_port)
{
	r5_call *c = calloc(1, sizeof *c);
	if (!c) {
		r5_error("out of memory arming a new call; the server stops accepting");
		return;
	}
	c->server = s;
	c->grpc_server = on;
	c->health_port = health_port;
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->cancelled, 0);
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->request_metadata);
	c->tag_new = (r5_tag){TAG_NEW, c, s};
	c->tag_recv = (r5_tag){TAG_RECV, c, s};
	c->tag_send = (r5_tag){TAG_SEND, c, s};
	c->tag_close = (r5_tag){TAG_CLOSE, c, s};
	c->refs = 1; /* the pending request */
	R5_TAG_RELEASE(&c->tag_new);
	grpc_call_error err = grpc_server_request_call(on, &c->call, &c->details, &c->request_metadata, s->cq, s->cq,
						       &c->tag_new);
	if (err != GRPC_CALL_OK) {
		r5_error("grpc_server_request_call failed (%d)", (int)err);
		grpc_call_details_destroy(&c->details);
		grpc_metadata_array_destroy(&c->request_metadata);
		pthread_mutex_destroy(&c->lock);
		free(c);
	}
}

static grpc_server *make_server(r5_server *s, const char *address, int *port, int max_message_bytes)
{
	/* keepalive pings find a client whose host vanished without a reset (power, network): its
	 * calls are cancelled after keepalive_s + min(10 s, keepalive_s) with no ping ack, which
	 * stops its job and frees its slot (the ingest idle reaper never sees it: a frozen client's
	 * connection is gone first when ingest_idle_s is longer) */
	int keepalive_ms = (int)(s->config.keepalive_s * 1000.0);
	grpc_arg args[8];
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = max_message_bytes;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[1].value.integer = -1;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = GRPC_ARG_ALLOW_REUSEPORT;
	args[2].value.integer = 0;
	args[3].type = GRPC_ARG_INTEGER;
	args[3].key = GRPC_ARG_KEEPALIVE_TIME_MS;
	args[3].value.integer = keepalive_ms;
	args[4].type = GRPC_ARG_INTEGER;
	args[4].key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
	args[4].value.integer = keepalive_ms < 10000 ? keepalive_ms : 10000; /* ping ack wait: min(10 s, keepalive_s) */
	args[5].type = GRPC_ARG_INTEGER;
	args[5].key = GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA;
	args[5].value.integer = 0; /* keep pinging while a long reconstruction sends nothing */
	/* a client that connects and never completes the TLS handshake holds no slot for long */
	args[6].type = GRPC_ARG_INTEGER;
	args[6].key = GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS;
	args[6].value.integer = 20000;
	/* streams per connection: max_streams bounds Reconstruct; this bounds any one client */
	args[7].type = GRPC_ARG_INTEGER;
	args[7].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
	args[7].value.integer = 100;
	grpc_channel_args channel_args = {8, args};
	grpc_server *server = grpc_server_create(&channel_args, NULL);
	grpc_server_register_completion_queue(server, s->cq, NULL);
	/* the main port: TLS or plaintext (security.c); the health port stays plaintext */
	grpc_server_credentials *creds = port == &s->main_port ? r5_security_server_credentials(s)
								     : grpc_insecure_server_credentials_create();
	*port = creds ? grpc_server_add_http2_port(server, address, creds) : -1;
	if (creds)
		grpc_server_credentials_release(creds);
	if (*port <= 0) {
		grpc_server_destroy(server);
		return NULL;
	}
	grpc_server_start(server);
	return server;
}

r5_status r5_server_start(r5_server *s, const r5_server_config *config)
{
	s->config = *config;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->changed, NULL);
	atomic_init(&s->draining, 0);
	atomic_init(&s->aborting, 0);
	s->memory_budget = config->memory_budget_mb * 1024L * 1024L;
	R5_TRY(r5_security_start(s));
	R5_TRY(r5_pacs_out_start(s));
	R5_TRY(r5_jobs_start(s));
	R5_TRY(r5_ingest_start(s));
	R5_TRY(r5_admission_start(s));
	s->cq = grpc_completion_queue_create_for_next(NULL);
	int max_message = (int)(config->max_message_mb * 1024L * 1024L);
	s->main_server = make_server(s, config->listen, &s->main_port, max_message);
	if (!s->main_server)
		return s->main_port < 0 ? R5_EINVAL /* the TLS files: r5_last_error says why */
					: r5_set_error(R5_EIO, "listen %s: cannot bind (in use, or not HOST:PORT?)", config->listen);
	if (config->health_listen[0]) {
		s->health_server = make_server(s, config->health_listen, &s->health_port, 4096);
		if (!s->health_server)
			return r5_set_error(R5_EIO, "health_listen %s: cannot bind", config->health_listen);
	}
	R5_TRY(r5_metrics_start(s, config->metrics_listen, &s->metrics_port));
	R5_TRY(r5_mrd_start(s));
	s->n_cq_threads = config->cq_threads;
	s->cq_threads = calloc((size_t)s->n_cq_threads, sizeof *s->cq_threads);
	if (!s->cq_threads)
		return r5_set_error(R5_ENOMEM, "cq threads");
	for (int i = 0; i < s->n_cq_threads; i++)
		if (pthread_create(&s->cq_threads[i], NULL, cq_thread, s) != 0) {
			int wanted = s->n_cq_threads;
			s->n_cq_threads = i;
			return r5_set_error(R5_ENOMEM, "cannot start completion-queue thread %d of %d", i + 1, wanted);
		}
	/* A few requests armed per server so that bursts of new calls do not wait on each other. */
	for (int i = 0; i < 4; i++) {
		r5_server_request_call(s, s->main_server, 0);
		if (s->health_server)
			r5_server_request_call(s, s->health_server, 1);
	}
	return R5_OK;
}

static void shutdown_server(r5_server *s, grpc_server *server)
{
	r5_tag *tag = calloc(1, sizeof *tag);
	tag->kind = TAG_SHUTDOWN;
	tag->server = s;
	pthread_mutex_lock(&s->lock);
	s->shutdowns_pending++;
	pthread_mutex_unlock(&s->lock);
	R5_TAG_RELEASE(tag);
	grpc_server_shutdown_and_notify(server, s->cq, tag);
}

int r5_server_begin_drain(r5_server *s, const char *why)
{
	if (atomic_exchange(&s->draining, 1))
		return 0;
	/* No GOAWAY yet (r5_server_stop sends it once in-flight work has ended): gRPC core 1.51
	 * closes a connection the moment its last stream ends after a GOAWAY, and a client whose
	 * WINDOW_UPDATE or PING crosses that close is answered by a TCP reset, which can reach it
	 * before the job's final status does (UNAVAILABLE "Broken pipe" for a finished job). So new
	 * streams are refused by admission.c (UNAVAILABLE "draining"), health says NOT_SERVING, and
	 * the listeners stay up (on the main port, health probes keep their answers). */
	r5_info("draining (%s): new streams refused, in-flight ones go on; GOAWAY when they have ended", why);
	return 1;
}

void r5_server_stop(r5_server *s)
{
	if (s->main_server)
		shutdown_server(s, s->main_server);
	if (s->health_server)
		shutdown_server(s, s->health_server);
	if (s->main_server)
		grpc_server_cancel_all_calls(s->main_server);
	if (s->health_server)
		grpc_server_cancel_all_calls(s->health_server);
	pthread_mutex_lock(&s->lock);
	while (s->shutdowns_pending > 0)
		pthread_cond_wait(&s->changed, &s->lock);
	pthread_mutex_unlock(&s->lock);
	r5_metrics_stop();
	r5_mrd_stop(s); /* connections end with their jobs, before the workers stop */
	r5_ingest_stop(s);
	r5_realtime_wait_all(s); /* frame threads stop on their calls' cancel */
	r5_admission_stop(s);
	r5_jobs_stop(s);
	r5_pacs_out_stop(s);
	grpc_completion_queue_shutdown(s->cq);
	for (int i = 0; i < s->n_cq_threads; i++)
		pthread_join(s->cq_threads[i], NULL);
	free(s->cq_threads);
	if (s->main_server)
		grpc_server_destroy(s->main_server);
	if (s->health_server)
		grpc_server_destroy(s->health_server);
	grpc_completion_queue_destroy(s->cq);
	r5_security_stop(s); /* after the servers: the TLS fetcher's state */
	/* every call and job is gone: budget still reserved is a leak (tests look for these lines) */
	if (s->memory_in_use != 0)
		r5_warn("memory budget: %ld bytes still reserved after every call ended", s->memory_in_use);
	else
		r5_info("memory budget: nothing reserved after every call ended");
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
}
