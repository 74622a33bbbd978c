/* PACS spool: DICOM files a PACS did not take wait on disk and are resent with exponential
 * backoff until the PACS confirms them; the layout and guarantees are in pacs.h. Entries are
 * keyed by their "<id>.dcm" file (the .meta beside it only carries attempts and the next retry
 * time, and is written first, so a crash never leaves a copy the retrier cannot find).
 *
 * Patient data: every directory is opened through r5_pacs_private_dir (no symbolic link, ours,
 * mode 0700) and every file relative to that descriptor with O_NOFOLLOW; files are created
 * 0600 with O_EXCL under a ".tmp" name, fsynced, and linked to their final name, which never
 * replaces an entry (a name already taken means a new id). Paths handed to the DICOM network
 * library are inside a directory checked the same way. */
#include "pacs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#define SPOOL_NAME 96
#define NOT_REGULAR (-1) /* an errno-like code: a name that is not a regular file */

static atomic_long spool_counter;

r5_status r5_pacs_private_dir(int at, const char *name, const char *shown, int create, int *fd)
{
	*fd = -1;
	if (create && mkdirat(at, name, 0700) != 0 && errno != EEXIST)
		return r5_set_error(R5_EIO, "%s: cannot create the directory (%s)", shown, strerror(errno));
	int dir = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0) {
		int error = errno;
		struct stat st;
		if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			return r5_set_error(R5_EIO, "%s is a symbolic link: refused (patient data never goes through one)",
					    shown);
		if (error == ENOENT)
			return r5_set_error(R5_ENOTFOUND, "%s does not exist", shown);
		if (error == ENOTDIR)
			return r5_set_error(R5_EIO, "%s is not a directory", shown);
		return r5_set_error(R5_EIO, "%s: cannot open the directory (%s)", shown, strerror(error));
	}
	struct stat st;
	if (fstat(dir, &st) != 0) {
		int error = errno;
		close(dir);
		return r5_set_error(R5_EIO, "%s: %s", shown, strerror(error));
	}
	if (st.st_uid != geteuid()) {
		close(dir);
		return r5_set_error(R5_EIO, "%s is owned by uid %ld, not by this server's uid %ld: refused (it holds "
					    "patient data; remove it or give it to uid %ld with mode 0700)",
				    shown, (long)st.st_uid, (long)geteuid(), (long)geteuid());
	}
	if (st.st_mode & 077) {
		close(dir);
		return r5_set_error(R5_EIO, "%s has mode %04o: group and others must have no access (expected 0700): "
					    "refused (it holds patient data)",
				    shown, (unsigned)(st.st_mode & 07777));
	}
	*fd = dir;
	return R5_OK;
}

static int ends_with(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	return n > k && strcmp(name + n - k, suffix) == 0;
}

/* 0 or an errno. */
static int write_all(int fd, const void *bytes, size_t length)
{
	const char *p = bytes;
	while (length > 0) {
		ssize_t n = write(fd, p, length);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		p += n;
		length -= (size_t)n;
	}
	return 0;
}

static int copy_fd(int in, int out)
{
	char chunk[65536];
	for (;;) {
		ssize_t n = read(in, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return 0;
		int error = write_all(out, chunk, (size_t)n);
		if (error)
			return error;
	}
}

/* Moves tmp to name within dir: renamed over (replace), or linked, which fails with EEXIST
 * rather than replacing an entry (a file system without hard links gets a checked rename). */
static int place(int dir, const char *tmp, const char *name, int replace)
{
	if (replace)
		return renameat(dir, tmp, dir, name) == 0 ? 0 : errno;
	if (linkat(dir, tmp, dir, name, 0) == 0) {
		unlinkat(dir, tmp, 0);
		return 0;
	}
	if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK)
		return errno;
	struct stat st;
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return EEXIST;
	return renameat(dir, tmp, dir, name) == 0 ? 0 : errno;
}

/* Writes name in dir from src_fd (>= 0) or text: name.tmp (0600, O_EXCL, O_NOFOLLOW), fsync,
 * placed, directory fsynced. Returns 0 or an errno; nothing is left behind on failure. */
static int write_file_at(int dir, const char *name, int src_fd, const char *text, int replace)
{
	char tmp[SPOOL_NAME + 8];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", name) >= (int)sizeof tmp)
		return ENAMETOOLONG;
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int out = openat(dir, tmp, flags, 0600);
	if (out < 0 && errno == EEXIST && unlinkat(dir, tmp, 0) == 0) /* a stray from a crash */
		out = openat(dir, tmp, flags, 0600);
	if (out < 0)
		return errno;
	int error = src_fd >= 0 ? copy_fd(src_fd, out) : write_all(out, text, strlen(text));
	if (!error && fsync(out) != 0)
		error = errno;
	if (close(out) != 0 && !error)
		error = errno;
	if (!error)
		error = place(dir, tmp, name, replace);
	if (error) {
		unlinkat(dir, tmp, 0);
		return error;
	}
	fsync(dir);
	return 0;
}

/* Puts the file src (relative to src_at) into dir as name: linked when moving a file of ours
 * (no space needed), else copied; a moved source is removed. 0, EEXIST (name taken), an errno
 * or NOT_REGULAR. */
static int put_instance(int dir, const char *name, int src_at, const char *src, enum r5_pacs_spool_mode mode)
{
	struct stat st;
	if (fstatat(src_at, src, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return NOT_REGULAR;
	if (mode == R5_PACS_MOVE && st.st_uid == geteuid()) {
		if (linkat(src_at, src, dir, name, 0) == 0) {
			int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0) {
				fchmod(fd, 0600); /* a file of an older version may be 0644 */
				close(fd);
			}
			fsync(dir); /* the new name is durable before the old one goes */
			unlinkat(src_at, src, 0);
			fsync(src_at);
			return 0;
		}
		if (errno == EEXIST)
			return EEXIST;
		/* another file system, or none with hard links: copy */
	}
	int in = openat(src_at, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return errno;
	int error = write_file_at(dir, name, in, NULL, 0);
	close(in);
	if (!error && mode == R5_PACS_MOVE) {
		unlinkat(src_at, src, 0);
		fsync(src_at);
	}
	return error;
}

static const char *error_text(int error)
{
	return error == NOT_REGULAR ? "not a regular file" : strerror(error);
}

static double backoff_s(int attempts)
{
	double delay = R5_PACS_BACKOFF_FIRST_S;
	for (int i = 1; i < attempts && delay < R5_PACS_BACKOFF_MAX_S; i++)
		delay *= 2;
	return delay < R5_PACS_BACKOFF_MAX_S ? delay : R5_PACS_BACKOFF_MAX_S;
}

static int write_meta(int dir, const char *id, int attempts, double next_s, const char *source, int replace)
{
	char name[SPOOL_NAME + 8], text[SPOOL_PATH + 64];
	snprintf(name, sizeof name, "%s.meta", id);
	snprintf(text, sizeof text, "attempts %d\nnext_s %.0f\nsource %s\n", attempts, next_s, source ? source : "");
	return write_file_at(dir, name, -1, text, replace);
}

/* attempts and next retry time; a missing or unreadable .meta means "due now, never tried". */
static void read_meta(int dir, const char *id, int *attempts, double *next_s)
{
	char name[SPOOL_NAME + 8];
	snprintf(name, sizeof name, "%s.meta", id);
	*attempts = 0;
	*next_s = 0;
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fscanf(f, "attempts %d next_s %lf", attempts, next_s) != 2) {
		*attempts = 0;
		*next_s = 0;
	}
	fclose(f);
}

/* A new entry for src: "<ms since the epoch>-<pid>-<counter>"; a name already taken (another
 * process, a clock set back) makes another one, never a replaced entry. with_meta: first
 * attempt counted now (a .meta that cannot be written only makes the entry due at once). */
static r5_status spool_add(int dir, const char *shown, int src_at, const char *src, enum r5_pacs_spool_mode mode,
			   int with_meta, double now_s)
{
	for (int attempt = 0; attempt < 16; attempt++) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		char id[SPOOL_NAME - 8], name[SPOOL_NAME];
		snprintf(id, sizeof id, "%lld-%ld-%ld", (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000,
			 (long)getpid(), atomic_fetch_add(&spool_counter, 1));
		snprintf(name, sizeof name, "%s.dcm", id);
		int meta_written = 0;
		if (with_meta) {
			int error = write_meta(dir, id, 1, now_s + backoff_s(1), src, 0);
			if (error == EEXIST)
				continue;
			if (error)
				r5_warn("PACS spool %s: no retry time for %s (%s): it is due at once", shown, name,
					strerror(error));
			meta_written = !error;
		}
		int error = put_instance(dir, name, src_at, src, mode);
		if (error && meta_written) {
			char meta[SPOOL_NAME + 8];
			snprintf(meta, sizeof meta, "%s.meta", id);
			unlinkat(dir, meta, 0);
		}
		if (error == EEXIST)
			continue;
		if (error)
			return r5_set_error(R5_EIO, "spool %s: cannot take %s: %s", shown, src, error_text(error));
		return R5_OK;
	}
	return r5_set_error(R5_EIO, "spool %s: no free entry name for %s", shown, src);
}

static void copy_text(char *to, size_t size, const char *text)
{
	snprintf(to, size, "%s", text);
}

r5_status r5_pacs_deliver(const r5_pacs_dest *dest, const char *spool_dir, const char *const *paths, long n,
			  enum r5_pacs_spool_mode mode, r5_pacs_result *result)
{
	memset(result, 0, sizeof *result);
	if (n <= 0)
		return R5_OK;
	unsigned char *stored = calloc((size_t)n, 1);
	if (!stored)
		return r5_set_error(R5_ENOMEM, "PACS deliver: %ld files", n);
	if (r5_pacs_store_files(dest, paths, n, stored) != R5_OK) {
		copy_text(result->store_error, sizeof result->store_error, r5_last_error());
		r5_warn("%s; spooling what was not stored", r5_last_error());
	}
	int dir = -1, opened = 0;
	r5_status open_status = R5_OK;
	double now_s = (double)time(NULL);
	for (long i = 0; i < n; i++) {
		if (stored[i]) {
			result->n_stored++;
			if (mode == R5_PACS_MOVE && unlink(paths[i]) != 0 && errno != ENOENT)
				r5_warn("PACS deliver: cannot remove %s after it was stored (%s)", paths[i], strerror(errno));
			continue;
		}
		if (!opened) {
			open_status = r5_pacs_private_dir(AT_FDCWD, spool_dir, spool_dir, 1, &dir);
			opened = 1;
		}
		r5_status added = open_status;
		if (added == R5_OK)
			added = spool_add(dir, spool_dir, AT_FDCWD, paths[i], mode, 1, now_s);
		if (added == R5_OK) {
			result->n_spooled++;
		} else {
			result->n_failed++;
			if (!result->spool_error[0])
				copy_text(result->spool_error, sizeof result->spool_error, r5_last_error());
		}
	}
	if (dir >= 0)
		close(dir);
	free(stored);
	if (result->n_failed)
		return r5_set_error(R5_EIO, "PACS deliver: %ld of %ld files neither stored nor spooled: %s",
				    result->n_failed, n, result->spool_error);
	return R5_OK;
}

/* Ids of the spool's entries (regular files "<id>.dcm"), at most max; *total counts them all. */
static long list_entries(int dir, char (*ids)[SPOOL_NAME], long max, long *total)
{
	long n = 0;
	*total = 0;
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* its own read position */
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t length = strlen(e->d_name);
		struct stat st;
		if (!ends_with(e->d_name, ".dcm") || length - 4 >= SPOOL_NAME ||
		    fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
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
	int dir;
	if (r5_pacs_private_dir(AT_FDCWD, spool_dir, spool_dir, 0, &dir) != R5_OK)
		return 0;
	long total;
	list_entries(dir, NULL, 0, &total);
	close(dir);
	return total;
}

/* Sends one batch of due entries; stored ones are removed, failed ones back off. */
static void retry_batch(int dir, const char *spool_dir, const r5_pacs_dest *dest, char (*ids)[SPOOL_NAME], long n,
			double now_s, r5_pacs_result *result)
{
	char(*paths)[SPOOL_PATH + SPOOL_NAME] = malloc(SPOOL_BATCH * sizeof *paths);
	const char *path_list[SPOOL_BATCH];
	unsigned char stored[SPOOL_BATCH];
	if (!paths) {
		r5_warn("PACS spool %s: out of memory for a retry", spool_dir);
		return;
	}
	for (long i = 0; i < n; i++) {
		snprintf(paths[i], sizeof paths[i], "%s/%s.dcm", spool_dir, ids[i]);
		path_list[i] = paths[i];
	}
	if (r5_pacs_store_files(dest, path_list, n, stored) != R5_OK) {
		r5_info("PACS spool: %s", r5_last_error());
		copy_text(result->store_error, sizeof result->store_error, r5_last_error());
	}
	for (long i = 0; i < n; i++) {
		char name[SPOOL_NAME + 8];
		if (stored[i]) {
			snprintf(name, sizeof name, "%s.dcm", ids[i]);
			unlinkat(dir, name, 0);
			snprintf(name, sizeof name, "%s.meta", ids[i]);
			unlinkat(dir, name, 0);
			result->n_stored++;
			continue;
		}
		int attempts;
		double next_s;
		read_meta(dir, ids[i], &attempts, &next_s);
		attempts++;
		int error = write_meta(dir, ids[i], attempts, now_s + backoff_s(attempts), NULL, 1);
		if (error)
			r5_warn("PACS spool %s: cannot record the retry time of %s.dcm (%s)", spool_dir, ids[i],
				strerror(error));
	}
	free(paths);
}

r5_status r5_pacs_spool_retry(const char *spool_dir, const r5_pacs_dest *dest, double now_s, r5_pacs_result *result)
{
	memset(result, 0, sizeof *result);
	int dir;
	r5_status s = r5_pacs_private_dir(AT_FDCWD, spool_dir, spool_dir, 0, &dir);
	if (s == R5_ENOTFOUND)
		return R5_OK;
	R5_TRY(s);
	long total;
	list_entries(dir, NULL, 0, &total);
	char(*ids)[SPOOL_NAME] = total ? malloc((size_t)total * sizeof *ids) : NULL;
	if (total && !ids) {
		close(dir);
		return r5_set_error(R5_ENOMEM, "PACS spool: %ld entries", total);
	}
	long n = list_entries(dir, ids, total, &total);
	long due = 0;
	for (long i = 0; i < n; i++) {
		int attempts;
		double next_s;
		read_meta(dir, ids[i], &attempts, &next_s);
		if (next_s <= now_s)
			memmove(ids[due++], ids[i], sizeof ids[i]);
	}
	for (long start = 0; start < due; start += SPOOL_BATCH) {
		long batch = due - start < SPOOL_BATCH ? due - start : SPOOL_BATCH;
		retry_batch(dir, spool_dir, dest, ids + start, batch, now_s, result);
	}
	free(ids);
	list_entries(dir, NULL, 0, &result->n_spooled);
	close(dir);
	return R5_OK;
}

/* Removes stray "*.tmp" files (writes a crash interrupted) from dir. */
static void remove_partial_files(int dir, const char *shown)
{
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	long removed = 0;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (ends_with(e->d_name, ".tmp") && fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && unlinkat(dir, e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	if (removed)
		r5_info("%s: removed %ld partial file(s) an interrupted run left", shown, removed);
}

r5_status r5_pacs_spool_adopt(const char *spool_dir, const char *from, long *n_moved)
{
	*n_moved = 0;
	int spool, source;
	R5_TRY(r5_pacs_private_dir(AT_FDCWD, spool_dir, spool_dir, 1, &spool));
	r5_status s = r5_pacs_private_dir(AT_FDCWD, from, from, 0, &source);
	if (s != R5_OK) {
		close(spool);
		return s;
	}
	remove_partial_files(source, from);
	int fd = openat(source, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		close(source);
		close(spool);
		return r5_set_error(R5_EIO, "%s: cannot list (%s)", from, strerror(errno));
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!ends_with(e->d_name, ".dcm"))
			continue;
		r5_status added = spool_add(spool, spool_dir, source, e->d_name, R5_PACS_MOVE, 0, (double)time(NULL));
		if (added == R5_OK)
			(*n_moved)++;
		else if (s == R5_OK)
			s = r5_error_context(added, "%s", from);
	}
	/* the retry times of another spool describe files that are now entries of this one */
	rewinddir(d);
	while (s == R5_OK && (e = readdir(d)) != NULL) {
		struct stat st;
		if (ends_with(e->d_name, ".meta") && fstatat(source, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			unlinkat(source, e->d_name, 0);
	}
	closedir(d);
	close(source);
	close(spool);
	if (s == R5_OK && unlinkat(AT_FDCWD, from, AT_REMOVEDIR) != 0)
		r5_warn("%s: not removed (%s)", from, strerror(errno));
	return s;
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
		pthread_mutex_unlock(&sp->lock);
		r5_pacs_result result;
		if (r5_pacs_spool_retry(sp->dir, &sp->dest, (double)time(NULL), &result) != R5_OK)
			r5_warn("PACS spool: %s", r5_last_error());
		else if (result.n_stored > 0)
			r5_info("PACS spool: %ld stored, %ld waiting", result.n_stored, result.n_spooled);
		pthread_mutex_lock(&sp->lock);
		if (sp->stop)
			break;
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
	int dir;
	R5_TRY(r5_pacs_private_dir(AT_FDCWD, spool_dir, spool_dir, 1, &dir));
	remove_partial_files(dir, spool_dir);
	close(dir);
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
