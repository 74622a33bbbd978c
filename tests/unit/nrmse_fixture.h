/* NRMSE of a float image against a float reference after the least-squares scale a that
 * minimises |a img - ref| (the scale comes back in *scale): for tests that compare raw magnitude
 * buffers (a wall's voxels gathered, a rss image) where recon/pipeline/quality.h's r5_array
 * interface would need a copy. */
#ifndef R5_TESTS_NRMSE_FIXTURE_H
#define R5_TESTS_NRMSE_FIXTURE_H

#include <math.h>

static double nrmse_scaled(const float *img, const float *ref, long n, double *scale)
{
	double num = 0, den = 0, err = 0, norm = 0;
	for (long i = 0; i < n; i++)
		num += (double)img[i] * ref[i], den += (double)img[i] * img[i];
	*scale = num / den;
	for (long i = 0; i < n; i++)
		err += pow(*scale * img[i] - ref[i], 2), norm += pow(ref[i], 2);
	return sqrt(err / norm);
}

#endif
