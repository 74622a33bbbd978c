/* NRMSE, PSNR and SSIM of magnitude images (quality.h). Host-side, double precision. */
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

static double ssim_plane(const double *a, const double *b, long nx, long ny, double range, double *work)
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
		double va = s_aa[i] - mu_a[i] * mu_a[i], vb = s_bb[i] - mu_b[i] * mu_b[i];
		double cov = s_ab[i] - mu_a[i] * mu_b[i];
		sum += (2 * mu_a[i] * mu_b[i] + c1) * (2 * cov + c2) /
		       ((mu_a[i] * mu_a[i] + mu_b[i] * mu_b[i] + c1) * (va + vb + c2));
	}
	return sum / n;
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
	double *a = malloc(sizeof *a * n), *b = malloc(sizeof *b * n);
	long nx = ref->dims[0], ny = ref->dims[1];
	double *work = malloc(sizeof *work * 7 * nx * ny);
	if (!a || !b || !work) {
		free(a), free(b), free(work);
		return r5_set_error(R5_ENOMEM, "quality buffers");
	}
	double ab = 0, bb = 0, aa = 0, amax = 0;
	for (long i = 0; i < n; i++) {
		a[i] = cabsf(ref->data[i]);
		b[i] = cabsf(img->data[i]);
		if (!isfinite(b[i])) {
			free(a), free(b), free(work);
			return r5_set_error(R5_EINVAL, "quality: the image holds NaN or infinite values (element %ld)", i);
		}
		ab += a[i] * b[i], bb += b[i] * b[i], aa += a[i] * a[i];
		if (a[i] > amax)
			amax = a[i];
	}
	q->scale = least_squares_scale && bb > 0 ? ab / bb : 1.0;
	double err = 0;
	for (long i = 0; i < n; i++) {
		b[i] *= q->scale;
		err += (a[i] - b[i]) * (a[i] - b[i]);
	}
	q->nrmse = aa > 0 ? sqrt(err / aa) : INFINITY;
	double rmse = sqrt(err / n);
	q->psnr = rmse > 0 ? 20 * log10(amax / rmse) : INFINITY;
	long planes = n / (nx * ny);
	double ssim = 0;
	for (long p = 0; p < planes; p++)
		ssim += ssim_plane(a + p * nx * ny, b + p * nx * ny, nx, ny, amax > 0 ? amax : 1, work);
	q->ssim = ssim / planes;
	free(a), free(b), free(work);
	return R5_OK;
}

static int squeeze(const long in[R5_DIMS], long out[R5_DIMS])
{
	int k = 0;
	r5_dims_ones(out);
	for (int d = 0; d < R5_DIMS; d++)
		if (in[d] > 1)
			out[k++] = in[d];
	return k;
}

r5_status r5_quality_compare_squeezed(const r5_array *ref, const r5_array *img, int least_squares_scale,
				      int leading_block, r5_quality *q)
{
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
	r5_array *rv = NULL, *iv = NULL;
	r5_status s = r5_array_view(R5_HOST, NULL, rd, ref->data, &rv);
	if (s == R5_OK) /* the first ref-sized block of img */
		s = r5_array_view(R5_HOST, NULL, rd, img->data, &iv);
	if (s == R5_OK)
		s = r5_quality_compare(rv, iv, least_squares_scale, q);
	r5_array_free(rv);
	r5_array_free(iv);
	return s;
}
