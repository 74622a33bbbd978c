/* recon5t compare REF IMG [--scale]: one line "nrmse=… psnr=… ssim=…" (quality.h).
 * REF and IMG are .cfl files or ISMRMRD files; from an ISMRMRD file REF is read from its
 * "ground_truth" images (a phantom) and IMG from its reconstructed "images", each falling back
 * to the other variable (--reference VAR picks REF's variable, e.g. "object"). --scale applies
 * the least-squares magnitude scaling first. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "recon/pipeline/quality.h"

int r5_cli_compare(int argc, char **argv)
{
	const char *paths[2] = {NULL, NULL};
	int n_paths = 0, scale = 0;
	const char *ref_var = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--scale"))
			scale = 1;
		else if (!strcmp(argv[i], "--reference") && i + 1 < argc)
			ref_var = argv[++i];
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: recon5t compare REF IMG [--scale] [--reference ground_truth|object|VAR]\n"
			       "prints nrmse=... psnr=... ssim=... (magnitudes; --scale: least-squares scaling)\n"
			       "A phantom file holds two references: ground_truth, the object band-limited to the\n"
			       "encoded k-space (what an ideal reconstruction gives: the default), and object, the\n"
			       "object averaged over each voxel (adds the Gibbs ringing of any finite matrix).\n");
			return 0;
		} else if (argv[i][0] == '-')
			return r5_cli_fail(2, "compare: unknown option '%s'", argv[i]);
		else if (n_paths < 2)
			paths[n_paths++] = argv[i];
		else
			return r5_cli_fail(2, "compare: more than two files");
	}
	if (n_paths != 2)
		return r5_cli_fail(2, "compare: usage: recon5t compare REF IMG [--scale]");
	const char *ref_vars[] = {"ground_truth", "images", NULL};
	if (ref_var)
		ref_vars[0] = ref_var, ref_vars[1] = NULL;
	static const char *const img_vars[] = {"images", "ground_truth", NULL};
	r5_array *ref = NULL, *img = NULL;
	r5_quality q;
	r5_status s = r5_cli_read_image(paths[0], ref_vars, &ref);
	if (s == R5_OK)
		s = r5_cli_read_image(paths[1], img_vars, &img);
	if (s == R5_OK)
		s = r5_quality_compare_squeezed(ref, img, scale, 0, &q);
	if (s == R5_OK)
		printf("nrmse=%.6f psnr=%.3f ssim=%.6f\n", q.nrmse, q.psnr, q.ssim);
	else
		fprintf(stderr, "recon5t compare: %s\n", r5_last_error());
	r5_array_free(ref);
	r5_array_free(img);
	return s == R5_OK ? 0 : 1;
}
