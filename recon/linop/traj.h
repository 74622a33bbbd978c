/* Non-Cartesian k-space trajectories: 2D radial (uniform over 180 or 360 degrees, golden angle,
 * tiny golden angles), 3D radial "kooshball" (BART's `traj -3 -r` and the 3D golden means) and
 * variable-density spirals, written in BART's trajectory layout and units.
 *
 * Layout and units (recon/linop/nufft.h, the non-Cartesian data model): coords[3 (i + n_read s)
 * + d] = k_d of readout sample i of spoke s, in cycles per FOV (pixels of k-space of the
 * reconstruction matrix), so that a [3, n_read, n_spokes] float array of real parts is BART's
 * .cfl trajectory and r5_nufft_set_points takes it as it is. 2D trajectories write k2 = 0.
 *
 * Radial readout: sample i of a spoke sits at r_i = (i - n_read/2 + shift) * dk along the spoke's
 * direction, dk = 2 kmax / n_read (kmax = N/2 for an image of N and no readout oversampling,
 * then dk = 1; with 2x readout oversampling n_read = 2N and dk = 1/2). shift = 0 (the default
 * and the data model's contract: DC sampled at i = n_read/2, BART's `traj -r -c`) or 1/2 (BART's
 * plain `traj -r`: "symmetric", DC between samples n_read/2 - 1 and n_read/2) with
 * R5_TRAJ_SYMMETRIC. n_read/2 is a real division, as BART's (odd n_read: DC sampled only with
 * R5_TRAJ_SYMMETRIC).
 *
 * Directions (BART's, checked against bart traj in tests/unit/test_traj.c): a spoke at
 * angle a points along (k0, k1) = (sin a, cos a); spoke s (counted from first_spoke, so that
 * frame f of a golden-angle stream is first_spoke = f * frame_step) has a = (s + first_spoke) psi:
 *   R5_TRAJ_RADIAL_UNIFORM       psi = pi / n_spokes       (`bart traj -r`: [0, 180) degrees)
 *   R5_TRAJ_RADIAL_UNIFORM_360   psi = 2 pi / n_spokes     (`bart traj -r -D`: [0, 360); for an
 *                                odd count these are the 180-degree lines with every other one
 *                                reversed in direction, the "alternating" acquisition)
 *   R5_TRAJ_RADIAL_GOLDEN        psi = pi / phi = 111.246 degrees, phi = (1 + sqrt 5) / 2
 *                                (`bart traj -r -G`; Winkelmann et al., IEEE TMI 26:68, 2007)
 *   R5_TRAJ_RADIAL_TINY_GOLDEN   psi = pi / (phi + N - 1), N = tiny_index >= 1 (N = 1 is the
 *                                golden angle, N = 7 23.63 degrees; `bart traj -r -s N`;
 *                                Wundrak et al., MRM 75:2372, 2016)
 * BART's golden ratio is computed in double (sqrt(5)); BART 0.8's -G ignores -D (checked: the
 * same numbers), and so does this. Against `bart traj -x n_read -y n_spokes -r [-D] [-c]` with
 * kmax = n_read / 2 (max |difference| / kmax, test_traj): uniform 1.2e-7 (180) and 1.8e-7 (360);
 * golden 3.3e-6 for 55 spokes and 3.0e-5 for 377, tiny golden (N = 7, 200 spokes) 3.8e-6 — BART
 * rounds the unreduced angle s psi to float before its cosf/sinf (an error up to s psi 2^-24
 * rad), where this reduces (s + first_spoke) psi modulo 2 pi in double, so that late frames of
 * a stream keep their precision (BART has no first-spoke option). BART's 3D `-3 -r`: 2.2e-7.
 *
 * 3D radial (full-diameter spokes through the centre, k2 used; the image must be 3D):
 *   R5_TRAJ_KOOSH_BART           BART's `traj -3 -r` (v0.8.00): the upper half
 *                                of Saff and Kuijlaars' spiral of 2S points (Math Intelligencer
 *                                19:5, 1997): z_s = 1 - 2 s / (2 S - 1), azimuth a_s = a_(s-1) +
 *                                3.6 / sqrt(2 S (1 - z_s^2)), a_0 = 0 and (BART's end rule) the
 *                                last spoke at a = 0; direction (sin a rho, cos a rho, z),
 *                                rho = sqrt(1 - z^2). One set of S spokes (first_spoke 0); the
 *                                order sweeps from the pole to the equator, so no window of it is
 *                                a usable frame
 *   R5_TRAJ_KOOSH_GOLDEN_MEANS   Chan et al., MRM 61:354, 2009: the 2D golden means
 *                                g1 = 0.4656, g2 = 0.6823 (the Fibonacci-matrix eigenvector):
 *                                z_s = frac(s g1) in [0, 1) (a hemisphere: full spokes cover the
 *                                sphere), azimuth 2 pi frac(s g2); direction (sqrt(1 - z^2) cos,
 *                                sqrt(1 - z^2) sin, z) in (k0, k1, k2). Any window of consecutive
 *                                spokes is near-uniform (temporal resolution chosen afterwards).
 * tiny_index is ignored except for R5_TRAJ_RADIAL_TINY_GOLDEN. */
#ifndef R5_LINOP_TRAJ_H
#define R5_LINOP_TRAJ_H

#include "../core/status.h"

typedef enum {
	R5_TRAJ_RADIAL_UNIFORM,
	R5_TRAJ_RADIAL_GOLDEN,
	R5_TRAJ_RADIAL_TINY_GOLDEN,
	R5_TRAJ_RADIAL_UNIFORM_360,
	R5_TRAJ_KOOSH_BART,
	R5_TRAJ_KOOSH_GOLDEN_MEANS,
} r5_traj_kind;

/* Or'ed into kind: readout shifted by half a sample (BART's default `traj -r`, DC not sampled). */
#define R5_TRAJ_SYMMETRIC 0x100

/* The golden ratio phi and the 2D/3D angle increments (radians) of the kinds above; tiny_index
 * as r5_traj_radial. Returns 0 for kinds without a fixed increment (uniform: pi / n_spokes). */
double r5_traj_angle_step(r5_traj_kind kind, int tiny_index, long n_spokes);

/* Writes 3 x n_read x n_spokes floats (see the header paragraph). n_read >= 2, n_spokes >= 1,
 * first_spoke >= 0, kmax > 0; kind possibly | R5_TRAJ_SYMMETRIC. */
r5_status r5_traj_radial(r5_traj_kind kind, int tiny_index, long n_read, long n_spokes, long first_spoke,
			 double kmax, float *coords);

/* The spoke angle a (radians, BART's sense: direction (sin a, cos a)) of spoke s of a 2D radial
 * kind (the same rule r5_traj_radial uses; s counts from 0 at first_spoke 0). */
double r5_traj_spoke_angle(r5_traj_kind kind, int tiny_index, long n_spokes, long s);

/* Variable-density spiral, n_interleaves rotated copies (interleave l turned by 2 pi l / L):
 * sample i of interleave l at tau = i / n_read in [0, 1),
 *   k0 + i k1 = kmax tau^alpha exp(i (2 pi turns tau + 2 pi l / L)),
 * alpha = 1 the Archimedean spiral (uniform density: its turns are kmax / turns apart on each
 * interleave, kmax / (turns L) over all, so turns >= kmax / L meets Nyquist at 1 cycle/FOV),
 * alpha > 1 denser at the centre (variable density, Kim et al., MRM 50:214, 2003 in form; the
 * samples are uniform in tau, not a gradient-limited design). Layout [3, n_read, n_interleaves],
 * k2 = 0. n_read >= 2, n_interleaves >= 1, kmax > 0, turns > 0, alpha in [1, 4]. */
r5_status r5_traj_spiral(long n_read, long n_interleaves, double kmax, double turns, double alpha, float *coords);

/* Gradient delays applied to a radial trajectory in place (recon/calib/gradient_delay.h for the
 * model and the estimate): delay = (Sx, Sy, Sxy), readout samples, BART's `traj -q x:y:xy`
 * convention; each spoke's direction u and spacing dk come from its first and last samples;
 * transverse 0: k += dk (u^T M u) u (BART's default), 1: k += dk M u (`traj -q -O`), with
 * M = [[Sy, Sxy], [Sxy, Sx]] in (k0, k1). The result is where the scanner really sampled: grid
 * with it to correct the delay. 2D only (k2 untouched). */
r5_status r5_traj_apply_delay(long n_read, long n_spokes, const float delay[3], int transverse, float *coords);

#endif
