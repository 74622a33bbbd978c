/* recon5t compare REF IMG [--scale] [--reference VAR] [--mask MASK]: one line
 * "nrmse=… psnr=… ssim=…" (quality.h). REF and IMG are .cfl files or ISMRMRD files; from an
 * ISMRMRD file REF is read from its "ground_truth" images (a phantom) and IMG from its
 * reconstructed "images", each falling back to the other variable (--reference VAR picks REF's
 * variable, e.g. "object"). --scale applies the least-squares magnitude scaling first.
 *
 * --mask restricts the figures to the voxels where a 0/1 mask is 1 (the vessel-wall phantom's
 * "wall_mask"): the mask is read from a .cfl, from FILE.h5[:VAR] (VAR default wall_mask) or, a
 * bare name, from REF's ISMRMRD file. Inside the mask M (quality.h's definitions otherwise):
 *   nrmse = sqrt(sum_M (|ref| - a |img|)^2 / sum_M |ref|^2), a from the WHOLE image (--scale),
 *           so a uniform intensity loss inside the mask counts as error;
 *   psnr  = 20 log10(max |ref| / rmse_M), the peak of the whole reference;
 *   ssim  = the SSIM map of the whole x-y planes (quality.h's window, constants and L = max
 *           |ref|) averaged over the voxels of M; an all-ones mask gives the unmasked figures.
 * The map is recomputed here (quality.c keeps only its mean) with quality.c's parameters;
 * test_vessel_wall.sh checks that the two agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_util.h"
#include "recon/pipeline/quality.h"

#define SSIM_WIN 11
#define SSIM_HALF 5

static void compare_usage(void)
{
	printf("usage: recon5t compare REF IMG [--scale] [--reference ground_truth|object|VAR] [--mask MASK]\n"
	       "prints nrmse=... psnr=... ssim=... (magnitudes; --scale: least-squares scaling)\n"
	       "A phantom file holds two references: ground_truth, the object band-limited to the\n"
	       "encoded k-space (what an ideal reconstruction gives: the default), and object, the\n"
	       "object averaged over each voxel (adds the Gibbs ringing of any finite matrix).\n"
	       "--mask MASK: the figures inside a 0/1 mask (same shape as REF), and mask_voxels=N.\n"
	       "  MASK is a .cfl, FILE.h5[:VAR] (VAR default wall_mask) or an image variable of REF's\n"
	       "  ISMRMRD file (e.g. wall_mask: the vessel-wall phantom's walls). nrmse and psnr use the\n"
	       "  mask's voxels only (psnr's peak and --scale's factor are the whole image's); ssim is\n"
	       "  the SSIM map of the whole x-y planes (11x11 Gaussian window) averaged over the mask.\n");
}

/* Separable Gaussian blur with zero-weight renormalisation at the borders (as quality.c). */
static void blur(const double *in, double *out, double *tmp, long nx, long ny, const double *g)
{
	for (long y = 0; y < ny; y++)
		for (long x = 0; x < nx; x++) {
			double s = 0, w = 0;
			for (int k = -SSIM_HALF; k <= SSIM_HALF; k++)
				if (x + k >= 0 && x + k < nx)
					s += g[k + SSIM_HALF] * in[y * nx + x + k], w += g[k + SSIM_HALF];
			tmp[y * nx + x] = s / w;
		}
	for (long y = 0; y < ny; y++)
		for (long x = 0; x < nx; x++) {
			double s = 0, w = 0;
			for (int k = -SSIM_HALF; k <= SSIM_HALF; k++)
				if (y + k >= 0 && y + k < ny)
					s += g[k + SSIM_HALF] * tmp[(y + k) * nx + x], w += g[k + SSIM_HALF];
			out[y * nx + x] = s / w;
		}
}

/* Sum of one plane's SSIM map over the voxels where mask is 1. work: 7 nx ny doubles. */
static double ssim_plane_masked(const double *a, const double *b, const double *mask, long nx, long ny,
				double range, double *work)
{
	double g[SSIM_WIN];
	for (int k = 0; k < SSIM_WIN; k++)
		g[k] = exp(-0.5 * (k - SSIM_HALF) * (k - SSIM_HALF) / (1.5 * 1.5));
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
		if (mask[i] == 0)
			continue;
		double va = s_aa[i] - mu_a[i] * mu_a[i], vb = s_bb[i] - mu_b[i] * mu_b[i];
		double cov = s_ab[i] - mu_a[i] * mu_b[i];
		sum += (2 * mu_a[i] * mu_b[i] + c1) * (2 * cov + c2) /
		       ((mu_a[i] * mu_a[i] + mu_b[i] * mu_b[i] + c1) * (va + vb + c2));
	}
	return sum;
}

/* The dims of size > 1, in order, padded with 1. */
static void squeeze(const long in[R5_DIMS], long out[R5_DIMS])
{
	int k = 0;
	r5_dims_ones(out);
	for (int d = 0; d < R5_DIMS; d++)
		if (in[d] > 1)
			out[k++] = in[d];
}

/* The mask as doubles (0/1), checked against REF's squeezed shape. */
static r5_status mask_values(const r5_array *ref, const r5_array *mask, const char *name, double *out, long *count)
{
	long rd[R5_DIMS], md[R5_DIMS];
	squeeze(ref->dims, rd), squeeze(mask->dims, md);
	if (!r5_dims_equal(rd, md)) {
		char a[128], b[128];
		return r5_set_error(R5_EINVAL, "--mask %s: its shape %s is not the reference's %s (after dropping size-1 dims)",
				    name, r5_dims_format(a, sizeof a, md), r5_dims_format(b, sizeof b, rd));
	}
	long n = r5_array_size(mask);
	*count = 0;
	for (long i = 0; i < n; i++) {
		float re = crealf(mask->data[i]), im = cimagf(mask->data[i]);
		if (!((re == 0 || re == 1) && im == 0))
			return r5_set_error(R5_EINVAL, "--mask %s: element %ld is %g%+gi, not 0 or 1", name, i, re, im);
		out[i] = re;
		*count += re == 1;
	}
	if (*count == 0)
		return r5_set_error(R5_EINVAL, "--mask %s holds no voxel equal to 1", name);
	return R5_OK;
}

/* The masked figures (see the top of this file). */
static r5_status compare_masked(const r5_array *ref, const r5_array *img, const r5_array *mask, const char *name,
				int least_squares_scale, r5_quality *q, long *mask_voxels)
{
	long rd[R5_DIMS], id[R5_DIMS];
	squeeze(ref->dims, rd), squeeze(img->dims, id);
	if (!r5_dims_equal(rd, id)) {
		char a[128], b[128];
		return r5_set_error(R5_EINVAL, "reference shape %s does not match the reconstruction's %s "
					       "(after dropping size-1 dims)",
				    r5_dims_format(a, sizeof a, rd), r5_dims_format(b, sizeof b, id));
	}
	long n = r5_array_size(ref), nx = rd[0], ny = rd[1];
	double *a = malloc(sizeof *a * n), *b = malloc(sizeof *b * n), *m = malloc(sizeof *m * n);
	double *work = malloc(sizeof *work * 7 * nx * ny);
	r5_status s = !a || !b || !m || !work ? r5_set_error(R5_ENOMEM, "compare --mask: buffers")
					      : mask_values(ref, mask, name, m, mask_voxels);
	double ab = 0, bb = 0, amax = 0;
	for (long i = 0; s == R5_OK && i < n; i++) {
		a[i] = cabsf(ref->data[i]), b[i] = cabsf(img->data[i]);
		if (!isfinite(b[i]))
			s = r5_set_error(R5_EINVAL, "quality: the image holds NaN or infinite values (element %ld)", i);
		ab += a[i] * b[i], bb += b[i] * b[i];
		amax = a[i] > amax ? a[i] : amax;
	}
	if (s == R5_OK) {
		q->scale = least_squares_scale && bb > 0 ? ab / bb : 1.0;
		double err = 0, aa = 0, ssim = 0;
		for (long i = 0; i < n; i++) {
			b[i] *= q->scale;
			if (m[i] != 0)
				err += (a[i] - b[i]) * (a[i] - b[i]), aa += a[i] * a[i];
		}
		q->nrmse = aa > 0 ? sqrt(err / aa) : INFINITY;
		double rmse = sqrt(err / *mask_voxels);
		q->psnr = rmse > 0 ? 20 * log10(amax / rmse) : INFINITY;
		for (long p = 0; p < n / (nx * ny); p++)
			ssim += ssim_plane_masked(a + p * nx * ny, b + p * nx * ny, m + p * nx * ny, nx, ny,
						  amax > 0 ? amax : 1, work);
		q->ssim = ssim / *mask_voxels;
	}
	free(a), free(b), free(m), free(work);
	return s;
}

/* MASK: a .cfl; FILE.h5[:VAR]; or a variable of REF's ISMRMRD file. */
static r5_status read_mask(const char *spec, const char *ref_path, r5_array **out)
{
	*out = NULL;
	char path[1024];
	const char *var = "wall_mask", *colon = strrchr(spec, ':');
	struct stat st;
	if (r5_cli_has_suffix(spec, ".cfl") || r5_cli_has_suffix(spec, ".hdr") || stat(spec, &st) == 0) {
		snprintf(path, sizeof path, "%s", spec);
	} else if (colon && colon != spec && colon[1]) {
		snprintf(path, sizeof path, "%.*s", (int)(colon - spec), spec);
		var = colon + 1;
	} else if (!strchr(spec, '/') && !strchr(spec, '.')) {
		if (r5_cli_has_suffix(ref_path, ".cfl") || r5_cli_has_suffix(ref_path, ".hdr"))
			return r5_set_error(R5_EINVAL, "--mask %s names an image variable of REF, but REF (%s) is a .cfl file: "
						       "give the mask as a .cfl or FILE.h5[:VAR]",
					    spec, ref_path);
		snprintf(path, sizeof path, "%s", ref_path);
		var = spec;
	} else {
		return r5_set_error(R5_ENOTFOUND, "--mask %s: no such file", spec);
	}
	const char *vars[] = {var, NULL};
	r5_status s = r5_cli_read_image(path, vars, out);
	return s == R5_OK ? R5_OK : r5_error_context(s, "--mask %s", spec);
}

int r5_cli_compare(int argc, char **argv)
{
	const char *paths[2] = {NULL, NULL};
	int n_paths = 0, scale = 0;
	const char *ref_var = NULL, *mask_spec = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--scale"))
			scale = 1;
		else if (!strcmp(argv[i], "--reference") && i + 1 < argc)
			ref_var = argv[++i];
		else if (!strcmp(argv[i], "--mask") && i + 1 < argc)
			mask_spec = argv[++i];
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			compare_usage();
			return 0;
		} else if (argv[i][0] == '-')
			return r5_cli_fail(2, "compare: unknown option '%s' (or its value is missing)", argv[i]);
		else if (n_paths < 2)
			paths[n_paths++] = argv[i];
		else
			return r5_cli_fail(2, "compare: more than two files");
	}
	if (n_paths != 2)
		return r5_cli_fail(2, "compare: usage: recon5t compare REF IMG [--scale] [--mask MASK]");
	const char *ref_vars[] = {"ground_truth", "images", NULL};
	if (ref_var)
		ref_vars[0] = ref_var, ref_vars[1] = NULL;
	static const char *const img_vars[] = {"images", "ground_truth", NULL};
	r5_array *ref = NULL, *img = NULL, *mask = NULL;
	r5_quality q;
	long mask_voxels = 0;
	r5_status s = r5_cli_read_image(paths[0], ref_vars, &ref);
	if (s == R5_OK)
		s = r5_cli_read_image(paths[1], img_vars, &img);
	if (s == R5_OK && mask_spec)
		s = read_mask(mask_spec, paths[0], &mask);
	if (s == R5_OK)
		s = mask ? compare_masked(ref, img, mask, mask_spec, scale, &q, &mask_voxels)
			 : r5_quality_compare_squeezed(ref, img, scale, 0, &q);
	if (s == R5_OK && mask)
		printf("nrmse=%.6f psnr=%.3f ssim=%.6f mask_voxels=%ld\n", q.nrmse, q.psnr, q.ssim, mask_voxels);
	else if (s == R5_OK)
		printf("nrmse=%.6f psnr=%.3f ssim=%.6f\n", q.nrmse, q.psnr, q.ssim);
	else
		fprintf(stderr, "recon5t compare: %s\n", r5_last_error());
	r5_array_free(ref);
	r5_array_free(img);
	r5_array_free(mask);
	return s == R5_OK ? 0 : 1;
}
