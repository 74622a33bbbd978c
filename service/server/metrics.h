/* recon5td metrics: a small thread-safe registry (C11 atomics, no lock on the hot path) and
 * its Prometheus text exposition (format 0.0.4), served on metrics_listen by libmicrohttpd
 * (GET /metrics; 404 for other paths, 405 for other methods). Labels come only from fixed
 * sets (method names, gRPC code names, pipeline names, outcomes, stages, results): never a
 * patient, study, series or job id. Base units: seconds and bytes.
 *
 * The primitives (counter, histogram with fixed buckets in seconds, text buffer, label
 * escaping) are public for the unit test; the server records through the r5_metrics_* calls
 * (one line at each instrumented place) and gauges are read from the server at scrape time. */
#ifndef R5_SERVER_METRICS_H
#define R5_SERVER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

#include "recon/core/status.h"

typedef struct r5_server r5_server;

#define R5_HIST_BUCKETS 14
extern const double r5_hist_bounds[R5_HIST_BUCKETS]; /* upper bounds in seconds, +Inf implied */

typedef struct r5_histogram {
	atomic_ullong buckets[R5_HIST_BUCKETS + 1]; /* not cumulative; the last is +Inf */
	atomic_ullong count;
	_Atomic double sum;
} r5_histogram;

void r5_histogram_observe(r5_histogram *h, double seconds);

/* Growing text buffer; on allocation failure `failed` is set and appends are dropped. */
typedef struct r5_mbuf {
	char *text;
	size_t len, cap;
	int failed;
} r5_mbuf;
void r5_mbuf_printf(r5_mbuf *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
void r5_mbuf_free(r5_mbuf *b);
/* A label value escaped per the exposition format (\\, \", \n). */
void r5_mbuf_label_value(r5_mbuf *b, const char *value);
/* `name`_bucket{labels,le="..."} (cumulative), `name`_sum and `name`_count; labels is
 * "a=\"x\",b=\"y\"" already escaped, or "". */
void r5_mbuf_histogram(r5_mbuf *b, const char *name, const char *labels, r5_histogram *h);

/* Recording (any thread). kind: enum r5_call_kind of server.h; code a grpc_status_code. */
void r5_metrics_call_started(int kind);
void r5_metrics_call_handled(int kind, int code, double seconds);
/* outcome from the job's status: ok, cancelled, deadline_exceeded, error */
void r5_metrics_job(const char *pipeline, r5_status status);
void r5_metrics_stage(const char *stage, double seconds);
void r5_metrics_ingest_bytes(long bytes);
void r5_metrics_pacs_push(long stored, long spooled, long failed);
/* MRD v1 connections (mrd.c): not gRPC calls, so counted apart from grpc_server_*: started when
 * accepted, handled with the gRPC code of the status its job (or refusal) ended with. */
void r5_metrics_mrd_started(void);
void r5_metrics_mrd_handled(int code, double seconds);

/* The whole exposition (server gauges read under its lock; s NULL: registry only). */
void r5_metrics_write(r5_server *s, r5_mbuf *b);

/* metrics_listen "" : nothing. Else starts the endpoint; *port is the bound port. R5_ENOTSUP when
 * built without libmicrohttpd. */
r5_status r5_metrics_start(r5_server *s, const char *listen, int *port);
void r5_metrics_stop(void);

#endif
