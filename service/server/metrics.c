/* recon5td metrics (see metrics.h). Fixed-size tables of atomics: recording is a few relaxed
 * atomic adds; the exposition reads them while they move (each value is itself consistent; a
 * histogram's count is read after its buckets, so count >= the +Inf bucket is never violated
 * the other way by more than observations that raced the scrape). */
#include "metrics.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>

#include "recon/core/log.h"
#include "server.h"
#include "service/common/svc_proto.h"

#ifdef R5_HAVE_MICROHTTPD
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#endif

const double r5_hist_bounds[R5_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
						0.25,  0.5,    1,     2.5,  5,     10,   30};

void r5_histogram_observe(r5_histogram *h, double seconds)
{
	int i = 0;
	while (i < R5_HIST_BUCKETS && seconds > r5_hist_bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	double old = atomic_load_explicit(&h->sum, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&h->sum, &old, old + seconds, memory_order_relaxed,
						      memory_order_relaxed))
		;
	atomic_fetch_add_explicit(&h->count, 1, memory_order_release);
}

void r5_mbuf_printf(r5_mbuf *b, const char *format, ...)
{
	if (b->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, format);
		int n = vsnprintf(b->text ? b->text + b->len : NULL, b->text ? b->cap - b->len : 0, format, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if (b->text && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *text = realloc(b->text, cap);
		if (!text) {
			b->failed = 1;
			return;
		}
		b->text = text;
		b->cap = cap;
	}
}

void r5_mbuf_free(r5_mbuf *b)
{
	free(b->text);
	*b = (r5_mbuf){0};
}

void r5_mbuf_label_value(r5_mbuf *b, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			r5_mbuf_printf(b, "\\\\");
		else if (*p == '"')
			r5_mbuf_printf(b, "\\\"");
		else if (*p == '\n')
			r5_mbuf_printf(b, "\\n");
		else
			r5_mbuf_printf(b, "%c", *p);
	}
}

void r5_mbuf_histogram(r5_mbuf *b, const char *name, const char *labels, r5_histogram *h)
{
	unsigned long long count = atomic_load_explicit(&h->count, memory_order_acquire);
	double sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
	unsigned long long cumulative = 0;
	const char *comma = labels[0] ? "," : "";
	for (int i = 0; i <= R5_HIST_BUCKETS; i++) {
		cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i == R5_HIST_BUCKETS && cumulative < count)
			cumulative = count; /* an observation between the count and bucket loads */
		if (i < R5_HIST_BUCKETS)
			r5_mbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, comma, r5_hist_bounds[i], cumulative);
		else
			r5_mbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, comma, cumulative);
	}
	r5_mbuf_printf(b, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", sum);
	r5_mbuf_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", cumulative);
}

/* ---------------------------------------------------------------- the registry */

#define N_KINDS 6  /* enum r5_call_kind */
#define N_CODES 17 /* gRPC codes 0..16 */
static const struct {
	const char *type, *service, *method;
} call_labels[N_KINDS] = {
	[CALL_UNKNOWN] = {"unary", "unknown", "unknown"},
	[CALL_RECONSTRUCT] = {"bidi_stream", "recon5t.v1.Recon", "Reconstruct"},
	[CALL_CAPABILITIES] = {"unary", "recon5t.v1.Recon", "Capabilities"},
	[CALL_HEALTH] = {"unary", "grpc.health.v1.Health", "Check"},
	[CALL_CANCEL_JOB] = {"unary", "recon5t.v1.Recon", "CancelJob"},
	[CALL_DRAIN] = {"unary", "recon5t.v1.Recon", "Drain"},
};
static const char *const pipelines[] = {"auto", "cartesian", "sense", "grappa", "cs", "grid", "realtime", "other"};
#define N_PIPELINES (sizeof pipelines / sizeof pipelines[0])
static const char *const outcomes[] = {"ok", "error", "cancelled", "deadline_exceeded"};
#define N_OUTCOMES 4
static const char *const push_results[] = {"stored", "spooled", "failed"};
#define MAX_STAGES 32

static struct {
	atomic_ullong started[N_KINDS];
	atomic_ullong handled[N_KINDS][N_CODES];
	r5_histogram handling[N_KINDS];
	atomic_ullong jobs[N_PIPELINES][N_OUTCOMES];
	atomic_ullong ingest_bytes;
	atomic_ullong pacs_push[3];
	atomic_ullong mrd_started, mrd_handled[N_CODES];
	r5_histogram mrd_handling;
	/* stages: names claimed once (slot 0 free → CAS), then read-only */
	char stage_names[MAX_STAGES][32];
	atomic_int stage_state[MAX_STAGES]; /* 0 free, 1 being written, 2 named */
	r5_histogram stages[MAX_STAGES];
	double start_time;
} reg;

static int kind_index(int kind) { return kind >= 0 && kind < N_KINDS ? kind : CALL_UNKNOWN; }

void r5_metrics_call_started(int kind)
{
	atomic_fetch_add_explicit(&reg.started[kind_index(kind)], 1, memory_order_relaxed);
}

void r5_metrics_call_handled(int kind, int code, double seconds)
{
	int k = kind_index(kind);
	atomic_fetch_add_explicit(&reg.handled[k][code >= 0 && code < N_CODES ? code : GRPC_STATUS_UNKNOWN], 1,
				  memory_order_relaxed);
	r5_histogram_observe(&reg.handling[k], seconds);
}

void r5_metrics_job(const char *pipeline, r5_status status)
{
	size_t p = N_PIPELINES - 1;
	for (size_t i = 0; i + 1 < N_PIPELINES; i++)
		if (pipeline && strcmp(pipeline, pipelines[i]) == 0)
			p = i;
	int o = status == R5_OK ? 0 : status == R5_ECANCELLED ? 2 : status == R5_ETIMEDOUT ? 3 : 1;
	atomic_fetch_add_explicit(&reg.jobs[p][o], 1, memory_order_relaxed);
}

void r5_metrics_stage(const char *stage, double seconds)
{
	if (!stage || !*stage)
		return;
	for (int i = 0; i < MAX_STAGES; i++) {
		int state = atomic_load_explicit(&reg.stage_state[i], memory_order_acquire);
		if (state == 0) {
			int expected = 0;
			if (atomic_compare_exchange_strong(&reg.stage_state[i], &expected, 1)) {
				snprintf(reg.stage_names[i], sizeof reg.stage_names[i], "%s", stage);
				atomic_store_explicit(&reg.stage_state[i], 2, memory_order_release);
			}
			state = atomic_load_explicit(&reg.stage_state[i], memory_order_acquire);
		}
		while (state == 1) /* another thread is naming this slot: a few instructions */
			state = atomic_load_explicit(&reg.stage_state[i], memory_order_acquire);
		if (strncmp(reg.stage_names[i], stage, sizeof reg.stage_names[i] - 1) == 0) {
			r5_histogram_observe(&reg.stages[i], seconds);
			return;
		}
	}
}

void r5_metrics_mrd_started(void)
{
	atomic_fetch_add_explicit(&reg.mrd_started, 1, memory_order_relaxed);
}

void r5_metrics_mrd_handled(int code, double seconds)
{
	atomic_fetch_add_explicit(&reg.mrd_handled[code >= 0 && code < N_CODES ? code : GRPC_STATUS_UNKNOWN], 1,
				  memory_order_relaxed);
	r5_histogram_observe(&reg.mrd_handling, seconds);
}

void r5_metrics_ingest_bytes(long bytes)
{
	if (bytes > 0)
		atomic_fetch_add_explicit(&reg.ingest_bytes, (unsigned long long)bytes, memory_order_relaxed);
}

void r5_metrics_pacs_push(long stored, long spooled, long failed)
{
	long v[3] = {stored, spooled, failed};
	for (int i = 0; i < 3; i++)
		if (v[i] > 0)
			atomic_fetch_add_explicit(&reg.pacs_push[i], (unsigned long long)v[i], memory_order_relaxed);
}

/* ---------------------------------------------------------------- NVML (optional) */

typedef int (*nvml_fn_void)(void);
typedef int (*nvml_fn_handle)(unsigned int, void **);
typedef struct {
	unsigned long long total, free, used;
} nvml_memory;
typedef int (*nvml_fn_memory)(void *, nvml_memory *);
static struct {
	int tried, ok;
	nvml_fn_handle handle;
	nvml_fn_memory memory;
	int (*count)(unsigned int *);
} nvml;

static int nvml_open(void)
{
	if (nvml.tried)
		return nvml.ok;
	nvml.tried = 1;
	void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return 0;
	nvml_fn_void init = NULL;
	*(void **)&init = dlsym(lib, "nvmlInit_v2"); /* POSIX's way to take a function from dlsym */
	*(void **)&nvml.handle = dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
	*(void **)&nvml.memory = dlsym(lib, "nvmlDeviceGetMemoryInfo");
	*(void **)&nvml.count = dlsym(lib, "nvmlDeviceGetCount_v2");
	if (!init || !nvml.handle || !nvml.memory || !nvml.count || init() != 0)
		return 0;
	nvml.ok = 1;
	return 1;
}

/* ---------------------------------------------------------------- exposition */

static void header(r5_mbuf *b, const char *name, const char *type, const char *help)
{
	r5_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void r5_metrics_write(r5_server *s, r5_mbuf *b)
{
	header(b, "grpc_server_started_total", "counter", "RPCs started on the server.");
	for (int k = 0; k < N_KINDS; k++)
		r5_mbuf_printf(b, "grpc_server_started_total{grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\"} %llu\n",
			       call_labels[k].type, call_labels[k].service, call_labels[k].method,
			       atomic_load(&reg.started[k]));
	header(b, "grpc_server_handled_total", "counter", "RPCs completed on the server, by status code.");
	for (int k = 0; k < N_KINDS; k++)
		for (int code = 0; code < N_CODES; code++) {
			unsigned long long v = atomic_load(&reg.handled[k][code]);
			if (v || code == 0)
				r5_mbuf_printf(b,
					       "grpc_server_handled_total{grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\","
					       "grpc_code=\"%s\"} %llu\n",
					       call_labels[k].type, call_labels[k].service, call_labels[k].method,
					       r5_svc_grpc_code_name((grpc_status_code)code), v);
		}
	header(b, "grpc_server_handling_seconds", "histogram", "Time from the start of an RPC to its status, seconds.");
	for (int k = 0; k < N_KINDS; k++) {
		char labels[160];
		snprintf(labels, sizeof labels, "grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\"", call_labels[k].type,
			 call_labels[k].service, call_labels[k].method);
		r5_mbuf_histogram(b, "grpc_server_handling_seconds", labels, &reg.handling[k]);
	}
	header(b, "recon5t_jobs_total", "counter", "Reconstruction jobs ended, by requested pipeline and outcome.");
	for (size_t p = 0; p < N_PIPELINES; p++)
		for (int o = 0; o < N_OUTCOMES; o++) {
			unsigned long long v = atomic_load(&reg.jobs[p][o]);
			if (v)
				r5_mbuf_printf(b, "recon5t_jobs_total{pipeline=\"%s\",outcome=\"%s\"} %llu\n", pipelines[p],
					       outcomes[o], v);
		}
	header(b, "recon5t_stage_seconds", "histogram", "Time spent in each reconstruction stage, seconds.");
	for (int i = 0; i < MAX_STAGES; i++) {
		if (atomic_load_explicit(&reg.stage_state[i], memory_order_acquire) != 2)
			continue;
		r5_mbuf label = {0};
		r5_mbuf_printf(&label, "stage=\"");
		r5_mbuf_label_value(&label, reg.stage_names[i]);
		r5_mbuf_printf(&label, "\"");
		if (!label.failed)
			r5_mbuf_histogram(b, "recon5t_stage_seconds", label.text, &reg.stages[i]);
		r5_mbuf_free(&label);
	}
	header(b, "recon5t_mrd_connections_started_total", "counter", "MRD v1 connections accepted.");
	r5_mbuf_printf(b, "recon5t_mrd_connections_started_total %llu\n", atomic_load(&reg.mrd_started));
	header(b, "recon5t_mrd_connections_handled_total", "counter",
	       "MRD v1 connections ended, by the gRPC code of their job's status or refusal.");
	for (int code = 0; code < N_CODES; code++) {
		unsigned long long v = atomic_load(&reg.mrd_handled[code]);
		if (v || code == 0)
			r5_mbuf_printf(b, "recon5t_mrd_connections_handled_total{grpc_code=\"%s\"} %llu\n",
				       r5_svc_grpc_code_name((grpc_status_code)code), v);
	}
	header(b, "recon5t_mrd_connection_seconds", "histogram", "Time from accepting an MRD connection to its status, seconds.");
	r5_mbuf_histogram(b, "recon5t_mrd_connection_seconds", "", &reg.mrd_handling);
	header(b, "recon5t_ingest_bytes_total", "counter", "k-space sample bytes received in Reconstruct streams.");
	r5_mbuf_printf(b, "recon5t_ingest_bytes_total %llu\n", atomic_load(&reg.ingest_bytes));
	header(b, "recon5t_pacs_push_total", "counter", "DICOM instances pushed to the PACS after jobs, by result.");
	for (int i = 0; i < 3; i++)
		r5_mbuf_printf(b, "recon5t_pacs_push_total{result=\"%s\"} %llu\n", push_results[i],
			       atomic_load(&reg.pacs_push[i]));
	if (nvml_open()) {
		unsigned int n = 0;
		if (nvml.count(&n) == 0 && n > 0) {
			header(b, "recon5t_gpu_memory_used_bytes", "gauge", "GPU memory in use (NVML), bytes.");
			for (unsigned int i = 0; i < n && i < 16; i++) {
				void *dev = NULL;
				nvml_memory m;
				if (nvml.handle(i, &dev) == 0 && nvml.memory(dev, &m) == 0)
					r5_mbuf_printf(b, "recon5t_gpu_memory_used_bytes{gpu=\"%u\"} %llu\n", i, m.used);
			}
		}
	}
	header(b, "recon5t_process_start_time_seconds", "gauge", "Start time of the process since the epoch, seconds.");
	r5_mbuf_printf(b, "recon5t_process_start_time_seconds %.3f\n", reg.start_time);
	header(b, "recon5t_build_info", "gauge", "Build information (always 1).");
	r5_mbuf_printf(b, "recon5t_build_info{version=\"");
	r5_mbuf_label_value(b, R5_VERSION);
	r5_mbuf_printf(b, "\"} 1\n");
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	int queued = s->queued, usable = s->usable_workers, streams = s->active_streams, running = s->running;
	long reserved = s->memory_in_use, budget = s->memory_budget;
	pthread_mutex_unlock(&s->lock);
	int serving = !atomic_load(&s->draining) && usable > 0;
	header(b, "recon5t_queue_depth", "gauge", "Jobs waiting for a worker.");
	r5_mbuf_printf(b, "recon5t_queue_depth %d\n", queued);
	header(b, "recon5t_jobs_running", "gauge", "Jobs running on workers.");
	r5_mbuf_printf(b, "recon5t_jobs_running %d\n", running);
	header(b, "recon5t_workers_usable", "gauge", "Workers with a working back-end context.");
	r5_mbuf_printf(b, "recon5t_workers_usable %d\n", usable);
	header(b, "recon5t_streams_active", "gauge", "Open Reconstruct streams.");
	r5_mbuf_printf(b, "recon5t_streams_active %d\n", streams);
	header(b, "recon5t_memory_reserved_bytes", "gauge", "Memory budget reserved by jobs in flight, bytes.");
	r5_mbuf_printf(b, "recon5t_memory_reserved_bytes %ld\n", reserved > 0 ? reserved : 0);
	header(b, "recon5t_memory_budget_bytes", "gauge", "The memory budget, bytes.");
	r5_mbuf_printf(b, "recon5t_memory_budget_bytes %ld\n", budget);
	header(b, "recon5t_serving", "gauge", "1 when health says SERVING (not draining, a worker usable).");
	r5_mbuf_printf(b, "recon5t_serving %d\n", serving);
	if (s->pacs_enabled) {
		header(b, "recon5t_spool_pending", "gauge", "DICOM instances waiting in the PACS spool.");
		r5_mbuf_printf(b, "recon5t_spool_pending %ld\n", r5_pacs_spool_count(s->pacs_spool));
	}
}

/* ---------------------------------------------------------------- the endpoint */

#ifdef R5_HAVE_MICROHTTPD
static struct MHD_Daemon *daemon_handle;

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **state)
{
	(void)version, (void)upload, (void)upload_size, (void)state;
	r5_server *s = cls;
	unsigned int code = MHD_HTTP_OK;
	r5_mbuf b = {0};
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		r5_mbuf_printf(&b, "only GET\n");
	} else if (strcmp(url, "/metrics") != 0) {
		code = MHD_HTTP_NOT_FOUND;
		r5_mbuf_printf(&b, "not found: try /metrics\n");
	} else {
		r5_metrics_write(s, &b);
	}
	if (b.failed) {
		r5_mbuf_free(&b);
		return MHD_NO;
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		r5_mbuf_free(&b);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type",
				code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET");
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

r5_status r5_metrics_start(r5_server *s, const char *listen, int *port)
{
	reg.start_time = (double)time(NULL);
	*port = 0;
	if (!listen || !*listen)
		return R5_OK;
	const char *colon = strrchr(listen, ':');
	if (!colon)
		return r5_set_error(R5_EINVAL, "metrics_listen %s: expected HOST:PORT", listen);
	char host[128];
	snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
	if (host[0] == '[') { /* [::1]:port */
		memmove(host, host + 1, strlen(host));
		char *end = strchr(host, ']');
		if (end)
			*end = '\0';
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai) != 0 || !ai)
		return r5_set_error(R5_EINVAL, "metrics_listen %s: cannot resolve", listen);
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	daemon_handle = MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
					 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!daemon_handle)
		return r5_set_error(R5_EIO, "metrics_listen %s: cannot bind", listen);
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? (int)info->port : 0;
	return R5_OK;
}

void r5_metrics_stop(void)
{
	if (daemon_handle)
		MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
}
#else
r5_status r5_metrics_start(r5_server *s, const char *listen, int *port)
{
	(void)s;
	reg.start_time = (double)time(NULL);
	*port = 0;
	if (!listen || !*listen)
		return R5_OK;
	return r5_set_error(R5_ENOTSUP, "metrics_listen %s: recon5td was built without libmicrohttpd (no metrics "
					"endpoint); install libmicrohttpd-dev and rebuild, or leave metrics_listen empty",
			    listen);
}
void r5_metrics_stop(void) {}
#endif
