/* Helpers shared by the recon5t subcommands (cli_util.h). */
#include "cli_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon/io/cfl.h"
#include "recon/io/ismrmrd_images.h"

int r5_cli_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "recon5t ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return code;
}

int r5_cli_has_suffix(const char *text, const char *suffix)
{
	size_t n = strlen(text), m = strlen(suffix);
	return n >= m && !strcmp(text + n - m, suffix);
}

r5_status r5_cli_read_image(const char *path, const char *const *vars, r5_array **out)
{
	*out = NULL;
	if (r5_cli_has_suffix(path, ".cfl") || r5_cli_has_suffix(path, ".hdr"))
		return r5_cfl_read(path, out);
	char tried[256] = "";
	for (int i = 0; vars[i]; i++) {
		if (r5_ismrmrd_read_images(path, NULL, vars[i], out) == R5_OK)
			return R5_OK;
		strncat(tried, i ? ", " : "", sizeof tried - strlen(tried) - 1);
		strncat(tried, vars[i], sizeof tried - strlen(tried) - 1);
	}
	return r5_set_error(R5_ENOTFOUND, "%s holds no image variable (looked for %s)", path, tried);
}

int r5_cli_parse_long(const char *text, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (end == text || *end || errno || v < lo || v > hi)
		return 0;
	*out = v;
	return 1;
}
