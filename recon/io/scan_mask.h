/* Retrospective undersampling of a scan: a ky-kz sampling mask (BART's layout, as `bart
 * poisson` and `recon5t mask` write it: dims [1, Y, Z], values 0 or 1) applied to fully sampled
 * k-space, so that the reconstruction sees the undersampled data and its pattern — the
 * experiment of compressed sensing papers (Lustig, Donoho, Pauly, "Sparse MRI", MRM 58, 2007)
 * without another tool. Used by `recon5t recon ... --mask`. */
#ifndef R5_IO_SCAN_MASK_H
#define R5_IO_SCAN_MASK_H

#include "scan.h"

/* Zeroes every readout line whose (y, z) the mask leaves out, in every coil, slice, contrast
 * ..., and clears it from scan->sampled, ->imaging and ->calib. mask: host array [1, Y, Z] (all
 * further dims 1) matching the k-space's Y and Z; each value 0 or 1 (imaginary 0). Errors
 * (R5_EINVAL) name mask_name and both shapes, or the first value that is not 0/1, or say that
 * no sampled line is left. */
r5_status r5_scan_apply_mask(r5_scan *scan, const r5_array *mask, const char *mask_name);

#endif
