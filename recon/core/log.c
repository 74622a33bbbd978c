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

/* Length of the well-formed UTF-8 sequence at p (1..4), 0 when it is not one (overlong forms,
 * surrogates and code points above U+10FFFF are not well-formed: RFC 3629). */
static int utf8_sequence(const unsigned char *p)
{
	unsigned c = p[0];
	int n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
	for (int i = 1; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	if (n == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)))
		return 0;
	if (n == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)))
		return 0;
	return n;
}

size_t r5_text_escape(char *out, size_t size, const char *in)
{
	size_t o = 0;
	if (size == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p;) {
		char esc[8];
		const char *piece = esc;
		size_t len;
		int n = utf8_sequence(p);
		/* C1 controls (U+0080-U+009F: NEL is a line break to some readers), LINE and PARAGRAPH
		 * SEPARATOR (U+2028, U+2029) are escaped like the C0 ones */
		unsigned c1 = n == 2 && p[0] == 0xC2 && p[1] < 0xA0 ? p[1] : 0;
		unsigned sep = n == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9) ? 0x2000u + p[2] - 0x80u : 0;
		if (c1 || sep) {
			len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c1 ? c1 : sep);
		} else if (n == 1 && (*p < 0x20 || *p == 0x7F)) {
			if (*p == '\n')
				len = (size_t)snprintf(esc, sizeof esc, "\\n");
			else if (*p == '\r')
				len = (size_t)snprintf(esc, sizeof esc, "\\r");
			else if (*p == '\t')
				len = (size_t)snprintf(esc, sizeof esc, "\\t");
			else
				len = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
		} else if (n == 0) {
			esc[0] = '?';
			len = 1;
			n = 1;
		} else {
			piece = (const char *)p;
			len = (size_t)n;
		}
		if (o + len >= size)
			break; /* never cut a sequence in half */
		memcpy(out + o, piece, len);
		o += len;
		p += n;
	}
	out[o] = '\0';
	return o;
}

void r5_log(r5_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
	if (level < log_level)
		return;
	char raw[2048], line[2048], stamp[32];
	time_t now = time(NULL);
	struct tm utc;
	gmtime_r(&now, &utc);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	r5_text_escape(line, sizeof line, raw); /* a value with a newline cannot forge a record */
	/* one fprintf call per record so that lines from threads do not interleave */
	fprintf(stderr, "%s recon5t %s %s\n", stamp, tags[level], line);
}
