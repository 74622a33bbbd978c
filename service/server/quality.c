/* Quality figures in Completed: when the ScanHeader carries a ground truth (a phantom's
 * reference image, float32 magnitude), the reconstruction's magnitude is compared with it by
 * recon/pipeline/quality.h (nrmse and psnr with least-squares scaling, ssim per x-y plane).
 * Shapes are compared after dropping size-1 dims (the client may send [x, y] for an image set
 * [x, y, 1, 1, ...]); when the images have more than the truth (e.g. two ESPIRiT maps) and
 * their leading squeezed dims equal the truth's, the first truth-sized block is compared.
 * A dynamic truth (frames along dim 10, the dynamic phantom's repetitions) is compared frame by
 * frame with the images' frames and the figures are the means over frames; a single image
 * (a pipeline that makes one image of all the spokes: sense, grid without frame_spokes) is
 * compared with the truth's time average (r5_quality_compare_series). */
#include <complex.h>
#include <stdlib.h>
#include <string.h>

#include "recon/pipeline/quality.h"
#include "server.h"

#define MAX_TRUTH_VOXELS (1L << 28) /* 1 GiB of float32: far beyond any protobuf message */

r5_status r5_quality_check_truth(const Recon5t__V1__GroundTruth *truth)
{
	if (truth->n_dims == 0 || truth->n_dims > R5_DIMS)
		return r5_set_error(R5_EINVAL, "ScanHeader.ground_truth.dims has %zu entries, expected 1 to %d",
				    truth->n_dims, R5_DIMS);
	long voxels = 1;
	for (size_t i = 0; i < truth->n_dims; i++) {
		if (truth->dims[i] == 0)
			return r5_set_error(R5_EINVAL, "ScanHeader.ground_truth.dims[%zu] is 0", i);
		voxels *= (long)truth->dims[i];
		if (voxels > MAX_TRUTH_VOXELS)
			return r5_set_error(R5_EINVAL, "ScanHeader.ground_truth is larger than %ld voxels", MAX_TRUTH_VOXELS);
	}
	if (truth->data.len != (size_t)voxels * sizeof(float))
		return r5_set_error(R5_EINVAL,
				    "ScanHeader.ground_truth.data has %zu bytes, its dims give %ld float32 values (%ld bytes)",
				    truth->data.len, voxels, voxels * (long)sizeof(float));
	return R5_OK;
}

/* Size>1 dims of `in` packed to the front; returns how many. */
r5_status r5_quality_of_set(const Recon5t__V1__GroundTruth *truth, const r5_image_set *set, double figures[4])
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (size_t i = 0; i < truth->n_dims; i++)
		dims[i] = (long)truth->dims[i];
	r5_array *ref = NULL;
	R5_TRY(r5_array_alloc_host(dims, &ref));
	long voxels = r5_array_size(ref);
	for (long i = 0; i < voxels; i++) {
		float value;
		memcpy(&value, truth->data.data + (size_t)i * sizeof value, sizeof value); /* little-endian host */
		ref->data[i] = value;
	}
	r5_quality_series series;
	r5_status s = r5_quality_compare_series(ref, set->images, NULL, 1, 1, &series);
	r5_array_free(ref);
	if (s != R5_OK)
		return r5_error_context(s, "ScanHeader.ground_truth");
	r5_quality q = series.mean;
	r5_quality_series_free(&series);
	figures[0] = q.nrmse;
	figures[1] = q.psnr;
	figures[2] = q.ssim;
	figures[3] = q.scale;
	return R5_OK;
}
