/* PACS spool: DICOM files a PACS did not take wait on disk and are resent with exponential
 * backoff until the PACS confirms them; the layout and guarantees are in pacs.h. Entries are
 * keyed by their "<id>.dcm" file (the .meta beside it only carries attempts and the next retry
 * time, and is written first, so a crash never leaves a copy the retrier cannot find). */
#include "pacs.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"

#define SPOOL_BATCH 64
#define SPOOL_PATH 4096

static atomic_long spool_counter;

static r5_status ensure_directory(const char *dir)
{
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return R5_OK;
	return r5_set_error(R5_EIO, "PACS spool '%s': %s", dir, strerror(errno));
}

/* Writes bytes from src (a file) or text to path via path.tmp + rename. */
static r5_status write_atomically(const char *path, const char *src, const char *text)
{
	char tmp[SPOOL_PATH + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *out = fopen(tmp, "wb");
	if (!out)
		return r5_set_error(R5_EIO, "PACS spool '%s': %s", tmp, strerror(errno));
	int ok = 1;
	if (src) {
		FILE *in = fopen(src, "rb");
		ok = in != NULL;
		char chunk[65536];
		size_t n;
		while (ok && (n = fread(chunk, 1, sizeof chunk, in)) > 0)
			ok = fwrite(chunk, 1, n, out) == n;
		if (in) {
			ok = ok && !ferror(in);
			fclose(in);
		}
	} else {
		ok = fputs(text, out) >= 0;
	}
	ok = (fflush(out) == 0) && ok;
	ok = (fsync(fileno(out)) == 0) && ok;
	ok = (fclose(out) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return r5_set_error(R5_EIO, "PACS spool: cannot write '%s'%s%s", path, src ? " from " : "", src ? src : "");
	}
	return R5_OK;
}

static r5_status write_meta(const char *dir, const char *id, int attempts, double next_s, const char *source)
{
	char path[SPOOL_PATH], text[SPOOL_PATH + 64];
	snprintf(path, sizeof path, "%s/%s.meta", dir, id);
	snprintf(text, sizeof text, "attempts %d\nnext_s %.0f\nsource %s\n", attempts, next_s, source ? source : "");
	return write_atomically(path, NULL, text);
}

/* attempts and next retry time; a missing or unreadable .meta means "due now, never tried". */
static void read_meta(const char *dir, const char *id, int *attempts, double *next_s)
{
	char path[SPOOL_PATH];
	snprintf(path, sizeof path, "%s/%s.meta", dir, id);
	*attempts = 0;
	*next_s = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (fscanf(f, "attempts %d next_s %lf", attempts, next_s) != 2) {
		*attempts = 0;
		*next_s = 0;
	}
	fclose(f);
}

static double backoff_s(int attempts)
{
	double delay = R5_PACS_BACKOFF_FIRST_S;
	for (int i = 1; i < attempts && delay < R5_PACS_BACKOFF_MAX_S; i++)
		delay *= 2;
	return delay < R5_PACS_BACKOFF_MAX_S ? delay : R5_PACS_BACKOFF_MAX_S;
}

static r5_status spool_add(const char *dir, const char *source, double now_s)
{
	char id[96], path[SPOOL_PATH];
	snprintf(id, sizeof id, "%.0f-%ld-%ld", now_s, (long)getpid(), atomic_fetch_add(&spool_counter, 1));
	R5_TRY(write_meta(dir, id, 1, now_s + backoff_s(1), source));
	snprintf(path, sizeof path, "%s/%s.dcm", dir, id);
	return write_atomically(path, source, NULL);
}

r5_status r5_pacs_deliver(const r5_pacs_dest *dest, const char *spool_dir, const char *const *paths, long n,
			  r5_pacs_result *result)
{
	memset(result, 0, sizeof *result);
	if (n <= 0)
		return R5_OK;
	unsigned char *stored = calloc((size_t)n, 1);
	if (!stored)
		return r5_set_error(R5_ENOMEM, "PACS deliver: %ld files", n);
	r5_status s = r5_pacs_store_files(dest, paths, n, stored);
	if (s != R5_OK)
		r5_warn("%s; spooling what was not stored", r5_last_error());
	r5_status spool_status = R5_OK;
	double now_s = (double)time(NULL);
	for (long i = 0; i < n; i++) {
		if (stored[i]) {
			result->n_stored++;
			continue;
		}
		r5_status added = ensure_directory(spool_dir);
		if (added == R5_OK)
			added = spool_add(spool_dir, paths[i], now_s);
		if (added == R5_OK) {
			result->n_spooled++;
		} else {
			result->n_failed++;
			spool_status = added;
		}
	}
	free(stored);
	if (spool_status != R5_OK)
		return r5_error_context(spool_status, "PACS deliver: %ld of %ld files neither stored nor spooled",
					result->n_failed, n);
	return R5_OK;
}

/* Ids of the spool's entries ("<id>.dcm"), at most max. */
static long list_entries(const char *dir, char (*ids)[96], long max, long *total)
{
	long n = 0;
	*total = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t length = strlen(e->d_name);
		if (length <= 4 || length - 4 >= 96 || strcmp(e->d_name + length - 4, ".dcm"))
			continue;
		(*total)++;
		if (n < max) {
			memcpy(ids[n], e->d_name, length - 4);
			ids[n][length - 4] = 0;
			n++;
		}
	}
	closedir(d);
	return n;
}

long r5_pacs_spool_count(const char *spool_dir)
{
	long total;
	list_entries(spool_dir, NULL, 0, &total);
	return total;
}

/* Sends one batch of due entries; stored ones are removed, failed ones back off. */
static void retry_batch(const char *dir, const r5_pacs_dest *dest, char (*ids)[96], long n, double now_s,
			r5_pacs_result *result)
{
	char paths[SPOOL_BATCH][SPOOL_PATH];
	const char *path_list[SPOOL_BATCH];
	unsigned char stored[SPOOL_BATCH];
	for (long i = 0; i < n; i++) {
		snprintf(paths[i], sizeof paths[i], "%s/%s.dcm", dir, ids[i]);
		path_list[i] = paths[i];
	}
	if (r5_pacs_store_files(dest, path_list, n, stored) != R5_OK)
		r5_info("PACS spool: %s", r5_last_error());
	for (long i = 0; i < n; i++) {
		char meta[SPOOL_PATH];
		snprintf(meta, sizeof meta, "%s/%s.meta", dir, ids[i]);
		if (stored[i]) {
			unlink(paths[i]);
			unlink(meta);
			result->n_stored++;
			continue;
		}
		int attempts;
		double next_s;
		read_meta(dir, ids[i], &attempts, &next_s);
		attempts++;
		if (write_meta(dir, ids[i], attempts, now_s + backoff_s(attempts), NULL) != R5_OK)
			r5_warn("PACS spool: %s", r5_last_error());
	}
}

r5_status r5_pacs_spool_retry(const char *spool_dir, const r5_pacs_dest *dest, double now_s, r5_pacs_result *result)
{
	memset(result, 0, sizeof *result);
	long total;
	list_entries(spool_dir, NULL, 0, &total);
	if (total == 0)
		return R5_OK;
	char (*ids)[96] = malloc((size_t)total * sizeof *ids);
	if (!ids)
		return r5_set_error(R5_ENOMEM, "PACS spool: %ld entries", total);
	long n = list_entries(spool_dir, ids, total, &total);
	long due = 0;
	for (long i = 0; i < n; i++) {
		int attempts;
		double next_s;
		read_meta(spool_dir, ids[i], &attempts, &next_s);
		if (next_s <= now_s)
			memmove(ids[due++], ids[i], sizeof ids[i]);
	}
	for (long start = 0; start < due; start += SPOOL_BATCH) {
		long batch = due - start < SPOOL_BATCH ? due - start : SPOOL_BATCH;
		retry_batch(spool_dir, dest, ids + start, batch, now_s, result);
	}
	free(ids);
	result->n_spooled = r5_pacs_spool_count(spool_dir);
	return R5_OK;
}

/* --- background spooler --- */

struct r5_pacs_spooler {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stop;
	double period_s;
	char dir[SPOOL_PATH];
	r5_pacs_dest dest;
};

static void *spooler_main(void *arg)
{
	r5_pacs_spooler *sp = arg;
	pthread_mutex_lock(&sp->lock);
	while (!sp->stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		double wait = sp->period_s > 0.05 ? sp->period_s : 0.05;
		until.tv_sec += (time_t)wait;
		until.tv_nsec += (long)((wait - (double)(long)wait) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&sp->wake, &sp->lock, &until);
		if (sp->stop)
			break;
		pthread_mutex_unlock(&sp->lock);
		r5_pacs_result result;
		if (r5_pacs_spool_retry(sp->dir, &sp->dest, (double)time(NULL), &result) == R5_OK && result.n_stored > 0)
			r5_info("PACS spool: %ld stored, %ld waiting", result.n_stored, result.n_spooled);
		pthread_mutex_lock(&sp->lock);
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

r5_status r5_pacs_spooler_start(const char *spool_dir, const r5_pacs_dest *dest, double period_s,
				r5_pacs_spooler **out)
{
	*out = NULL;
	if (!spool_dir || !dest || strlen(spool_dir) >= SPOOL_PATH)
		return r5_set_error(R5_EINVAL, "PACS spooler: needs a spool directory and a destination");
	r5_pacs_spooler *sp = calloc(1, sizeof *sp);
	if (!sp)
		return r5_set_error(R5_ENOMEM, "PACS spooler");
	snprintf(sp->dir, sizeof sp->dir, "%s", spool_dir);
	sp->dest = *dest;
	sp->period_s = period_s;
	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->wake, NULL);
	if (pthread_create(&sp->thread, NULL, spooler_main, sp) != 0) {
		pthread_cond_destroy(&sp->wake);
		pthread_mutex_destroy(&sp->lock);
		free(sp);
		return r5_set_error(R5_EIO, "PACS spooler: cannot start a thread");
	}
	*out = sp;
	return R5_OK;
}

void r5_pacs_spooler_stop(r5_pacs_spooler *sp)
{
	if (!sp)
		return;
	pthread_mutex_lock(&sp->lock);
	sp->stop = 1;
	pthread_cond_signal(&sp->wake);
	pthread_mutex_unlock(&sp->lock);
	pthread_join(sp->thread, NULL);
	pthread_cond_destroy(&sp->wake);
	pthread_mutex_destroy(&sp->lock);
	free(sp);
}
