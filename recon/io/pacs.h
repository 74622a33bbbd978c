/* Delivery of DICOM files to a PACS by DICOM C-STORE (PS3.4 B, PS3.7 9.1.1), with a disk spool
 * so that no image is lost while a PACS is down.
 *
 *   r5_pacs_store_files  one association, every file sent by C-STORE (dcmtk's DcmSCU behind
 *                        this C interface, pacs_scu.cc); reports which were stored.
 *   r5_pacs_deliver      store, and copy whatever could not be stored into the spool.
 *   r5_pacs_spool_retry  resend spooled files whose retry time has come; exponential backoff
 *                        per file (R5_PACS_BACKOFF_FIRST_S doubling to R5_PACS_BACKOFF_MAX_S).
 *   r5_pacs_spooler_*    a background thread calling r5_pacs_spool_retry every period.
 *
 * Spool layout (one directory per destination, created on demand): for each waiting instance
 * "<id>.dcm" (a copy) and "<id>.meta" ("attempts N\nnext_s T\nsource PATH\n"); both written to a
 * temporary name and renamed, so a crash leaves either a complete entry or a stray .tmp (never
 * a half file the retrier would send). A file leaves the spool only after the PACS confirmed it
 * (C-STORE status success or warning). One retrier per spool directory at a time (the spooler
 * holds a lock; callers of r5_pacs_spool_retry must not run two at once on one directory). */
#ifndef R5_IO_PACS_H
#define R5_IO_PACS_H

#include "../core/status.h"

#define R5_PACS_BACKOFF_FIRST_S 5.0
#define R5_PACS_BACKOFF_MAX_S 600.0

typedef struct r5_pacs_dest {
	char calling_ae[17]; /* our AE title ("RECON5T" when empty) */
	char called_ae[17];  /* the PACS's AE title */
	char host[256];
	int port;
	int timeout_s; /* connect, ACSE and DIMSE timeouts (0: 10 s) */
} r5_pacs_dest;

typedef struct r5_pacs_result {
	long n_stored;  /* confirmed by the PACS */
	long n_spooled; /* waiting in the spool (after this call) */
	long n_failed;  /* neither stored nor spooled (only when the spool itself failed) */
} r5_pacs_result;

/* Sends n files over one association. stored (n entries, may be NULL) gets 1 per file the
 * PACS confirmed. Returns R5_OK only when every file was stored; R5_EIO naming the destination
 * and reason otherwise (association refused, connection failed, a C-STORE failure status);
 * R5_ENOTSUP when built without dcmtk. */
r5_status r5_pacs_store_files(const r5_pacs_dest *dest, const char *const *paths, long n, unsigned char *stored);

/* Stores n files; each one not stored is copied into spool_dir. Returns R5_OK when every file
 * was either stored or spooled (result says which), an error when some file could be neither
 * (result->n_failed > 0). */
r5_status r5_pacs_deliver(const r5_pacs_dest *dest, const char *spool_dir, const char *const *paths, long n,
			  r5_pacs_result *result);

/* Resends spooled files whose next attempt time is <= now_s (seconds since the epoch, as from
 * time(NULL)); stored ones leave the spool, failed ones back off. result: n_stored sent now,
 * n_spooled still waiting. A missing spool directory is an empty spool. */
r5_status r5_pacs_spool_retry(const char *spool_dir, const r5_pacs_dest *dest, double now_s, r5_pacs_result *result);
/* Number of instances waiting in the spool. */
long r5_pacs_spool_count(const char *spool_dir);

typedef struct r5_pacs_spooler r5_pacs_spooler;
/* Starts a thread that retries the spool every period_s seconds (strings are copied). */
r5_status r5_pacs_spooler_start(const char *spool_dir, const r5_pacs_dest *dest, double period_s,
				r5_pacs_spooler **out);
/* Stops and joins the thread (waits for a retry in progress). NULL is harmless. */
void r5_pacs_spooler_stop(r5_pacs_spooler *spooler);

#endif
