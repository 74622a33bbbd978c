/* Synthetic parallel-imaging data for the sense/espirit/coil tests: a smooth object (sum of
 * Gaussian blobs inside an ellipse-like support) times smooth complex coil sensitivities
 * (Gaussian profiles around the object with linear phase), normalised so sum_c |s_c|^2 = 1.
 *
 * The support is x^2/0.55 + y^2/0.75 + z^2/0.7 <= support (coordinates in FOV units, -0.5 ..
 * 0.5). SYNTH_SUPPORT_IN_FOV (0.25: |x| <= 0.37, |y| <= 0.43, |z| <= 0.42, >= 8 px margin at
 * 128) keeps the object inside the FOV, as a prescribed scan does. SYNTH_SUPPORT_OVERFILLS_FOV
 * (0.5: |x| <= 0.52, |y| <= 0.61) cuts the object at the FOV edges: in the periodic image the
 * object then runs across the wrap boundary while the coil profiles jump there, so near those
 * edges (and, undersampled, where they alias) two sensitivities share a pixel. That is the
 * "FOV smaller than the object" case of the ESPIRiT paper: one map cannot represent it (at
 * 128^2 the true maps lie 7.6% (relative norm) outside the first map and the second
 * eigenvalue is > 0.8 on a third of the object), two maps can (0.4%). */
#ifndef R5_TEST_SENSE_SYNTH_H
#define R5_TEST_SENSE_SYNTH_H

#include <complex.h>
#include <math.h>

#include "recon/core/array.h"
#include "recon/core/fft.h"

#define SYNTH_SUPPORT_IN_FOV 0.25
#define SYNTH_SUPPORT_OVERFILLS_FOV 0.5

static float complex synth_object(double x, double y, double z, double support)
{
	double r2 = x * x / 0.55 + y * y / 0.75 + z * z / 0.7;
	if (r2 > support)
		return 0;
	double v = 1.0 + 0.5 * exp(-((x - 0.15) * (x - 0.15) + y * y) / 0.01) - 0.4 * exp(-((x + 0.2) * (x + 0.2) + (y - 0.2) * (y - 0.2)) / 0.02);
	return (float complex)(v * cexp(I * 0.5 * x));
}

/* coil images [n, n, nz, coils] (host), maps [n, n, nz, coils] (host), object [n, n, nz] */
static void synth_make_support(long n, long nz, long coils, double support, r5_array **coil_images, r5_array **maps,
			       r5_array **object)
{
	long dims[R5_DIMS], odims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = dims[1] = n;
	dims[2] = nz;
	r5_dims_copy(odims, dims);
	dims[3] = coils;
	r5_array_alloc_host(dims, coil_images);
	r5_array_alloc_host(dims, maps);
	r5_array_alloc_host(odims, object);
	long npix = n * n * nz;
	for (long p = 0; p < npix; p++) {
		double x = (double)(p % n) / n - 0.5, y = (double)((p / n) % n) / n - 0.5;
		double z = nz > 1 ? (double)(p / (n * n)) / nz - 0.5 : 0;
		double norm = 0;
		for (long c = 0; c < coils; c++) {
			double ang = 2 * 3.14159265358979 * c / coils, cz = coils > 4 ? (c % 2 ? 0.3 : -0.3) : 0;
			double dx = x - 0.7 * cos(ang), dy = y - 0.7 * sin(ang), dz = nz > 1 ? z - cz : 0;
			double complex s = exp(-(dx * dx + dy * dy + dz * dz) / 0.35) * cexp(I * (ang + 1.5 * x * cos(ang) + 1.2 * y));
			(*maps)->data[p + npix * c] = (float complex)s;
			norm += creal(s * conj(s));
		}
		for (long c = 0; c < coils; c++)
			(*maps)->data[p + npix * c] /= (float)sqrt(norm);
		(*object)->data[p] = synth_object(x, y, z, support);
		for (long c = 0; c < coils; c++)
			(*coil_images)->data[p + npix * c] = (*maps)->data[p + npix * c] * (*object)->data[p];
	}
}

/* The object inside the FOV. */
static inline void synth_make(long n, long nz, long coils, r5_array **coil_images, r5_array **maps, r5_array **object)
{
	synth_make_support(n, nz, coils, SYNTH_SUPPORT_IN_FOV, coil_images, maps, object);
}

#endif
