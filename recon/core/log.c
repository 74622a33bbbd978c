/* One-line log records on stderr: "2026-11-23T10:00:00Z recon5t INFO message". */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static r5_log_level log_level = R5_LOG_INFO;

void r5_log_set_level(r5_log_level level) { log_level = level; }
r5_log_level r5_log_get_level(void) { return log_level; }

int r5_log_level_parse(const char *name)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

void r5_log(r5_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
	if (level < log_level)
		return;
	char line[2048], stamp[32];
	time_t now = time(NULL);
	struct tm utc;
	gmtime_r(&now, &utc);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* one fprintf call per record so that lines from threads do not interleave */
	fprintf(stderr, "%s recon5t %s %s\n", stamp, tags[level], line);
}
