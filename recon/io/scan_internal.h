/* Shared between scan.c (the builder) and scan_read.c (file readers); not a public API. */
#ifndef R5_IO_SCAN_INTERNAL_H
#define R5_IO_SCAN_INTERNAL_H

#include "scan.h"

/* R5_OK when a complex array of `dims` fits max_bytes (0: R5_ARRAY_MAX_BYTES); else R5_ENOMEM
 * with "WHAT: matrix XxYxZ with N channels needs G GiB, memory budget is B GiB". Computed in
 * double precision so that absurd sizes cannot overflow. Dims <= 0 count as 1. */
r5_status r5_scan_check_budget(const long dims[R5_DIMS], long max_bytes, const char *what);

/* R5_OK when path is a regular file with the HDF5 signature; else a message naming it
 * (R5_ENOTFOUND when missing). Checked before libhdf5 sees the file. */
r5_status r5_io_check_hdf5_file(const char *path);

#endif
