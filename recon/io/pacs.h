/* Delivery of DICOM files to a PACS by DICOM C-STORE (PS3.4 B, PS3.7 9.1.1), with a disk spool
 * so that no image is lost while a PACS is down.
 *
 *   r5_pacs_store_files  one association, every file sent by C-STORE (dcmtk's DcmSCU behind
 *                        this C interface, pacs_scu.cc); reports which were stored.
 *   r5_pacs_deliver      store, and copy (or move) whatever could not be stored into the spool.
 *   r5_pacs_spool_retry  resend spooled files whose retry time has come; exponential backoff
 *                        per file (R5_PACS_BACKOFF_FIRST_S doubling to R5_PACS_BACKOFF_MAX_S).
 *   r5_pacs_spool_adopt  move every complete file of a directory into the spool, due now (the
 *                        files a crashed run left behind).
 *   r5_pacs_spooler_*    a background thread calling r5_pacs_spool_retry every period.
 *   r5_pacs_private_dir  open (creating) a directory that only we may read: the spool and
 *                        whatever holds patient data on its way to the PACS.
 *
 * Spool layout (one directory per destination, created on demand): for each waiting instance
 * "<id>.dcm" and "<id>.meta" ("attempts N\nnext_s T\nsource PATH\n", optional: a missing one
 * means "due now"). Every file is written to "<name>.tmp" (mode 0600, O_EXCL, fsync) and then
 * linked to its name, which never replaces an existing entry; a crash leaves either a complete
 * entry or a stray .tmp (never a half file the retrier would send), and strays are removed when
 * a spooler starts. A file leaves the spool only after the PACS confirmed it (C-STORE status
 * success or warning); an unreadable one backs off like any other and never blocks the rest.
 *
 * Patient data on disk: the spool directory must be a directory (not a symbolic link), owned by
 * the effective user, with no group or other permission; every call checks it and refuses it
 * otherwise, naming the path and what is wrong. Files are opened relative to the checked
 * directory with O_NOFOLLOW. One retrier per spool directory at a time (callers of
 * r5_pacs_spool_retry must not run two at once on one directory). */
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
	char store_error[256]; /* why the PACS did not take every file ("" when it did) */
	char spool_error[256]; /* why n_failed files could not be spooled ("" when none) */
} r5_pacs_result;

/* Sends n files over one association. stored (n entries, may be NULL) gets 1 per file the
 * PACS confirmed; a file that is not readable DICOM is reported and skipped, the others are
 * still sent. Returns R5_OK only when every file was stored; R5_EIO naming the destination
 * and reason otherwise (association refused, connection failed, a C-STORE failure status);
 * R5_ENOTSUP when built without dcmtk. */
r5_status r5_pacs_store_files(const r5_pacs_dest *dest, const char *const *paths, long n, unsigned char *stored);

/* How r5_pacs_deliver puts a file that was not stored into the spool. */
enum r5_pacs_spool_mode {
	R5_PACS_COPY = 0, /* the caller's file stays */
	R5_PACS_MOVE = 1  /* every file leaves the caller but the failed ones: a stored one is
			     removed, one not stored becomes the spool entry (a link: no space
			     needed on the same file system; else copied and removed) */
};

/* Stores n files; each one not stored goes into spool_dir (created 0700 when missing).
 * Returns R5_OK when every file was either stored or spooled (result says which), an error
 * when some file could be neither (result->n_failed > 0, result->spool_error says why). */
r5_status r5_pacs_deliver(const r5_pacs_dest *dest, const char *spool_dir, const char *const *paths, long n,
			  enum r5_pacs_spool_mode mode, r5_pacs_result *result);

/* Resends spooled files whose next attempt time is <= now_s (seconds since the epoch, as from
 * time(NULL)); stored ones leave the spool, failed ones back off. result: n_stored sent now,
 * n_spooled still waiting. A missing spool directory is an empty spool. */
r5_status r5_pacs_spool_retry(const char *spool_dir, const r5_pacs_dest *dest, double now_s, r5_pacs_result *result);
/* Number of instances waiting in the spool. */
long r5_pacs_spool_count(const char *spool_dir);

/* Moves every "*.dcm" regular file of the directory `from` into spool_dir, due now; removes
 * "*.tmp" files (partial writes) and "*.meta" files (retry times, when `from` was a spool), and
 * then `from` itself when it is empty. `from` must pass the same checks as a spool directory.
 * *n_moved: files now in the spool. For start-up, when no one else writes in `from`. */
r5_status r5_pacs_spool_adopt(const char *spool_dir, const char *from, long *n_moved);

typedef struct r5_pacs_spooler r5_pacs_spooler;
/* Removes stray "*.tmp" files from the spool, then starts a thread that retries the spool
 * at once and then every period_s seconds (strings are copied). */
r5_status r5_pacs_spooler_start(const char *spool_dir, const r5_pacs_dest *dest, double period_s,
				r5_pacs_spooler **out);
/* Stops and joins the thread (waits for a retry in progress). NULL is harmless. */
void r5_pacs_spooler_stop(r5_pacs_spooler *spooler);

/* Opens the directory `name`, relative to the directory fd `at` (AT_FDCWD for a path),
 * creating it with mode 0700 when create and it is missing, and checks it: a directory, not
 * a symbolic link, owned by the effective user, no group or other permission. *fd gets an
 * O_DIRECTORY descriptor (caller closes). `shown` is its path for messages; the error says
 * what is wrong ("... is owned by uid 65534, not 0", "... has mode 0777: expected 0700"). */
r5_status r5_pacs_private_dir(int at, const char *name, const char *shown, int create, int *fd);

#endif
