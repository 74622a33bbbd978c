/* Largest fully-sampled centred block of a ky-kz sampling mask (calib_region.h). For each ky
 * width the widest kz extent that is still fully sampled shrinks monotonically, so one pass
 * over the widths with a shrinking kz width finds the best area in O(ny * nz * (ny + nz)). */
#include "calib_region.h"

static int block_sampled(const unsigned char *mask, long ny, long nz, long wy, long wz)
{
	long y0 = ny / 2 - wy / 2, z0 = nz / 2 - wz / 2;
	if (y0 < 0 || z0 < 0 || y0 + wy > ny || z0 + wz > nz)
		return 0;
	for (long z = z0; z < z0 + wz; z++)
		for (long y = y0; y < y0 + wy; y++)
			if (!mask[y + z * ny])
				return 0;
	return 1;
}

r5_status r5_calib_region_find_mask(const unsigned char *mask, long ny, long nz, long calib_yz[2])
{
	if (!mask || ny < 1 || nz < 1)
		return r5_set_error(R5_EINVAL, "calibration region: no sampling mask");
	if (!mask[ny / 2 + (nz / 2) * ny])
		return r5_set_error(R5_EINVAL, "calibration region: the k-space centre (ky %ld, kz %ld) was not sampled",
				    ny / 2, nz / 2);
	long best_y = 1, best_z = 1, wz = nz;
	for (long wy = 1; wy <= ny; wy++) {
		while (wz > 0 && !block_sampled(mask, ny, nz, wy, wz))
			wz--;
		if (wz == 0)
			break;
		if (wy * wz > best_y * best_z || (wy * wz == best_y * best_z && wy > best_y)) {
			best_y = wy;
			best_z = wz;
		}
	}
	calib_yz[0] = best_y;
	calib_yz[1] = best_z;
	return R5_OK;
}
