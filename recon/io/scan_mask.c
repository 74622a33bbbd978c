/* A ky-kz mask applied to a scan's k-space and sampling flags. See scan_mask.h. */
#include "scan_mask.h"

#include <complex.h>
#include <string.h>

#include "../core/dims.h"

static r5_status check_mask(const r5_scan *scan, const r5_array *mask, const char *name)
{
	const long *k = scan->kspace->dims, *m = mask->dims;
	int fits = mask->where == R5_HOST && m[R5_DIM_X] == 1 && m[R5_DIM_Y] == k[R5_DIM_Y] && m[R5_DIM_Z] == k[R5_DIM_Z];
	for (int d = R5_DIM_Z + 1; d < R5_DIMS; d++)
		fits = fits && m[d] == 1;
	if (!fits) {
		char kdims[160], mdims[160];
		return r5_set_error(R5_EINVAL,
				    "mask %s: dims %s do not fit k-space %s (a mask is [1, Y, Z] with the k-space's Y "
				    "and Z%s)",
				    name, r5_dims_format(mdims, sizeof mdims, m), r5_dims_format(kdims, sizeof kdims, k),
				    mask->where == R5_HOST ? "" : ", in host memory");
	}
	for (long z = 0; z < m[R5_DIM_Z]; z++)
		for (long y = 0; y < m[R5_DIM_Y]; y++) {
			float complex v = mask->data[y * mask->strides[R5_DIM_Y] + z * mask->strides[R5_DIM_Z]];
			if (cimagf(v) != 0.0f || (crealf(v) != 0.0f && crealf(v) != 1.0f))
				return r5_set_error(R5_EINVAL, "mask %s: value %g%+gi at y=%ld z=%ld is not 0 or 1", name,
						    (double)crealf(v), (double)cimagf(v), y, z);
		}
	return R5_OK;
}

r5_status r5_scan_apply_mask(r5_scan *scan, const r5_array *mask, const char *mask_name)
{
	const char *name = mask_name ? mask_name : "(mask)";
	if (!scan || !scan->kspace || !scan->sampled || !mask)
		return r5_set_error(R5_EINVAL, "mask %s: no scan or no mask", name);
	R5_TRY(check_mask(scan, mask, name));
	r5_array *k = scan->kspace;
	long pos[R5_DIMS] = {0}, total = r5_array_size(k), nx = k->dims[R5_DIM_X], kept = 0;
	/* k-space is contiguous (scan.h), so each run of nx values is one readout line */
	for (long i = 0; i < total; i += nx) {
		long index = r5_scan_mask_index(scan, pos);
		float complex v = mask->data[pos[R5_DIM_Y] * mask->strides[R5_DIM_Y] + pos[R5_DIM_Z] * mask->strides[R5_DIM_Z]];
		if (crealf(v) == 0.0f) {
			memset(k->data + i, 0, sizeof *k->data * (size_t)nx);
			scan->sampled[index] = 0;
			if (scan->imaging)
				scan->imaging[index] = 0;
			if (scan->calib)
				scan->calib[index] = 0;
		}
		for (int d = 1; d < R5_DIMS; d++) {
			if (++pos[d] < k->dims[d])
				break;
			pos[d] = 0;
		}
	}
	for (long i = 0, n = r5_dims_size(scan->mask_dims); i < n; i++)
		kept += scan->sampled[i] != 0;
	if (!kept)
		return r5_set_error(R5_EINVAL, "mask %s: no sampled line of the k-space is left", name);
	return R5_OK;
}
