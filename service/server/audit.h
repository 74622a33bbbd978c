/* The audit log (config key audit_log, "" = none): JSON lines, one per authorization decision
 * (written when the call's status is decided, so the outcome is the call's gRPC code):
 *   {"time":"2026-12-02T14:03:04.123Z","identity":"console-1","role":"console",
 *    "peer":"127.0.0.1","method":"/recon5t.v1.Reconstruction/Reconstruct","job_id":"j...",
 *    "outcome":"OK","code":0,"study_uid_sha256":"<hex>","note":"priority capped to research"}
 * Opened O_APPEND|O_CREAT, mode 0600; each line is one write(2) followed by fsync, under a
 * mutex (thread-safe). Never patient data: the study instance UID only as its SHA-256. */
#ifndef R5_SERVER_AUDIT_H
#define R5_SERVER_AUDIT_H

#include "recon/core/status.h"

typedef struct r5_audit r5_audit;

typedef struct r5_audit_record {
	const char *identity, *role, *peer, *method, *job_id;
	int code;                 /* grpc_status_code */
	const char *code_name;    /* "OK", "PERMISSION_DENIED", ... */
	const char *study_uid;    /* hashed; NULL or "" = none */
	const char *note;         /* NULL or "" = none */
} r5_audit_record;

/* path "" or NULL: *out = NULL (no audit log, r5_audit_write does nothing). */
r5_status r5_audit_open(const char *path, r5_audit **out);
void r5_audit_close(r5_audit *a);
/* Appends one line; a failed write is logged (r5_error), never fatal. */
void r5_audit_write(r5_audit *a, const r5_audit_record *r);

#endif
