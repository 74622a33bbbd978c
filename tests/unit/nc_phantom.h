/* The small numerical phantom of the non-Cartesian SENSE/CS unit tests: two smooth-edged
 * ellipses (edges a few pixels wide: little energy beyond the radial disc |k| < N/2) with a smooth
 * phase, and four Gaussian coils normalised to sum |S|^2 = 1. Define N (the matrix) and COILS
 * before including; truth [N, N], maps [N, N, 1, COILS]. */
#ifndef R5_TESTS_NC_PHANTOM_H
#define R5_TESTS_NC_PHANTOM_H

#include <complex.h>
#include <math.h>

#include "recon/core/array.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static void phantom(r5_array *truth, r5_array *maps)
{
	for (int y = 0; y < N; y++)
		for (int x = 0; x < N; x++) {
			double u = (x - N / 2) / (0.36 * N), v = (y - N / 2) / (0.28 * N);
			double w = (x - N / 2 - 5) / (0.12 * N), z = (y - N / 2 + 3) / (0.1 * N);
			double m = 0.5 * (1 - tanh(6 * (sqrt(u * u + v * v) - 1))) +
				   0.3 * (1 - tanh(3 * (sqrt(w * w + z * z) - 1)));
			truth->data[y * N + x] = (float complex)(m * cexp(I * 0.02 * (x + y)));
			double sum = 0;
			double complex s[COILS];
			for (int c = 0; c < COILS; c++) {
				double cx = N / 2 + 0.6 * N * cos(M_PI / 2 * c), cy = N / 2 + 0.6 * N * sin(M_PI / 2 * c);
				double d2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (0.5 * N * N);
				s[c] = exp(-d2) * cexp(I * (0.7 * c + 0.03 * x));
				sum += creal(s[c] * conj(s[c]));
			}
			for (int c = 0; c < COILS; c++)
				maps->data[(long)c * N * N + y * N + x] = (float complex)(s[c] / sqrt(sum));
		}
}

#endif
