/* Logging: one line per event to stderr, with level and an optional job id. Patient data never
 * goes into a log line: callers log job ids, sizes and stages only. */
#ifndef R5_CORE_LOG_H
#define R5_CORE_LOG_H

#include <stddef.h>

typedef enum r5_log_level { R5_LOG_DEBUG = 0, R5_LOG_INFO = 1, R5_LOG_WARN = 2, R5_LOG_ERROR = 3 } r5_log_level;

void r5_log_set_level(r5_log_level level);
r5_log_level r5_log_get_level(void);
/* Parses "debug|info|warn|error"; returns -1 when unknown. */
int r5_log_level_parse(const char *name);
void r5_log(r5_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Copies `in` into out (size bytes, always terminated) as one line of valid UTF-8 that cannot
 * forge log records or break a protobuf string: bytes that are not part of a well-formed UTF-8
 * sequence become '?'; control characters (newline, CR, tab, ESC, DEL, ...) become \n, \r, \t
 * or \xNN; the C1 controls and U+2028/U+2029 (line breaks to some readers) become \uNNNN. A
 * sequence is never cut in half at the end. r5_log applies it to every record; the service
 * applies it to every status message. Returns the length written. */
size_t r5_text_escape(char *out, size_t size, const char *in);

#define r5_debug(...) r5_log(R5_LOG_DEBUG, __VA_ARGS__)
#define r5_info(...) r5_log(R5_LOG_INFO, __VA_ARGS__)
#define r5_warn(...) r5_log(R5_LOG_WARN, __VA_ARGS__)
#define r5_error(...) r5_log(R5_LOG_ERROR, __VA_ARGS__)

#endif
