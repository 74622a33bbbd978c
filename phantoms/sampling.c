/* Cartesian sampling masks: full, uniform with a calibration block, variable-density Poisson
 * disc (3D) / variable-density random lines (2D). See sampling.h. */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"

const char *r5_sampling_name(r5_sampling kind)
{
	switch (kind) {
	case R5_SAMPLING_FULL: return "full";
	case R5_SAMPLING_UNIFORM: return "uniform";
	case R5_SAMPLING_POISSON: return "poisson";
	}
	return "?";
}

r5_status r5_sampling_parse(const char *name, r5_sampling *kind)
{
	for (int k = 0; k <= R5_SAMPLING_POISSON; k++)
		if (name && !strcmp(name, r5_sampling_name((r5_sampling)k))) {
			*kind = (r5_sampling)k;
			return R5_OK;
		}
	return r5_set_error(R5_EINVAL, "sampling '%s' is not one of full, uniform, poisson", name ? name : "(null)");
}

static int in_calib(int i, int n, int calib)
{
	int width = calib < n ? calib : n, start = n / 2 - width / 2;
	return i >= start && i < start + width;
}

static int on_grid(int i, int n, int r)
{
	int offset = i - n / 2;
	return ((offset % r) + r) % r == 0;
}

/* Bridson dart throwing on the integer grid; radius(p) = r0 (1 + 1.5 ρ(p)), ρ = 0 at the centre
 * and 1 at the edge midpoints. Returns the count of points marked (mask bit IMAGING). */
static double vd_radius(double r0, int iy, int iz, int ny, int nz)
{
	double dy = (iy - ny / 2) / (ny / 2.0), dz = nz > 1 ? (iz - nz / 2) / (nz / 2.0) : 0;
	return r0 * (1 + 1.5 * sqrt(dy * dy + dz * dz));
}

static int far_enough(const unsigned char *mask, int ny, int nz, int y, int z, double r)
{
	int reach = (int)ceil(r);
	for (int dz = -reach; dz <= reach; dz++)
		for (int dy = -reach; dy <= reach; dy++) {
			int yy = y + dy, zz = z + dz;
			if (yy < 0 || zz < 0 || yy >= ny || zz >= nz || !(mask[yy + (long)ny * zz] & R5_MASK_IMAGING))
				continue;
			if (dy * dy + dz * dz < r * r)
				return 0;
		}
	return 1;
}

static long poisson_disc(int ny, int nz, double r0, uint64_t seed, unsigned char *mask, int *active)
{
	r5_rng rng;
	r5_rng_seed(&rng, seed, 0x5a3e1eULL);
	memset(mask, 0, (size_t)ny * nz);
	long n_active = 0, count = 1;
	int start = ny / 2 + ny * (nz / 2);
	mask[start] = R5_MASK_IMAGING;
	active[n_active++] = start;
	while (n_active > 0) {
		long pick = (long)(r5_rng_uniform(&rng) * n_active);
		int y = active[pick] % ny, z = active[pick] / ny, placed = 0;
		double r = vd_radius(r0, y, z, ny, nz);
		for (int attempt = 0; attempt < 30 && !placed; attempt++) {
			/* a point of the annulus r <= d < 2r, drawn by rejection from its bounding square:
			 * only +, *, sqrt and comparisons, all exact in IEEE arithmetic, so a seed gives the
			 * same mask on every machine (sin/cos differ between libms in the last bit) */
			double oy, oz, d2;
			do {
				oy = r * (4 * r5_rng_uniform(&rng) - 2), oz = r * (4 * r5_rng_uniform(&rng) - 2);
				d2 = oy * oy + oz * oz;
			} while (d2 < r * r || d2 >= 4 * r * r);
			int cy = (int)lround(y + oy), cz = (int)lround(z + oz);
			if (cy < 0 || cz < 0 || cy >= ny || cz >= nz || mask[cy + (long)ny * cz])
				continue;
			if (!far_enough(mask, ny, nz, cy, cz, vd_radius(r0, cy, cz, ny, nz)))
				continue;
			mask[cy + (long)ny * cz] = R5_MASK_IMAGING;
			active[n_active++] = cy + ny * cz;
			count++, placed = 1;
		}
		if (!placed)
			active[pick] = active[--n_active];
	}
	return count;
}

static long add_calib(int ny, int nz, int calib, unsigned char *mask)
{
	long count = 0;
	for (int z = 0; z < nz; z++)
		for (int y = 0; y < ny; y++) {
			unsigned char *m = &mask[y + (long)ny * z];
			if (calib > 0 && in_calib(y, ny, calib) && (nz == 1 || in_calib(z, nz, calib)))
				*m |= R5_MASK_CALIB | R5_MASK_IMAGING;
			count += *m != 0;
		}
	return count;
}

static r5_status poisson_mask(int ny, int nz, double accel, int calib, uint64_t seed, unsigned char *mask,
			      long *n_sampled)
{
	long target = lround((double)ny * nz / accel), best_error = -1;
	int *active = malloc(sizeof *active * (size_t)ny * nz);
	unsigned char *trial = malloc((size_t)ny * nz);
	if (!active || !trial) {
		free(active), free(trial);
		return r5_set_error(R5_ENOMEM, "poisson mask %d x %d", ny, nz);
	}
	double lo = 0.2, hi = 0.5 * (ny > nz ? ny : nz);
	for (int iter = 0; iter < 40; iter++) {
		double r0 = sqrt(lo * hi);
		poisson_disc(ny, nz, r0, seed, trial, active);
		long count = add_calib(ny, nz, calib, trial);
		if (best_error < 0 || labs(count - target) < best_error) {
			best_error = labs(count - target);
			memcpy(mask, trial, (size_t)ny * nz);
			*n_sampled = count;
		}
		if (best_error <= target / 1000)
			break; /* within 0.1 %: more bisection steps buy nothing the caller can see */
		if (count > target)
			lo = r0;
		else
			hi = r0;
	}
	free(active), free(trial);
	return R5_OK;
}

/* 2D: independent lines with probability min(1, s w(ky)), s bisected to the exact count. */
static void random_lines(int ny, double accel, int calib, uint64_t seed, unsigned char *mask, long *n_sampled)
{
	long target = lround(ny / accel);
	double lo = 0, hi = 1e3;
	for (int iter = 0; iter < 60; iter++) {
		double s = 0.5 * (lo + hi);
		r5_rng rng;
		r5_rng_seed(&rng, seed, 0x11e5);
		memset(mask, 0, (size_t)ny);
		for (int y = 0; y < ny; y++) {
			double w = fmax(1 - fabs((double)(y - ny / 2)) / (ny / 2.0), 0.0);
			if (r5_rng_uniform(&rng) < s * (w * w + 0.02))
				mask[y] = R5_MASK_IMAGING;
		}
		*n_sampled = add_calib(ny, 1, calib, mask);
		if (*n_sampled == target)
			break;
		if (*n_sampled > target)
			hi = s;
		else
			lo = s;
	}
}

r5_status r5_sampling_poisson(int ny, int nz, double accel, int calib, uint64_t seed, unsigned char *mask,
			      long *n_sampled)
{
	if (!mask || !n_sampled)
		return r5_set_error(R5_EINVAL, "poisson mask: no output");
	*n_sampled = 0;
	if (ny < 1 || nz < 1 || (long)ny * nz > (1L << 26))
		return r5_set_error(R5_EINVAL, "poisson mask: matrix %d x %d is empty or over 2^26 points", ny, nz);
	if (!(accel >= 1) || accel > (double)ny * nz)
		return r5_set_error(R5_EINVAL, "poisson mask: acceleration %g is not in [1, %ld] (matrix %d x %d)", accel,
				    (long)ny * nz, ny, nz);
	if (calib < 0 || calib > ny || (nz > 1 && calib > nz))
		return r5_set_error(R5_EINVAL, "poisson mask: calibration %d x %d does not fit the %d x %d matrix", calib,
				    nz > 1 ? calib : 1, ny, nz);
	long calib_points = (long)calib * (nz > 1 ? calib : 1);
	if (calib_points > lround((double)ny * nz / accel))
		return r5_set_error(R5_EINVAL,
				    "poisson mask: the %d x %d calibration region alone (%ld points) is more than %d x %d at "
				    "R = %g allows (%ld)",
				    calib, nz > 1 ? calib : 1, calib_points, ny, nz, accel, lround((double)ny * nz / accel));
	if (nz == 1) {
		random_lines(ny, accel, calib, seed, mask, n_sampled);
		return R5_OK;
	}
	return poisson_mask(ny, nz, accel, calib, seed, mask, n_sampled);
}

r5_status r5_sampling_mask(r5_sampling kind, int ny, int nz, const int accel[2], int calib, uint64_t seed,
			   unsigned char *mask, long *n_sampled)
{
	if (ny < 1 || nz < 1 || !mask || !n_sampled || !accel)
		return r5_set_error(R5_EINVAL, "sampling mask: bad arguments (matrix %d x %d)", ny, nz);
	if (accel[0] < 1 || accel[1] < 1 || accel[0] > ny || accel[1] > nz)
		return r5_set_error(R5_EINVAL, "sampling mask: acceleration %d x %d does not fit a %d x %d matrix",
				    accel[0], accel[1], ny, nz);
	if (calib < 0)
		return r5_set_error(R5_EINVAL, "sampling mask: calibration width %d is negative", calib);
	*n_sampled = 0;
	switch (kind) {
	case R5_SAMPLING_FULL:
		memset(mask, R5_MASK_IMAGING, (size_t)ny * nz);
		*n_sampled = (long)ny * nz;
		return R5_OK;
	case R5_SAMPLING_UNIFORM:
		for (int z = 0; z < nz; z++)
			for (int y = 0; y < ny; y++)
				mask[y + (long)ny * z] = on_grid(y, ny, accel[0]) && on_grid(z, nz, accel[1]) ? R5_MASK_IMAGING : 0;
		for (int z = 0; z < nz; z++)
			for (int y = 0; y < ny; y++)
				if (calib > 0 && in_calib(y, ny, calib) && (nz == 1 || in_calib(z, nz, calib)))
					mask[y + (long)ny * z] |= R5_MASK_CALIB;
		for (long i = 0; i < (long)ny * nz; i++)
			*n_sampled += mask[i] != 0;
		return R5_OK;
	case R5_SAMPLING_POISSON:
		if (nz == 1) {
			random_lines(ny, (double)accel[0] * accel[1], calib, seed, mask, n_sampled);
			return R5_OK;
		}
		return poisson_mask(ny, nz, (double)accel[0] * accel[1], calib, seed, mask, n_sampled);
	}
	return r5_set_error(R5_EINVAL, "sampling mask: unknown kind %d", (int)kind);
}
