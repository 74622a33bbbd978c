/* SENSE g-factor maps (sense_gfactor.h): small Hermitian solves per aliased pixel group, on
 * the host in double (R <= 64 unknowns per group; a 256^2 image is 65536 / R groups). */
#include "sense_gfactor.h"

#include "../core/dense.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define R5_GF_MAX 64


/* [(L L^H)^-1]_pp = |L^-1 e_p|^2 */
static double inverse_diag(int m, const double complex *l, int p, double complex *y)
{
	double sum = 0;
	for (int i = 0; i < m; i++) {
		double complex v = i == p ? 1.0 : 0.0;
		for (int k = 0; k < i; k++)
			v -= l[i + k * m] * y[k];
		y[i] = v / l[i + i * m];
		sum += creal(y[i] * conj(y[i]));
	}
	return sum;
}

/* g of pixel idx[0] in its aliased group idx[0..r-1] (offsets into one coil's map plane). */
static float pixel_gfactor(const float complex *maps, long coil_stride, long C, const long *idx, int r)
{
	double complex ehe[R5_GF_MAX * R5_GF_MAX], y[R5_GF_MAX];
	long cols[R5_GF_MAX];
	int m = 0;
	double diag0 = 0;
	for (int i = 0; i < r; i++) {
		double norm = 0;
		for (long c = 0; c < C; c++) {
			float complex v = maps[idx[i] + c * coil_stride];
			norm += (double)(crealf(v) * crealf(v) + cimagf(v) * cimagf(v));
		}
		if (i == 0)
			diag0 = norm;
		if (norm > 0)
			cols[m++] = idx[i];
		else if (i == 0)
			return 0.0f;
	}
	for (int j = 0; j < m; j++)
		for (int i = j; i < m; i++) {
			double complex v = 0;
			for (long c = 0; c < C; c++)
				v += conj((double complex)maps[cols[i] + c * coil_stride]) * (double complex)maps[cols[j] + c * coil_stride];
			ehe[i + j * m] = conj(v);
			ehe[j + i * m] = v;
		}
	if (r5_dense_cholesky(m, ehe, 0, 1e-12) >= 0)
		return 0.0f;
	return (float)sqrt(inverse_diag(m, ehe, 0, y) * diag0);
}

r5_status r5_sense_gfactor(r5_ctx *ctx, const r5_array *maps, const int accel[2], r5_array *gfactor)
{
	return r5_sense_gfactor_checked(ctx, maps, accel, gfactor, NULL);
}

/* pixel (y, z) folds onto (y + round(jy ny / Ry), z + round(jz nz / Rz)) mod n: exact when R
 * divides n, the nearest-pixel approximation otherwise */
static void gfactor_pixels(const r5_array *maps, int ry, int rz, long p0, long p1, float complex *g)
{
	long nx = maps->dims[0], ny = maps->dims[1], nz = maps->dims[2], C = maps->dims[R5_DIM_COIL];
	long plane = nx * ny * nz;
#pragma omp parallel for
	for (long pixel = p0; pixel < p1; pixel++) {
		long x = pixel % nx, y = (pixel / nx) % ny, z = pixel / (nx * ny), idx[R5_GF_MAX];
		for (int jz = 0; jz < rz; jz++)
			for (int jy = 0; jy < ry; jy++) {
				long yy = (y + (long)floor((double)jy * ny / ry + 0.5)) % ny;
				long zz = (z + (long)floor((double)jz * nz / rz + 0.5)) % nz;
				idx[jy + ry * jz] = x + nx * (yy + ny * zz);
			}
		g[pixel] = pixel_gfactor(maps->data, plane, C, idx, ry * rz);
	}
}

r5_status r5_sense_gfactor_checked(r5_ctx *ctx, const r5_array *maps, const int accel[2], r5_array *gfactor,
				   const r5_progress *progress)
{
	long nx = maps->dims[0], ny = maps->dims[1], nz = maps->dims[2], C = maps->dims[R5_DIM_COIL];
	int ry = accel[0], rz = accel[1], r = ry * rz;
	if (ry < 1 || rz < 1 || r > R5_GF_MAX || ry > ny || rz > nz)
		return r5_set_error(R5_EINVAL, "SENSE g-factor: acceleration %dx%d on a %ldx%ld grid (at most %d in all)",
				    ry, rz, ny, nz, R5_GF_MAX);
	r5_array *host_maps = NULL, *host_g = NULL;
	R5_TRY(r5_array_to_host(ctx, maps, &host_maps));
	long gdims[R5_DIMS];
	r5_dims_ones(gdims);
	gdims[0] = nx;
	gdims[1] = ny;
	gdims[2] = nz;
	r5_status s = r5_array_zeros(NULL, R5_HOST, gdims, &host_g);
	long plane = nx * ny * nz;
	/* per pixel about R^2 C + R^3 multiply-adds */
	long chunk = progress ? R5_PROGRESS_CHUNK_MACS / (long)(r * r * (C + r)) : plane;
	chunk = chunk < 1 ? 1 : chunk;
	for (long p0 = 0; p0 < plane && s == R5_OK; p0 += chunk) {
		long p1 = p0 + chunk < plane ? p0 + chunk : plane;
		gfactor_pixels(host_maps, ry, rz, p0, p1, host_g->data);
		s = r5_progress_check(progress, "sense g-factor", (double)p1 / (double)plane);
	}
	if (s == R5_OK)
		s = r5_array_copy(ctx, gfactor, host_g);
	r5_array_free(host_maps);
	r5_array_free(host_g);
	return s;
}
