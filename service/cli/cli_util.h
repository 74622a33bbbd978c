/* Small helpers shared by the recon5t subcommands. */
#ifndef R5_CLI_UTIL_H
#define R5_CLI_UTIL_H

#include "recon/core/array.h"
#include "recon/pipeline/quality.h"

/* Prints "recon5t " + message to stderr and returns code. */
int r5_cli_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
int r5_cli_has_suffix(const char *text, const char *suffix);
/* Reads an image: .cfl, or ISMRMRD images from the first variable of `vars` (NULL-terminated)
 * the file holds. */
r5_status r5_cli_read_image(const char *path, const char *const *vars, r5_array **out);
/* Compares after dropping singleton dimensions from both shapes (a BART [1 230 180] image
 * against an ISMRMRD [230 180] one), so that layouts from different tools line up. */
r5_status r5_cli_squeeze_compare(const r5_array *ref, const r5_array *img, int scale, r5_quality *q);

#endif
