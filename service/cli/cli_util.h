/* Small helpers shared by the recon5t subcommands. */
#ifndef R5_CLI_UTIL_H
#define R5_CLI_UTIL_H

#include "recon/core/array.h"

/* Prints "recon5t " + message to stderr and returns code. */
int r5_cli_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
int r5_cli_has_suffix(const char *text, const char *suffix);

/* 1 when text is a whole decimal integer in [lo, hi] (stored in *out), else 0. */
int r5_cli_parse_long(const char *text, long lo, long hi, long *out);
/* Reads an image: .cfl, or ISMRMRD images from the first variable of `vars` (NULL-terminated)
 * the file holds. */
r5_status r5_cli_read_image(const char *path, const char *const *vars, r5_array **out);
#endif
