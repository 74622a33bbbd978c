/* Finding the auto-calibration (ACS) region of a Cartesian scan from its sampling mask: the
 * largest fully-sampled block centred on the k-space centre (ny/2, nz/2) in ky-kz. Used by
 * ESPIRiT and GRAPPA when the input carries no calibration information (BART .cfl), and as a
 * check of what the header claims otherwise. */
#ifndef R5_CALIB_CALIB_REGION_H
#define R5_CALIB_CALIB_REGION_H

#include "../io/scan.h"

/* calib[0] = the readout length (always fully sampled), calib[1], calib[2] = the ky and kz widths
 * of the largest (by area) fully-sampled centred block, looked at in the first frame of the mask
 * (contrast, slice, ... index 0). A block of width w covers rows c - w/2 .. c - w/2 + w - 1 with
 * c = n/2. R5_EINVAL when the scan has no mask or the centre itself is not sampled. */
r5_status r5_calib_region_find(const r5_scan *scan, long calib[3]);

/* The same on a plain mask (ny x nz, y fastest, non-zero = sampled). */
r5_status r5_calib_region_find_mask(const unsigned char *mask, long ny, long nz, long calib_yz[2]);

#endif
