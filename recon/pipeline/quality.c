/* NRMSE, PSNR and SSIM of magnitude images, over all voxels or inside a 0/1 mask (quality.h).
 * Host-side, double precision. One core (compare_voxels) computes every variant; the unmasked
 * figures are its mask-free case, with the same sums in the same order. */
#include "quality.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WIN 11
#define HALF 5

/* Separable Gaussian blur with zero-weight renormalisation at the borders. */
static void blur(const double *in, double *out, double *tmp, long nx, long ny, const double *g)
{
	for (long y = 0; y < ny; y++)
		for (long x = 0; x < nx; x++) {
			double s = 0, w = 0;
			for (int k = -HALF; k <= HALF; k++)
				if (x + k >= 0 && x + k < nx) {
					s += g[k + HALF] * in[y * nx + x + k];
					w += g[k + HALF];
				}
			tmp[y * nx + x] = s / w;
		}
	for (long y = 0; y < ny; y++)
		for (long x = 0; x < nx; x++) {
			double s = 0, w = 0;
			for (int k = -HALF; k <= HALF; k++)
				if (y + k >= 0 && y + k < ny) {
					s += g[k + HALF] * tmp[(y + k) * nx + x];
					w += g[k + HALF];
				}
			out[y * nx + x] = s / w;
		}
}

/* Sum of one plane's SSIM map over the voxels where mask is 1 (mask NULL: over all of them).
 * work: 7 nx ny doubles. */
static double ssim_plane_sum(const double *a, const double *b, const float complex *mask, long nx, long ny,
			     double range, double *work)
{
	double g[WIN];
	for (int k = 0; k < WIN; k++)
		g[k] = exp(-0.5 * (k - HALF) * (k - HALF) / (1.5 * 1.5));
	long n = nx * ny;
	double *mu_a = work, *mu_b = work + n, *s_aa = work + 2 * n, *s_bb = work + 3 * n, *s_ab = work + 4 * n;
	double *prod = work + 5 * n, *tmp = work + 6 * n;
	blur(a, mu_a, tmp, nx, ny, g);
	blur(b, mu_b, tmp, nx, ny, g);
	for (long i = 0; i < n; i++)
		prod[i] = a[i] * a[i];
	blur(prod, s_aa, tmp, nx, ny, g);
	for (long i = 0; i < n; i++)
		prod[i] = b[i] * b[i];
	blur(prod, s_bb, tmp, nx, ny, g);
	for (long i = 0; i < n; i++)
		prod[i] = a[i] * b[i];
	blur(prod, s_ab, tmp, nx, ny, g);
	double c1 = pow(0.01 * range, 2), c2 = pow(0.03 * range, 2), sum = 0;
	for (long i = 0; i < n; i++) {
		if (mask && crealf(mask[i]) == 0)
			continue;
		double va = s_aa[i] - mu_a[i] * mu_a[i], vb = s_bb[i] - mu_b[i] * mu_b[i];
		double cov = s_ab[i] - mu_a[i] * mu_b[i];
		sum += (2 * mu_a[i] * mu_b[i] + c1) * (2 * cov + c2) /
		       ((mu_a[i] * mu_a[i] + mu_b[i] * mu_b[i] + c1) * (va + vb + c2));
	}
	return sum;
}

/* The figures of n voxels laid out as planes of nx x ny, inside mask (NULL: all n; else 0/1
 * values, already checked, of which `voxels` are 1). */
static r5_status compare_voxels(const float complex *ref, const float complex *img, const float complex *mask,
				long voxels, long n, long nx, long ny, int least_squares_scale, r5_quality *q)
{
	double *a = malloc(sizeof *a * n), *b = malloc(sizeof *b * n);
	double *work = malloc(sizeof *work * 7 * nx * ny);
	if (!a || !b || !work) {
		free(a), free(b), free(work);
		return r5_set_error(R5_ENOMEM, "quality buffers");
	}
	double ab = 0, bb = 0, amax = 0;
	for (long i = 0; i < n; i++) {
		a[i] = cabsf(ref[i]);
		b[i] = cabsf(img[i]);
		if (!isfinite(b[i])) {
			free(a), free(b), free(work);
			return r5_set_error(R5_EINVAL, "quality: the image holds NaN or infinite values (element %ld)", i);
		}
		ab += a[i] * b[i], bb += b[i] * b[i];
		if (a[i] > amax)
			amax = a[i];
	}
	q->scale = least_squares_scale && bb > 0 ? ab / bb : 1.0; /* the whole image's, also with a mask */
	double err = 0, aa = 0;
	for (long i = 0; i < n; i++) {
		b[i] *= q->scale; /* everywhere: the SSIM windows reach outside the mask */
		if (!mask || crealf(mask[i]) != 0)
			err += (a[i] - b[i]) * (a[i] - b[i]), aa += a[i] * a[i];
	}
	q->nrmse = aa > 0 ? sqrt(err / aa) : INFINITY;
	double rmse = sqrt(err / voxels);
	q->psnr = rmse > 0 ? 20 * log10(amax / rmse) : INFINITY;
	long plane = nx * ny, planes = n / plane;
	double ssim = 0;
	for (long p = 0; p < planes; p++) {
		double sum = ssim_plane_sum(a + p * plane, b + p * plane, mask ? mask + p * plane : NULL, nx, ny,
					    amax > 0 ? amax : 1, work);
		ssim += mask ? sum : sum / plane; /* unmasked: the mean of the planes' means */
	}
	q->ssim = ssim / (mask ? voxels : planes);
	free(a), free(b), free(work);
	return R5_OK;
}

r5_status r5_quality_compare(const r5_array *ref, const r5_array *img, int least_squares_scale, r5_quality *q)
{
	if (ref->where != R5_HOST || img->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "quality: images must be on the host");
	if (!r5_dims_equal(ref->dims, img->dims)) {
		char a[128], b[128];
		return r5_set_error(R5_EINVAL, "quality: reference is %s but the image is %s",
				    r5_dims_format(a, sizeof a, ref->dims), r5_dims_format(b, sizeof b, img->dims));
	}
	long n = r5_array_size(ref);
	return compare_voxels(ref->data, img->data, NULL, n, n, ref->dims[0], ref->dims[1], least_squares_scale, q);
}

/* The dims of size > 1, in order, padded with 1; returns how many. */
static int squeeze(const long in[R5_DIMS], long out[R5_DIMS])
{
	int k = 0;
	r5_dims_ones(out);
	for (int d = 0; d < R5_DIMS; d++)
		if (in[d] > 1)
			out[k++] = in[d];
	return k;
}

/* mask's squeezed shape is ref_squeezed, its values 0 or 1, at least one 1 (*voxels: how many). */
static r5_status check_mask(const r5_array *mask, const long ref_squeezed[R5_DIMS], long *voxels)
{
	if (mask->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "quality: the mask must be on the host");
	long md[R5_DIMS];
	squeeze(mask->dims, md);
	if (!r5_dims_equal(ref_squeezed, md)) {
		char a[128], b[128];
		return r5_set_error(R5_EINVAL, "the mask's shape %s is not the reference's %s (after dropping size-1 dims)",
				    r5_dims_format(a, sizeof a, md), r5_dims_format(b, sizeof b, ref_squeezed));
	}
	long n = r5_array_size(mask);
	*voxels = 0;
	for (long i = 0; i < n; i++) {
		float re = crealf(mask->data[i]), im = cimagf(mask->data[i]);
		if (!((re == 0 || re == 1) && im == 0))
			return r5_set_error(R5_EINVAL, "mask element %ld is %g%+gi, not 0 or 1", i, re, im);
		*voxels += re == 1;
	}
	if (*voxels == 0)
		return r5_set_error(R5_EINVAL, "the mask holds no voxel equal to 1");
	return R5_OK;
}

r5_status r5_quality_check_mask(const r5_array *ref, const r5_array *mask, long *mask_voxels)
{
	long rd[R5_DIMS], voxels;
	squeeze(ref->dims, rd);
	R5_TRY(check_mask(mask, rd, &voxels));
	if (mask_voxels)
		*mask_voxels = voxels;
	return R5_OK;
}

r5_status r5_quality_compare_masked(const r5_array *ref, const r5_array *img, const r5_array *mask,
				    int least_squares_scale, int leading_block, r5_quality *q, long *mask_voxels)
{
	if (ref->where != R5_HOST || img->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "quality: images must be on the host");
	long rd[R5_DIMS], id[R5_DIMS];
	int n_ref = squeeze(ref->dims, rd), n_img = squeeze(img->dims, id);
	int same = leading_block ? n_img >= n_ref : n_img == n_ref;
	for (int d = 0; d < n_ref && same; d++)
		same = rd[d] == id[d];
	if (!same) {
		char a[128], b[128];
		return r5_set_error(R5_EINVAL, "reference shape %s does not match the reconstruction's %s "
					       "(after dropping size-1 dims)",
				    r5_dims_format(a, sizeof a, rd), r5_dims_format(b, sizeof b, id));
	}
	long n = r5_dims_size(rd), voxels = n;
	if (mask)
		R5_TRY(check_mask(mask, rd, &voxels));
	/* img's first ref-sized block: the leading elements of a contiguous array */
	R5_TRY(compare_voxels(ref->data, img->data, mask ? mask->data : NULL, voxels, n, rd[0], rd[1],
			      least_squares_scale, q));
	if (mask_voxels)
		*mask_voxels = voxels;
	return R5_OK;
}

r5_status r5_quality_compare_squeezed(const r5_array *ref, const r5_array *img, int least_squares_scale,
				      int leading_block, r5_quality *q)
{
	return r5_quality_compare_masked(ref, img, NULL, least_squares_scale, leading_block, q, NULL);
}

/* The frame count along R5_DIM_TIME after checking what the series needs of `a` (named). */
static r5_status series_frames(const r5_array *a, const char *name, long *frames)
{
	if (a->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "quality: the %s must be on the host", name);
	if (!r5_array_is_contiguous(a))
		return r5_set_error(R5_EINVAL, "quality: the %s must be contiguous", name);
	for (int d = R5_DIM_TIME + 1; d < R5_DIMS; d++)
		if (a->dims[d] != 1) {
			char text[128];
			return r5_set_error(R5_EINVAL, "quality: the %s is %s: frames run along dim %d only, dim %d must be 1",
					    name, r5_dims_format(text, sizeof text, a->dims), R5_DIM_TIME, d);
		}
	*frames = a->dims[R5_DIM_TIME];
	return R5_OK;
}

/* The mean over frames of ref's magnitudes: one frame of ref's shape (host, *out owned). */
static r5_status time_average(const r5_array *ref, r5_array **out)
{
	long dims[R5_DIMS], frames = ref->dims[R5_DIM_TIME];
	r5_dims_copy(dims, ref->dims);
	dims[R5_DIM_TIME] = 1;
	R5_TRY(r5_array_alloc_host(dims, out));
	long block = r5_dims_size(dims);
	for (long i = 0; i < block; i++) {
		double sum = 0;
		for (long t = 0; t < frames; t++)
			sum += cabsf(ref->data[t * block + i]);
		(*out)->data[i] = (float)(sum / frames);
	}
	return R5_OK;
}

void r5_quality_series_free(r5_quality_series *series)
{
	if (!series)
		return;
	free(series->frames);
	series->frames = NULL;
	series->n_frames = 0;
}

r5_status r5_quality_compare_series(const r5_array *ref, const r5_array *img, const r5_array *mask,
				    int least_squares_scale, int leading_block, r5_quality_series *out)
{
	memset(out, 0, sizeof *out);
	long ref_frames, frames;
	R5_TRY(series_frames(ref, "reference", &ref_frames));
	R5_TRY(series_frames(img, "image", &frames));
	if (frames != ref_frames && frames != 1)
		return r5_set_error(R5_EINVAL, "quality: the reference has %ld frames (dim %d) but the image %ld: "
					       "want as many, or one image against the reference's time average",
				    ref_frames, R5_DIM_TIME, frames);
	r5_array *average = NULL;
	if (frames == 1 && ref_frames > 1) {
		R5_TRY(time_average(ref, &average));
		out->truth_averaged = 1;
	}
	out->frames = calloc((size_t)frames, sizeof *out->frames);
	if (!out->frames) {
		r5_array_free(average);
		return r5_set_error(R5_ENOMEM, "quality: %ld frames' figures", frames);
	}
	out->n_frames = frames;
	long ref_dims[R5_DIMS], img_dims[R5_DIMS];
	r5_dims_copy(ref_dims, ref->dims), r5_dims_copy(img_dims, img->dims);
	ref_dims[R5_DIM_TIME] = img_dims[R5_DIM_TIME] = 1;
	r5_status s = R5_OK;
	for (long t = 0; t < frames && s == R5_OK; t++) {
		r5_array ref_frame = average ? r5_array_view_strided(average, average->dims, NULL, 0)
					     : r5_array_view_strided(ref, ref_dims, NULL, t * ref->strides[R5_DIM_TIME]);
		r5_array img_frame = r5_array_view_strided(img, img_dims, NULL, t * img->strides[R5_DIM_TIME]);
		r5_quality *q = &out->frames[t];
		s = r5_quality_compare_masked(&ref_frame, &img_frame, mask, least_squares_scale, leading_block, q, NULL);
		if (s != R5_OK && frames > 1)
			s = r5_error_context(s, "frame %ld of %ld", t, frames);
		out->mean.nrmse += q->nrmse / frames, out->mean.psnr += q->psnr / frames;
		out->mean.ssim += q->ssim / frames, out->mean.scale += q->scale / frames;
	}
	r5_array_free(average);
	if (s != R5_OK)
		r5_quality_series_free(out);
	return s;
}
