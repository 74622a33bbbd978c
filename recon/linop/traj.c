/* Trajectories of traj.h: radial spokes (2D and 3D) in BART's layout and units. The angle of a
 * spoke is computed in double from its index (never accumulated), reduced modulo 2 pi, so that
 * spoke 10^6 of a golden-angle stream is as exact as spoke 1. */
#include "traj.h"

#include <math.h>

#include "../core/hd.h"
#include "../core/radial_math.h"

/* Chan et al. 2009: the 2D golden means (eigenvector of the generalised Fibonacci matrix) */
#define GOLDEN_MEAN_1 0.46557123187676802665
#define GOLDEN_MEAN_2 0.68232780382801932737

static int kind_is_2d(r5_traj_kind kind)
{
	return kind == R5_TRAJ_RADIAL_UNIFORM || kind == R5_TRAJ_RADIAL_UNIFORM_360 ||
	       kind == R5_TRAJ_RADIAL_GOLDEN || kind == R5_TRAJ_RADIAL_TINY_GOLDEN;
}

double r5_traj_angle_step(r5_traj_kind kind, int tiny_index, long n_spokes)
{
	switch (kind) {
	case R5_TRAJ_RADIAL_UNIFORM:
		return n_spokes > 0 ? R5_PI / (double)n_spokes : 0.0;
	case R5_TRAJ_RADIAL_UNIFORM_360:
		return n_spokes > 0 ? 2.0 * R5_PI / (double)n_spokes : 0.0;
	case R5_TRAJ_RADIAL_GOLDEN:
		return r5_radial_golden_step();
	case R5_TRAJ_RADIAL_TINY_GOLDEN:
		return r5_radial_tiny_golden_step(tiny_index);
	default:
		return 0.0;
	}
}

double r5_traj_spoke_angle(r5_traj_kind kind, int tiny_index, long n_spokes, long s)
{
	kind &= ~R5_TRAJ_SYMMETRIC;
	/* s psi exactly enough in double for any s < 2^31; fmod keeps the trigonometry in range */
	return r5_radial_spoke_angle(r5_traj_angle_step(kind, tiny_index, n_spokes), s);
}

/* unit direction of spoke s (counted from 0 at the trajectory's start) in (k0, k1, k2) */
static void spoke_direction(r5_traj_kind kind, int tiny_index, long n_spokes, long s, double dir[3])
{
	if (kind_is_2d(kind)) {
		double a = r5_traj_spoke_angle(kind, tiny_index, n_spokes, s);
		dir[0] = sin(a), dir[1] = cos(a), dir[2] = 0.0;
		return;
	}
	/* golden means */
	double z = fmod((double)s * GOLDEN_MEAN_1, 1.0);
	double az = 2.0 * R5_PI * fmod((double)s * GOLDEN_MEAN_2, 1.0);
	double rho = sqrt(1.0 - z * z);
	dir[0] = rho * cos(az), dir[1] = rho * sin(az), dir[2] = z;
}

/* BART's `traj -3 -r` (v0.8): the upper half of Saff and Kuijlaars' spiral of 2S points,
 * z_s = 1 - 2 s / (2 S - 1), azimuth accumulated by 3.6 / sqrt(2 S (1 - z_s^2)); the last spoke at
 * azimuth 0 (the spiral's end rule). *azimuth carries the sum from spoke to spoke. */
static void koosh_bart_direction(long n_spokes, long s, double *azimuth, double dir[3])
{
	double z = 1.0 - 2.0 * (double)s / (2.0 * (double)n_spokes - 1.0), rho = sqrt(fmax(0.0, 1.0 - z * z));
	if (s > 0)
		*azimuth = fmod(*azimuth + 3.6 / sqrt(2.0 * (double)n_spokes) / rho, 2.0 * R5_PI);
	double a = s == n_spokes - 1 && s > 0 ? 0.0 : *azimuth;
	dir[0] = sin(a) * rho, dir[1] = cos(a) * rho, dir[2] = z;
}

r5_status r5_traj_radial(r5_traj_kind kind, int tiny_index, long n_read, long n_spokes, long first_spoke,
			 double kmax, float *coords)
{
	int symmetric = (kind & R5_TRAJ_SYMMETRIC) != 0;
	kind &= ~R5_TRAJ_SYMMETRIC;
	if (!coords)
		return r5_set_error(R5_EINVAL, "radial trajectory: no output array");
	if (!kind_is_2d(kind) && kind != R5_TRAJ_KOOSH_BART && kind != R5_TRAJ_KOOSH_GOLDEN_MEANS)
		return r5_set_error(R5_EINVAL, "radial trajectory: unknown kind %d", (int)kind);
	if (n_read < 2 || n_spokes < 1 || first_spoke < 0)
		return r5_set_error(R5_EINVAL, "radial trajectory: %ld samples x %ld spokes from spoke %ld (need >= 2 "
				    "samples, >= 1 spoke, first spoke >= 0)", n_read, n_spokes, first_spoke);
	if (!(kmax > 0.0) || !isfinite(kmax))
		return r5_set_error(R5_EINVAL, "radial trajectory: kmax %g must be positive", kmax);
	if (kind == R5_TRAJ_RADIAL_TINY_GOLDEN && tiny_index < 1)
		return r5_set_error(R5_EINVAL, "radial trajectory: tiny golden angle index %d (need >= 1)", tiny_index);
	if (kind == R5_TRAJ_KOOSH_BART && first_spoke != 0)
		return r5_set_error(R5_EINVAL, "radial trajectory: the BART kooshball is one set of %ld spokes (first "
				    "spoke %ld, need 0)", n_spokes, first_spoke);
	double dk = 2.0 * kmax / (double)n_read, shift = symmetric ? 0.5 : 0.0, azimuth = 0.0;
	for (long s = 0; s < n_spokes; s++) {
		if (kind_is_2d(kind)) { /* radial_math.h: the scan builder's header trajectories use it too */
			r5_radial_spoke_2d(n_read, kmax, shift, r5_traj_spoke_angle(kind, tiny_index, n_spokes, s + first_spoke),
					   coords + 3 * n_read * s);
			continue;
		}
		double dir[3];
		if (kind == R5_TRAJ_KOOSH_BART)
			koosh_bart_direction(n_spokes, s, &azimuth, dir);
		else
			spoke_direction(kind, tiny_index, n_spokes, s + first_spoke, dir);
		float *spoke = coords + 3 * n_read * s;
		for (long i = 0; i < n_read; i++) {
			double r = ((double)i - (double)n_read / 2.0 + shift) * dk;
			for (int d = 0; d < 3; d++)
				spoke[3 * i + d] = (float)(r * dir[d]);
		}
	}
	return R5_OK;
}

r5_status r5_traj_spiral(long n_read, long n_interleaves, double kmax, double turns, double alpha, float *coords)
{
	if (!coords)
		return r5_set_error(R5_EINVAL, "spiral trajectory: no output array");
	if (n_read < 2 || n_interleaves < 1)
		return r5_set_error(R5_EINVAL, "spiral trajectory: %ld samples x %ld interleaves (need >= 2 x >= 1)",
				    n_read, n_interleaves);
	if (!(kmax > 0.0) || !isfinite(kmax) || !(turns > 0.0) || !isfinite(turns) || !(alpha >= 1.0 && alpha <= 4.0))
		return r5_set_error(R5_EINVAL, "spiral trajectory: kmax %g, turns %g, alpha %g (need kmax > 0, turns > 0, "
				    "alpha in [1, 4])", kmax, turns, alpha);
	for (long l = 0; l < n_interleaves; l++)
		for (long i = 0; i < n_read; i++) {
			double tau = (double)i / (double)n_read, r = kmax * pow(tau, alpha);
			double a = 2.0 * R5_PI * (turns * tau + (double)l / (double)n_interleaves);
			float *p = coords + 3 * (i + n_read * l);
			p[0] = (float)(r * cos(a)), p[1] = (float)(r * sin(a)), p[2] = 0.0f;
		}
	return R5_OK;
}

r5_status r5_traj_apply_delay(long n_read, long n_spokes, const float delay[3], int transverse, float *coords)
{
	if (!coords || !delay || n_read < 2 || n_spokes < 1)
		return r5_set_error(R5_EINVAL, "trajectory delay: %ld samples x %ld spokes (need >= 2 x >= 1, with "
				    "coordinates and a delay)", n_read, n_spokes);
	double sx = delay[0], sy = delay[1], sxy = delay[2];
	if (!isfinite(sx) || !isfinite(sy) || !isfinite(sxy))
		return r5_set_error(R5_EINVAL, "trajectory delay: delay (%g, %g, %g) is not finite", sx, sy, sxy);
	for (long s = 0; s < n_spokes; s++) {
		float *k = coords + 3 * n_read * s, *last = k + 3 * (n_read - 1);
		double d0 = (double)last[0] - k[0], d1 = (double)last[1] - k[1], len = hypot(d0, d1);
		if (!(len > 0.0) || !isfinite(len))
			return r5_set_error(R5_EINVAL, "trajectory delay: spoke %ld has no extent in (k0, k1)", s);
		double u0 = d0 / len, u1 = d1 / len, dk = len / (double)(n_read - 1);
		double m0 = sy * u0 + sxy * u1, m1 = sxy * u0 + sx * u1; /* M u */
		double proj = u0 * m0 + u1 * m1;
		double shift0 = dk * (transverse ? m0 : proj * u0), shift1 = dk * (transverse ? m1 : proj * u1);
		for (long i = 0; i < n_read; i++) {
			k[3 * i] = (float)(k[3 * i] + shift0);
			k[3 * i + 1] = (float)(k[3 * i + 1] + shift1);
		}
	}
	return R5_OK;
}
