/* Thread-local error message behind r5_set_error / r5_last_error (status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define R5_ERROR_TEXT 1024

static _Thread_local char error_text[R5_ERROR_TEXT];

r5_status r5_set_error(r5_status code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_text, sizeof error_text, fmt, ap);
	va_end(ap);
	return code;
}

r5_status r5_error_context(r5_status code, const char *fmt, ...)
{
	char prefix[256], previous[R5_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(previous, error_text, sizeof previous);
	const char *rest = previous[0] ? previous : r5_status_name(code);
	size_t used = strlen(prefix);
	if (used > sizeof error_text - 3)
		used = sizeof error_text - 3;
	memcpy(error_text, prefix, used);
	memcpy(error_text + used, ": ", 2);
	used += 2;
	size_t room = sizeof error_text - used - 1, len = strlen(rest);
	if (len > room)
		len = room;
	memcpy(error_text + used, rest, len);
	error_text[used + len] = '\0';
	return code;
}

const char *r5_last_error(void)
{
	return error_text;
}

void r5_clear_error(void)
{
	error_text[0] = '\0';
}

const char *r5_status_name(r5_status code)
{
	switch (code) {
	case R5_OK: return "ok";
	case R5_EINVAL: return "invalid argument";
	case R5_ENOMEM: return "out of memory";
	case R5_EGPU: return "GPU error";
	case R5_EIO: return "I/O error";
	case R5_ECANCELLED: return "cancelled";
	case R5_ETIMEDOUT: return "deadline exceeded";
	case R5_ENOTSUP: return "not supported";
	case R5_ERANGE: return "size out of range";
	case R5_EINTERNAL: return "internal error";
	case R5_EBUSY: return "resource exhausted";
	case R5_ENOTFOUND: return "not found";
	case R5_EDEVICE_LOST: return "device lost";
	}
	return "unknown status";
}
