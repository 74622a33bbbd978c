/* recon5t compare REF IMG [--scale] [--reference VAR] [--mask MASK]: one line
 * "nrmse=… psnr=… ssim=…" (quality.h). REF and IMG are .cfl files or ISMRMRD files; from an
 * ISMRMRD file REF is read from its "ground_truth" images (a phantom) and IMG from its
 * reconstructed "images", each falling back to the other variable (--reference VAR picks REF's
 * variable, e.g. "object"). --scale applies the least-squares magnitude scaling first.
 *
 * --mask restricts the figures to the voxels where a 0/1 mask is 1 (the vessel-wall phantom's
 * "wall_mask"; the masked definitions and their checks are r5_quality_compare_masked's, in
 * quality.h): the mask is read from a .cfl, from FILE.h5[:VAR] (VAR default wall_mask) or, a
 * bare name, from REF's ISMRMRD file. This file only reads the files and prints.
 *
 * Dynamic series (frames along dim 10, ISMRMRD's repetition: the dynamic phantom's truth, a
 * GRASP result): frame by frame by r5_quality_compare_series (quality.h), a table of the
 * frames' figures and then "mean over T frames: nrmse=… psnr=… ssim=…" (--scale: each frame's
 * own factor). One image against a reference of several frames is compared with the
 * reference's time average, and the line says so. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_util.h"
#include "recon/pipeline/quality.h"

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
	       "  the SSIM map of the whole x-y planes (11x11 Gaussian window) averaged over the mask.\n"
	       "Frames along dim 10 (repetition) in both: a table frame by frame, then the means;\n"
	       "one image against several reference frames: against their time average.\n");
}

/* MASK: a .cfl; FILE.h5[:VAR]; or a variable of REF's ISMRMRD file, checked against ref. */
static r5_status read_mask(const char *spec, const char *ref_path, const r5_array *ref, r5_array **out)
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
	if (s == R5_OK)
		s = r5_quality_check_mask(ref, *out, NULL);
	return s == R5_OK ? R5_OK : r5_error_context(s, "--mask %s", spec);
}

/* The mask's voxels equal to 1 (already checked: 0s and 1s). */
static long mask_ones(const r5_array *mask)
{
	long n = r5_array_size(mask), ones = 0;
	for (long i = 0; i < n; i++)
		ones += crealf(mask->data[i]) == 1;
	return ones;
}

/* One line for a single image; a table and the means for a series. */
static void print_series(const r5_quality_series *series, long ref_frames, const r5_array *mask)
{
	const r5_quality *m = &series->mean;
	char tail[96] = "";
	if (mask)
		snprintf(tail, sizeof tail, " mask_voxels=%ld", mask_ones(mask));
	if (series->n_frames == 1) {
		printf("nrmse=%.6f psnr=%.3f ssim=%.6f%s", m->nrmse, m->psnr, m->ssim, tail);
		if (series->truth_averaged)
			printf(" (against the time average of the reference's %ld frames)", ref_frames);
		printf("\n");
		return;
	}
	printf("%5s %10s %10s %10s\n", "frame", "nrmse", "psnr(dB)", "ssim");
	for (long t = 0; t < series->n_frames; t++) {
		const r5_quality *q = &series->frames[t];
		printf("%5ld %10.6f %10.3f %10.6f\n", t, q->nrmse, q->psnr, q->ssim);
	}
	printf("mean over %ld frames: nrmse=%.6f psnr=%.3f ssim=%.6f%s\n", series->n_frames, m->nrmse, m->psnr, m->ssim,
	       tail);
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
	r5_quality_series series = {0};
	r5_status s = r5_cli_read_image(paths[0], ref_vars, &ref);
	if (s == R5_OK)
		s = r5_cli_read_image(paths[1], img_vars, &img);
	if (s == R5_OK && mask_spec)
		s = read_mask(mask_spec, paths[0], ref, &mask);
	if (s == R5_OK)
		s = r5_quality_compare_series(ref, img, mask, scale, 0, &series);
	if (s == R5_OK)
		print_series(&series, ref->dims[R5_DIM_TIME], mask);
	else
		fprintf(stderr, "recon5t compare: %s\n", r5_last_error());
	r5_quality_series_free(&series);
	r5_array_free(ref);
	r5_array_free(img);
	r5_array_free(mask);
	return s == R5_OK ? 0 : 1;
}
