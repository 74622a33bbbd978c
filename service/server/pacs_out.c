/* PACS push from recon5td (issue 4 §4, issue 11). When pacs_host is configured, every job's
 * DICOM series (the request's output kinds, the same encoding and UIDs as its DICOM Image
 * events) is written into an outbox, sent by C-STORE through recon/io/pacs.h, and whatever the
 * PACS did not confirm is moved into the spool of the destination; the outbox is then removed.
 * A spooler thread retries the spool with exponential backoff (R5_PACS_BACKOFF_FIRST_S
 * doubling to R5_PACS_BACKOFF_MAX_S per instance), also across restarts.
 *
 * On disk (patient data: nothing here is readable by another user):
 *   spool_dir/                    configured; created 0700 when missing, but it may be shared
 *                                 (a Kubernetes emptyDir, a group-writable volume)
 *   spool_dir/recon5t/            ours: created 0700, refused at start when it is a symbolic
 *                                 link, has another owner or any group/other permission
 *     lock                        held (fcntl) while a recon5td uses the folder: one at a time
 *     outbox/<job id>/            a job's files while they are delivered
 *     pacs/<CALLED_AE>@<host>_<port>/   the spool (pacs.h)
 * Every directory below recon5t/ passes the same checks; files are 0600, opened with
 * O_NOFOLLOW relative to a checked directory. An outbox left by a run that was killed is moved
 * into the spool at start (due at once), and so are the outbox and spool of the layout before
 * recon5t/ (spool_dir/outbox, spool_dir/pacs/<dest>) when they are ours and private.
 *
 * Neither a full disk nor a PACS that is down fails a job: the client has its images, and
 * Completed counts stored, spooled and failed instances and says why. Logs name job ids and
 * counts only, never patient data.
 * Threads: start/stop from main; r5_pacs_out_job from workers (one job each; only the spooler
 * thread retries the spool). Blocks on disk and on the PACS (pacs_timeout_s). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recon/core/log.h"
#include "server.h"
#include "metrics.h"

#define PRIVATE_DIR "recon5t"

/* mkdir -p with mode 0700 for the parts of the configured spool_dir that are missing. */
static r5_status make_directories(const char *path)
{
	char partial[1400];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof partial)
		return r5_set_error(R5_EINVAL, "spool_dir \"%s\": empty or too long", path);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(partial, path, i);
		partial[i] = '\0';
		if (mkdir(partial, 0700) != 0 && errno != EEXIST)
			return r5_set_error(R5_EIO, "spool_dir: cannot create %s (%s)", partial, strerror(errno));
	}
	return R5_OK;
}

/* A checked private directory `name` in at (created when missing); errors start "spool_dir: ". */
static r5_status private_subdir(int at, const char *name, const char *shown, int *fd)
{
	r5_status s = r5_pacs_private_dir(at, name, shown, 1, fd);
	return s == R5_OK ? R5_OK : r5_error_context(s, "spool_dir");
}

/* One recon5td per private folder: two would send and remove each other's spool entries. */
static r5_status lock_folder(int root, const char *root_path, int *lock_fd)
{
	int fd = openat(root, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return r5_set_error(R5_EIO, "spool_dir: cannot open %s/lock (%s)", root_path, strerror(errno));
	struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &lock) != 0) {
		int error = errno;
		struct flock holder = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		long pid = fcntl(fd, F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK ? (long)holder.l_pid : -1;
		close(fd);
		if (error == EACCES || error == EAGAIN)
			return r5_set_error(R5_EBUSY, "spool_dir: %s is in use by another recon5td (pid %ld): "
						      "one server per spool folder",
					    root_path, pid);
		return r5_set_error(R5_EIO, "spool_dir: cannot lock %s/lock (%s)", root_path, strerror(error));
	}
	*lock_fd = fd;
	return R5_OK;
}

/* Moves what the directories in `parent` (outboxes of jobs an earlier run did not finish)
 * hold into the spool; partial writes in them are removed. Returns instances moved. */
static long recover_outboxes(r5_server *s, const char *parent)
{
	int dir;
	if (r5_pacs_private_dir(AT_FDCWD, parent, parent, 0, &dir) != R5_OK)
		return 0;
	int list_fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
	if (!d) {
		if (list_fd >= 0)
			close(list_fd);
		close(dir);
		return 0;
	}
	long moved = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			r5_warn("PACS outbox: %s/%s is not a job's directory (left as it is)", parent, e->d_name);
			continue;
		}
		char job[1400];
		snprintf(job, sizeof job, "%s/%s", parent, e->d_name);
		long n = 0;
		if (r5_pacs_spool_adopt(s->pacs_spool, job, &n) != R5_OK)
			r5_warn("PACS outbox: %s (left as it is)", r5_last_error());
		moved += n;
	}
	closedir(d);
	close(dir);
	return moved;
}

/* The layout before recon5t/: spool_dir/outbox/<job>/ and spool_dir/pacs/<dest>/, adopted
 * when they are ours and private (anything else is left alone, with a warning). */
static long adopt_old_layout(r5_server *s, const char *dest_name)
{
	const char *base = s->config.spool_dir;
	char path[1400];
	long moved = 0;
	snprintf(path, sizeof path, "%s/outbox", base);
	struct stat st;
	if (lstat(path, &st) == 0) {
		int fd;
		if (r5_pacs_private_dir(AT_FDCWD, path, path, 0, &fd) == R5_OK) {
			close(fd);
			moved += recover_outboxes(s, path);
			rmdir(path);
		} else {
			r5_warn("PACS: not taking files from an earlier version: %s", r5_last_error());
		}
	}
	snprintf(path, sizeof path, "%s/pacs/%s", base, dest_name);
	if (lstat(path, &st) == 0) {
		long n = 0;
		if (r5_pacs_spool_adopt(s->pacs_spool, path, &n) != R5_OK)
			r5_warn("PACS: not taking files from an earlier version: %s", r5_last_error());
		moved += n;
		snprintf(path, sizeof path, "%s/pacs", base);
		rmdir(path);
	}
	return moved;
}

/* Creates and checks spool_dir/recon5t and everything below it; takes the folder's lock. */
static r5_status open_folders(r5_server *s, const char *dest_name)
{
	const char *base = s->config.spool_dir;
	R5_TRY(make_directories(base));
	int base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* the configured path may be a link */
	if (base_fd < 0)
		return r5_set_error(R5_EIO, "spool_dir: cannot open %s (%s)", base, strerror(errno));
	char root_path[1100], pacs_path[1200];
	snprintf(root_path, sizeof root_path, "%s/%s", base, PRIVATE_DIR);
	snprintf(s->outbox_dir, sizeof s->outbox_dir, "%s/%s/outbox", base, PRIVATE_DIR);
	snprintf(pacs_path, sizeof pacs_path, "%s/pacs", root_path);
	snprintf(s->pacs_spool, sizeof s->pacs_spool, "%s/%s", pacs_path, dest_name);
	int root = -1, outbox = -1, pacs = -1, spool = -1;
	r5_status status = private_subdir(base_fd, PRIVATE_DIR, root_path, &root);
	if (status == R5_OK)
		status = lock_folder(root, root_path, &s->spool_lock_fd);
	if (status == R5_OK)
		status = private_subdir(root, "outbox", s->outbox_dir, &outbox);
	if (status == R5_OK)
		status = private_subdir(root, "pacs", pacs_path, &pacs);
	if (status == R5_OK)
		status = private_subdir(pacs, dest_name, s->pacs_spool, &spool);
	int fds[] = {base_fd, root, outbox, pacs, spool};
	for (int i = 0; i < 5; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return status;
}

r5_status r5_pacs_out_start(r5_server *s)
{
	const r5_server_config *cfg = &s->config;
	if (!cfg->pacs_host[0])
		return R5_OK;
	R5_TRY(r5_server_config_check(cfg));
	r5_pacs_dest *d = &s->pacs_dest;
	memset(d, 0, sizeof *d);
	snprintf(d->calling_ae, sizeof d->calling_ae, "%s", cfg->pacs_calling_ae[0] ? cfg->pacs_calling_ae : "RECON5T");
	snprintf(d->called_ae, sizeof d->called_ae, "%s", cfg->pacs_called_ae);
	snprintf(d->host, sizeof d->host, "%s", cfg->pacs_host);
	d->port = cfg->pacs_port;
	d->timeout_s = cfg->pacs_timeout_s;
	snprintf(s->pacs_name, sizeof s->pacs_name, "%s@%s:%d", d->called_ae, d->host, d->port);
	char dest_name[300];
	snprintf(dest_name, sizeof dest_name, "%s@%s_%d", d->called_ae, d->host, d->port);
	/* AE titles may hold '/', which must not make a path component */
	for (char *p = dest_name; *p; p++)
		if (*p == '/' || *p == ' ')
			*p = '_';
	if (!strcmp(dest_name, ".") || !strcmp(dest_name, ".."))
		dest_name[0] = '_';
	s->spool_lock_fd = -1;
	r5_status status = open_folders(s, dest_name);
	if (status != R5_OK) {
		if (s->spool_lock_fd >= 0)
			close(s->spool_lock_fd);
		return status;
	}
	double t0 = r5_svc_now();
	long recovered = recover_outboxes(s, s->outbox_dir);
	long migrated = adopt_old_layout(s, dest_name);
	if (recovered + migrated > 0)
		r5_warn("PACS %s: %ld instance(s) an earlier run left undelivered moved into the spool (%.3f s)",
			s->pacs_name, recovered + migrated, r5_svc_now() - t0);
	status = r5_pacs_spooler_start(s->pacs_spool, d, cfg->pacs_retry_s, &s->spooler);
	if (status != R5_OK) {
		close(s->spool_lock_fd);
		return r5_error_context(status, "spool_dir");
	}
	s->pacs_enabled = 1;
	long waiting = r5_pacs_spool_count(s->pacs_spool);
	r5_info("PACS %s: spool %s (%ld instance(s) waiting), retry every %.1f s", s->pacs_name, s->pacs_spool,
		waiting, cfg->pacs_retry_s);
	return R5_OK;
}

void r5_pacs_out_stop(r5_server *s)
{
	r5_pacs_spooler_stop(s->spooler);
	s->spooler = NULL;
	if (s->pacs_enabled) {
		long waiting = r5_pacs_spool_count(s->pacs_spool);
		if (waiting > 0)
			r5_warn("PACS %s: %ld instance(s) stay in the spool for the next start", s->pacs_name, waiting);
		close(s->spool_lock_fd);
		s->spool_lock_fd = -1;
		s->pacs_enabled = 0;
	}
}

int r5_pacs_out_wanted(const r5_call *c)
{
	return c->server->pacs_enabled && c->header_message && !c->header_message->header->skip_pacs;
}

/* Creates the job's outbox directory: its own, never one that exists (".2", ".3", ... when
 * the name is taken), checked; *fd -1 and the reason in failure when that fails. */
static void open_job_outbox(const r5_server *s, const char *job_id, char *dir, size_t size, int *fd, char *failure,
			    size_t failure_size)
{
	*fd = -1;
	int outbox;
	if (r5_pacs_private_dir(AT_FDCWD, s->outbox_dir, s->outbox_dir, 1, &outbox) != R5_OK) {
		snprintf(failure, failure_size, "outbox: %s", r5_last_error());
		return;
	}
	char name[48];
	int made = 0, error = 0;
	for (int k = 1; k <= 100 && !made; k++) {
		if (k == 1)
			snprintf(name, sizeof name, "%s", job_id);
		else
			snprintf(name, sizeof name, "%s.%d", job_id, k);
		made = mkdirat(outbox, name, 0700) == 0;
		error = made ? 0 : errno;
		if (!made && error != EEXIST)
			break;
	}
	snprintf(dir, size, "%s/%s", s->outbox_dir, name);
	if (!made)
		snprintf(failure, failure_size, "outbox: cannot create %s (%s)", dir, strerror(error));
	else if (r5_pacs_private_dir(outbox, name, dir, 0, fd) != R5_OK)
		snprintf(failure, failure_size, "outbox: %s", r5_last_error());
	close(outbox);
}

static void describe(r5_pacs_outcome *outcome, const char *pacs_name, const r5_dicom_files *files, double seconds)
{
	const r5_pacs_result *r = &outcome->result;
	size_t size = sizeof outcome->message;
	int n = snprintf(outcome->message, size, "PACS %s: %ld stored, %ld spooled for retry, %ld failed (%.2f s)",
			 pacs_name, r->n_stored, r->n_spooled, r->n_failed, seconds);
	if (files->failure[0] && n >= 0 && (size_t)n < size)
		n += snprintf(outcome->message + n, size - (size_t)n, "; %ld not written: %s", files->n_unwritten,
			      files->failure);
	if (r->spool_error[0] && n >= 0 && (size_t)n < size)
		n += snprintf(outcome->message + n, size - (size_t)n, "; not spooled: %s", r->spool_error);
	if (r->n_spooled && r->store_error[0] && n >= 0 && (size_t)n < size)
		snprintf(outcome->message + n, size - (size_t)n, "; %s", r->store_error);
}

/* Removes the job's outbox; with n_failed, the delivery left only the files the spool could
 * not take, which stay for the next start (that moves them into the spool). */
static void remove_outbox(const char *job_id, const r5_dicom_files *files, long n_failed)
{
	if (n_failed > 0) {
		r5_warn("job %s: %ld file(s) the spool could not take stay in %s for the next start", job_id, n_failed,
			files->dir);
		return;
	}
	for (long i = 0; i < files->n_paths; i++)
		if (unlink(files->paths[i]) != 0 && errno != ENOENT)
			r5_warn("outbox: cannot remove a file (%s)", strerror(errno));
	if (files->dir_fd >= 0 && rmdir(files->dir) != 0 && errno != ENOENT)
		r5_warn("outbox: cannot remove %s (%s)", files->dir, strerror(errno));
}

r5_status r5_pacs_out_job(r5_call *c, const r5_image_set *set, int send_events, uint32_t *n_images,
			  r5_pacs_outcome *outcome)
{
	r5_server *s = c->server;
	char dir[1200] = "";
	memset(outcome, 0, sizeof *outcome);
	outcome->attempted = 1;
	r5_dicom_files files;
	memset(&files, 0, sizeof files);
	open_job_outbox(s, c->job_id, dir, sizeof dir, &files.dir_fd, files.failure, sizeof files.failure);
	files.dir = dir;
	double t0 = r5_svc_now();
	r5_status status = r5_dicom_out_run(c, set, send_events, &files, n_images);
	r5_pacs_result *r = &outcome->result;
	long n_written = files.n_paths; /* the path strings to free, whatever is counted below */
	if (status != R5_OK) {
		/* encoding failed: with DICOM events the job fails; else the client has its images */
		snprintf(files.failure, sizeof files.failure, "DICOM encoding: %s", r5_last_error());
		files.n_unwritten += files.n_paths;
		remove_outbox(c->job_id, &files, 0);
		files.n_paths = 0;
	} else if (files.n_paths > 0) {
		r5_pacs_deliver(&s->pacs_dest, s->pacs_spool, (const char *const *)files.paths, files.n_paths,
				R5_PACS_MOVE, r);
		remove_outbox(c->job_id, &files, r->n_failed);
	} else {
		remove_outbox(c->job_id, &files, 0);
	}
	r->n_failed += files.n_unwritten;
	r5_metrics_pacs_push(r->n_stored, r->n_spooled, r->n_failed);
	describe(outcome, s->pacs_name, &files, r5_svc_now() - t0);
	if (r->n_spooled || r->n_failed)
		r5_warn("job %s: %s", c->job_id, outcome->message);
	else
		r5_info("job %s: %s", c->job_id, outcome->message);
	if (files.dir_fd >= 0)
		close(files.dir_fd);
	r5_dicom_out_free_paths(files.paths, n_written);
	return send_events ? status : R5_OK;
}
