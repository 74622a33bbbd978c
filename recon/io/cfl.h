/* BART .cfl/.hdr files: "NAME.hdr" holds "# Dimensions" and a line of sizes; "NAME.cfl" holds
 * the complex64 values, little endian, column-major (first dimension fastest) — exactly an
 * r5_array's host layout. Paths may be given with or without the .cfl/.hdr suffix. More than
 * R5_DIMS dimensions are accepted when the extra ones are 1. */
#ifndef R5_IO_CFL_H
#define R5_IO_CFL_H

#include "../core/array.h"

/* Reads into a new host array. Errors name the file: missing, malformed .hdr, absurd dims
 * (over R5_ARRAY_MAX_BYTES), or a .cfl whose size disagrees with the .hdr dims. */
r5_status r5_cfl_read(const char *path, r5_array **out);
/* Writes a host array (any strides) to NAME.hdr + NAME.cfl. */
r5_status r5_cfl_write(const char *path, const r5_array *array);
/* Reads only the .hdr dims (for checks before reading the data). */
r5_status r5_cfl_read_dims(const char *path, long dims[R5_DIMS]);

#endif
