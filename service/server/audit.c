/* The audit log (audit.h). */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "recon/core/log.h"

struct r5_audit {
	int fd;
	pthread_mutex_t lock;
	char path[1024];
};

r5_status r5_audit_open(const char *path, r5_audit **out)
{
	*out = NULL;
	if (!path || !*path)
		return R5_OK;
	r5_audit *a = calloc(1, sizeof *a);
	if (!a)
		return r5_set_error(R5_ENOMEM, "audit_log %s", path);
	a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		int e = errno;
		free(a);
		return r5_set_error(R5_EIO, "audit_log %s: cannot open: %s", path, strerror(e));
	}
	pthread_mutex_init(&a->lock, NULL);
	snprintf(a->path, sizeof a->path, "%s", path);
	*out = a;
	return R5_OK;
}

void r5_audit_close(r5_audit *a)
{
	if (!a)
		return;
	close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* a JSON string (quotes included) of s, control characters and non-ASCII escaped */
static size_t json_string(char *out, size_t size, const char *s)
{
	size_t n = 0;
	if (!s)
		s = "";
#define PUT(ch)                                                                                                        \
	do {                                                                                                           \
		if (n + 1 < size)                                                                                      \
			out[n] = (ch);                                                                                 \
		n++;                                                                                                   \
	} while (0)
	PUT('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			PUT('\\');
			PUT((char)ch);
		} else if (ch < 0x20 || ch > 0x7e) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			for (int i = 0; esc[i]; i++)
				PUT(esc[i]);
		} else {
			PUT((char)ch);
		}
	}
	PUT('"');
	if (size)
		out[n < size ? n : size - 1] = 0;
#undef PUT
	return n;
}

void r5_audit_write(r5_audit *a, const r5_audit_record *r)
{
	if (!a)
		return;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	char when[80];
	snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
	char identity[300], role[40], peer[160], method[300], job[80], code_name[64], note[300];
	json_string(identity, sizeof identity, r->identity);
	json_string(role, sizeof role, r->role);
	json_string(peer, sizeof peer, r->peer);
	json_string(method, sizeof method, r->method);
	json_string(job, sizeof job, r->job_id);
	json_string(code_name, sizeof code_name, r->code_name);
	json_string(note, sizeof note, r->note);
	char uid_hash[65] = "";
	if (r->study_uid && *r->study_uid)
		r5_auth_sha256_hex(r->study_uid, strlen(r->study_uid), uid_hash);
	char line[2048];
	int n = snprintf(line, sizeof line,
			 "{\"time\":\"%s\",\"identity\":%s,\"role\":%s,\"peer\":%s,\"method\":%s,\"job_id\":%s,"
			 "\"outcome\":%s,\"code\":%d,\"study_uid_sha256\":\"%s\",\"note\":%s}\n",
			 when, identity, role, peer, method, job, code_name, r->code, uid_hash, note);
	if (n < 0 || (size_t)n >= sizeof line) {
		r5_error("audit_log %s: line too long, not written", a->path);
		return;
	}
	pthread_mutex_lock(&a->lock);
	ssize_t w = write(a->fd, line, (size_t)n);
	int e = errno;
	if (w == n && fsync(a->fd) != 0)
		e = errno, w = -1;
	pthread_mutex_unlock(&a->lock);
	if (w != n)
		r5_error("audit_log %s: write failed: %s", a->path, strerror(e));
}
