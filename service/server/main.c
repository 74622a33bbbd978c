/* recon5td: the recon5t reconstruction server. Reads its configuration (defaults < --config
 * file < R5_* environment < flags), starts the gRPC service and the workers, and on SIGTERM or
 * SIGINT drains: health says NOT_SERVING, new streams are refused (UNAVAILABLE), in-flight jobs
 * may finish for grace_s seconds, then they are cancelled with a status; then GOAWAY and exit 0. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <grpc/grpc.h>

#include "recon/cpu/cpu_fft.h"
#include "recon/cpu/omp_env.h"
#include "config.h"
#include "recon/core/log.h"
#include "server.h"

static int active(r5_server *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->active_streams + s->queued + s->running;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void sleep_s(double seconds)
{
	struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
	nanosleep(&ts, NULL);
}

/* After r5_server_begin_drain (a signal or an admin RPC): in-flight work may end for grace_s,
 * then what is left is cancelled (UNAVAILABLE "server shutting down") and given 5 s to go. */
static void drain(r5_server *s)
{
	int in_flight = active(s);
	r5_info("draining: %d streams/jobs in flight, grace %.0f s", in_flight, s->config.grace_s);
	double start = r5_svc_now();
	while (active(s) > 0 && r5_svc_now() - start < s->config.grace_s)
		sleep_s(0.05);
	if (active(s) > 0) {
		r5_warn("grace period over: cancelling %d streams/jobs", active(s));
		atomic_store(&s->aborting, 1);
		double abort_start = r5_svc_now();
		while (active(s) > 0 && r5_svc_now() - abort_start < 5.0)
			sleep_s(0.05);
	}
	/* A call is done when its status is in the socket; the GOAWAY that r5_server_stop sends
	 * closes idle connections at once. When the last calls ended with their results, give
	 * their clients a moment to read the status first. Calls cut at grace's end get none: a
	 * reset reads as UNAVAILABLE too, as their status does, and the stop stays prompt. */
	if (in_flight > 0 && !atomic_load(&s->aborting))
		sleep_s(1.0);
}

int main(int argc, char **argv)
{
	r5_cpu_passive_wait_reexec(argv); /* before anything loads OpenMP work: see omp_env.h */
	r5_server_config config;
	int help = 0;
	if (r5_server_config_from_args(&config, argc, argv, &help) != R5_OK) {
		fprintf(stderr, "recon5td: %s\n", r5_last_error());
		return 2;
	}
	if (help) {
		r5_server_config_usage();
		return 0;
	}
	umask(077); /* whatever the server writes (spool, outbox, wisdom, logs) is ours alone */
	r5_log_set_level((r5_log_level)r5_log_level_parse(config.log_level));
	if (r5_cpu_fft_configure(config.fft_wisdom) != R5_OK) { /* before any worker plans */
		fprintf(stderr, "recon5td: fft_wisdom: %s\n", r5_last_error());
		return 2;
	}
#ifdef __GLIBC__
	/* A fixed mmap threshold: glibc otherwise raises it after each large free (up to 32 MiB), so
	 * later k-space and images come from the heap arenas and stay resident after the job; the
	 * memory budget's accounting (and the RSS back near baseline) assumes they are returned. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
	/* Signals are taken synchronously by this thread only: block them before threads start. */
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	grpc_init();
	static r5_server server;
	if (r5_server_start(&server, &config) != R5_OK) {
		fprintf(stderr, "recon5td: %s\n", r5_last_error());
		return 1;
	}
	r5_info("recon5td %s listening on %s (port %d)%s%s; %d workers, max_streams %d, max_queue %d, memory budget "
		"%ld MiB, max message %ld MiB",
		R5_VERSION, config.listen, server.main_port, server.health_server ? ", health on " : "",
		server.health_server ? config.health_listen : "", server.n_workers, config.max_streams, config.max_queue,
		config.memory_budget_mb, config.max_message_mb);
	if (server.metrics_port)
		r5_info("metrics on %s (port %d): GET /metrics", config.metrics_listen, server.metrics_port);
	/* a signal, or a drain begun elsewhere (r5_server_begin_drain from an admin RPC) */
	while (!atomic_load(&server.draining)) {
		struct timespec poll = {0, 200 * 1000 * 1000};
		int signal_number = sigtimedwait(&signals, NULL, &poll);
		if (signal_number > 0) {
			char why[32];
			snprintf(why, sizeof why, "signal %d", signal_number);
			r5_server_begin_drain(&server, why);
		}
	}
	drain(&server);
	r5_server_stop(&server);
	grpc_shutdown();
	r5_info("recon5td stopped (%ld jobs done, %ld failed)", server.jobs_done, server.jobs_failed);
	return 0;
}
