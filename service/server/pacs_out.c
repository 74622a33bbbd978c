/* PACS push from recon5td (issue 4 §4). When pacs_host is configured, every job's DICOM series
 * (the request's output kinds, the same encoding and UIDs as its DICOM Image events) is written
 * into spool_dir/outbox/<job id>/, sent by C-STORE through recon/io/pacs.h, and whatever the
 * PACS did not confirm is copied into spool_dir/pacs/<CALLED_AE>@<host>_<port>/; the outbox is
 * then removed. A spooler thread retries the spool with exponential backoff
 * (R5_PACS_BACKOFF_FIRST_S doubling to R5_PACS_BACKOFF_MAX_S per instance), also across
 * restarts: a spool left by an earlier run is picked up. A PACS that is down does not fail the
 * job: Completed says how many instances were stored and how many wait in the spool.
 * Logs name job ids and counts only, never patient data. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recon/core/log.h"
#include "server.h"

/* mkdir -p with mode 0700 (the spool holds patient data). */
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
	if (access(path, W_OK | X_OK) != 0)
		return r5_set_error(R5_EIO, "spool_dir: %s is not writable (%s)", path, strerror(errno));
	return R5_OK;
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
	snprintf(s->outbox_dir, sizeof s->outbox_dir, "%s/outbox", cfg->spool_dir);
	snprintf(s->pacs_spool, sizeof s->pacs_spool, "%s/pacs/%s@%s_%d", cfg->spool_dir, d->called_ae, d->host, d->port);
	/* AE titles may hold '/', which must not make a path component */
	for (char *p = s->pacs_spool + strlen(cfg->spool_dir) + 6; *p; p++)
		if (*p == '/' || *p == ' ')
			*p = '_';
	R5_TRY(make_directories(s->outbox_dir));
	R5_TRY(make_directories(s->pacs_spool));
	R5_TRY(r5_pacs_spooler_start(s->pacs_spool, d, cfg->pacs_retry_s, &s->spooler));
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
	}
}

int r5_pacs_out_wanted(const r5_call *c)
{
	return c->server->pacs_enabled && c->header_message && !c->header_message->header->skip_pacs;
}

/* Removes the outbox files and the job's directory (spooled copies live elsewhere). */
static void remove_outbox(const char *dir, char **paths, long n)
{
	for (long i = 0; i < n; i++)
		if (unlink(paths[i]) != 0 && errno != ENOENT)
			r5_warn("outbox: cannot remove a file (%s)", strerror(errno));
	if (rmdir(dir) != 0 && errno != ENOENT)
		r5_warn("outbox: cannot remove %s (%s)", dir, strerror(errno));
}

r5_status r5_pacs_out_job(r5_call *c, const r5_image_set *set, int send_events, uint32_t *n_images,
			  r5_pacs_outcome *outcome)
{
	r5_server *s = c->server;
	char dir[1200];
	memset(outcome, 0, sizeof *outcome);
	snprintf(dir, sizeof dir, "%s/%s", s->outbox_dir, c->job_id);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return r5_set_error(R5_EIO, "PACS outbox: cannot create %s (%s)", dir, strerror(errno));
	char **paths = NULL;
	long n_paths = 0;
	r5_status status = r5_dicom_out_run(c, set, send_events, dir, &paths, &n_paths, n_images);
	if (status == R5_OK) {
		double t0 = r5_svc_now();
		outcome->attempted = 1;
		status = r5_pacs_deliver(&s->pacs_dest, s->pacs_spool, (const char *const *)paths, n_paths,
					 &outcome->result);
		const r5_pacs_result *r = &outcome->result;
		snprintf(outcome->message, sizeof outcome->message,
			 "PACS %s: %ld stored, %ld spooled for retry, %ld failed (%.2f s)", s->pacs_name, r->n_stored,
			 r->n_spooled, r->n_failed, r5_svc_now() - t0);
		if (r->n_spooled || r->n_failed)
			r5_warn("job %s: %s", c->job_id, outcome->message);
		else
			r5_info("job %s: %s", c->job_id, outcome->message);
		/* a spool that could not take a file is reported in Completed, not a failed job:
		 * the client has the images (events) and is told that n_failed did not reach the PACS */
		status = R5_OK;
	}
	if (outcome->result.n_failed == 0)
		remove_outbox(dir, paths, n_paths);
	else
		r5_warn("job %s: files the spool could not take stay in %s", c->job_id, dir);
	r5_dicom_out_free_paths(paths, n_paths);
	return status;
}
