/* Finding the auto-calibration (ACS) region of a Cartesian scan from its sampling mask: the
 * largest fully-sampled block centred on the k-space centre (ny/2, nz/2) in ky-kz. Used by
 * ESPIRiT and GRAPPA when the input carries no calibration information (BART .cfl), and as a
 * check of what the header claims otherwise. */
#ifndef R5_CALIB_CALIB_REGION_H
#define R5_CALIB_CALIB_REGION_H

#include "../core/status.h"

/* The ky and kz widths of the largest (by area) fully-sampled block centred on (ny/2, nz/2) of a
 * plain mask (ny x nz, y fastest, non-zero = sampled): a block of width w covers rows
 * c - w/2 .. c - w/2 + w - 1 with c = n/2. R5_EINVAL when the centre itself is not sampled. The
 * same on a scan: r5_calib_region_find (recon/pipeline/coil_prep.h). */
r5_status r5_calib_region_find_mask(const unsigned char *mask, long ny, long nz, long calib_yz[2]);

#endif
