/* recon5td configuration: built-in defaults, then a key=value file (--config FILE), then R5_*
 * environment variables, then command-line flags, each overriding the one before. Unknown keys
 * in the file and unknown flags are errors; bad values name the key and where it came from. */
#ifndef R5_SERVER_CONFIG_H
#define R5_SERVER_CONFIG_H

#include "recon/core/status.h"

typedef struct r5_server_config {
	char listen[128];        /* HOST:PORT of the main gRPC port */
	char health_listen[128]; /* separate plaintext health port, "" = none */
	char metrics_listen[128]; /* HOST:PORT of the Prometheus endpoint (GET /metrics), "" = none */
	int workers;             /* 0 = one per GPU, or cpu_workers when there is none */
	int cpu_workers;         /* CPU workers when no GPU is used */
	char backend[16];        /* auto | cpu | gpu (| cpu-fault, tests with R5_FAULT_INJECT) */
	int cq_threads;          /* completion-queue threads (move bytes only) */
	int max_queue;           /* queued jobs (not yet running) before RESOURCE_EXHAUSTED */
	int max_streams;         /* concurrent Reconstruct streams */
	int max_streams_per_peer; /* concurrent Reconstruct streams from one client address */
	int ingest_threads;      /* threads that sort received acquisitions into k-space */
	double ingest_idle_s;    /* a stream with no message for this long is ended */
	long max_header_kb;      /* largest ISMRMRD XML header accepted */
	double keepalive_s;      /* HTTP/2 pings to find clients that vanished without a reset */
	long memory_budget_mb;   /* k-space of all jobs in flight */
	long max_message_mb;     /* largest gRPC message accepted */
	double grace_s;          /* SIGTERM: how long in-flight jobs may run before cancellation */
	char log_level[8];
	/* PACS push (C-STORE of every job's DICOM series); pacs_host "" = none configured */
	char pacs_host[256];
	int pacs_port;
	char pacs_called_ae[17];
	char pacs_calling_ae[17];
	int pacs_timeout_s;    /* connect/association/DIMSE timeout */
	double pacs_retry_s;   /* how often the spooler looks for due retries */
	char spool_dir[1024];  /* per-job DICOM files and the spool of undelivered instances */
	char fft_wisdom[1024]; /* FFTW wisdom file: CPU FFTs planned with FFTW_MEASURE; "" = ESTIMATE */
	int early_calibration; /* 1: sense/cs coil maps computed while the scan streams in */
	int realtime_threads;  /* OpenMP threads per real-time frame thread (0: the default, all cores) */
	int deidentify_research; /* 1: research-priority jobs' DICOM de-identified (PS3.15 Annex E) */
	/* transport security and identity (server.c, auth.h, audit.h) */
	char tls_cert[1024];      /* PEM server certificate (chain): TLS on the main port; "" = plaintext */
	char tls_key[1024];       /* PEM private key of tls_cert */
	char tls_client_ca[1024]; /* PEM CA(s) of client certificates: mutual TLS required; "" = none */
	char tokens_file[1024];   /* roles, salted token hashes, certificate names (auth.h); "" = none */
	int insecure;             /* 1: allow plaintext on a non-loopback address, TLS without credentials */
	char audit_log[1024];     /* JSON lines, one per authorization decision; "" = none */
	/* MRD v1 ("FIRE") listener (mrd.c): plaintext only, so loopback unless mrd_insecure = 1 with
	 * an allow-list of peer addresses */
	char mrd_listen[128];  /* HOST:PORT, "" = off */
	int mrd_insecure;      /* 1: allow mrd_listen off loopback (needs mrd_allow) */
	char mrd_allow[1024];  /* peer addresses / CIDR prefixes, IPv4 and IPv6 (addr_allow.h); "" = any on loopback */
	char mrd_role[16];     /* the role of every MRD connection (console | research) */
	int mrd_pacs;          /* 1: MRD jobs push to the PACS too (default 0: the console archives) */
} r5_server_config;

extern const r5_server_config r5_server_config_defaults;
/* 1 when listen (HOST:PORT) is on a loopback address */
int r5_server_config_loopback(const char *listen);

/* Sets one key ("listen", "workers", ... as in the file); `origin` names where it came from. */
r5_status r5_server_config_set(r5_server_config *c, const char *key, const char *value, const char *origin);
/* key = value lines, '#' comments, optional [section] headers ignored. */
r5_status r5_server_config_load_file(r5_server_config *c, const char *path);
/* R5_LISTEN, R5_WORKERS, ... (the key upper-cased with prefix R5_). */
r5_status r5_server_config_load_env(r5_server_config *c);
/* Full resolution from argv: --config first, then env, then flags. *show_help is set for -h. */
r5_status r5_server_config_from_args(r5_server_config *c, int argc, char **argv, int *show_help);
void r5_server_config_usage(void);
/* Checks across keys (a PACS host needs a called AE title and a spool directory). */
r5_status r5_server_config_check(const r5_server_config *c);

#endif
