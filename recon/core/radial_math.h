/* Per-element math of 2D radial trajectories: the angle steps, spoke angles and readout samples
 * of recon/linop/traj.h's 2D kinds, here so that traj.c and the scan builder (recon/io/scan.c,
 * which computes the trajectory an ISMRMRD header describes, spoke by spoke as they arrive)
 * compute the same numbers. Conventions are traj.h's (BART's): a spoke at angle a points along
 * (k0, k1) = (sin a, cos a); sample i of n_read sits at r_i = (i - n_read/2 + shift) dk,
 * dk = 2 kmax / n_read; the angle of spoke s is s psi reduced modulo 2 pi in double. */
#ifndef R5_CORE_RADIAL_MATH_H
#define R5_CORE_RADIAL_MATH_H

#include <math.h>

#include "hd.h"

#define R5_GOLDEN_RATIO 1.6180339887498948482 /* (1 + sqrt 5) / 2 */

/* pi / phi = 111.246 degrees (Winkelmann et al. 2007) */
R5_HD double r5_radial_golden_step(void) { return R5_PI / R5_GOLDEN_RATIO; }

/* pi / (phi + N - 1), N >= 1 (Wundrak et al. 2016); 0 for N < 1 */
R5_HD double r5_radial_tiny_golden_step(int tiny_index)
{
	return tiny_index >= 1 ? R5_PI / (R5_GOLDEN_RATIO + (double)tiny_index - 1.0) : 0.0;
}

/* s psi modulo 2 pi: exact enough in double for any s < 2^31 */
R5_HD double r5_radial_spoke_angle(double psi, long s) { return fmod((double)s * psi, 2.0 * R5_PI); }

/* One 2D spoke at angle a: 3 n_read floats (k0, k1, k2 = 0) per traj.h's layout. */
R5_HD void r5_radial_spoke_2d(long n_read, double kmax, double shift, double a, float *coords)
{
	const double dk = 2.0 * kmax / (double)n_read, dir[3] = {sin(a), cos(a), 0.0};
	for (long i = 0; i < n_read; i++) {
		double r = ((double)i - (double)n_read / 2.0 + shift) * dk;
		for (int d = 0; d < 3; d++)
			coords[3 * i + d] = (float)(r * dir[d]);
	}
}

#endif
