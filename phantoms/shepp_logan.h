/* Shepp-Logan phantoms as sets of ellipses (2D) / ellipsoids (3D) with closed-form Fourier
 * transforms, so that k-space is computed from the continuous object and not from a sampled
 * image (no "inverse crime"; Guerquin-Kern et al., IEEE TMI 31(3), 2012).
 *
 * Intensities: the modified Shepp-Logan of Toft (1996), as in Matlab's phantom('Modified
 * Shepp-Logan') and BART's phantom; the 3D table is Schabel's phantom3d, with every ellipsoid's
 * centre given in object coordinates (rotation about the centre).
 *
 * The same shape sets hold the vessel-wall phantom (vessel_wall.h), whose tubes are elliptic
 * cylinders: unit cylinder transform J1(2π|q_12|)/|q_12| · sin(2π q_3)/(π q_3).
 *
 * Coordinates: millimetres in the image frame (x = readout, y = phase, z = partition), origin
 * at the voxel with index N/2. The table's normalised unit square [-1,1] spans the FOV; its y
 * axis is flipped so that an image shown with row 0 at the top looks like Matlab's. Fourier
 * convention: F(k) = ∫ f(r) exp(-2πi k·r) dr, k in cycles/mm. */
#ifndef R5_PHANTOMS_SHEPP_LOGAN_H
#define R5_PHANTOMS_SHEPP_LOGAN_H

#include <complex.h>

#include "../recon/core/status.h"

#define R5_SHAPES_MAX 16

typedef struct r5_ellipsoid {
	double intensity;
	int cylinder;       /* 0: ellipsoid; 1 (3D only): elliptic cylinder along its third axis,
			     * |u_3| <= 1, its ends flat (the vessel-wall phantom's tubes) */
	double centre[3];   /* normalised object coordinates */
	double semi[3];     /* semi-axes, normalised; semi[2] unused in 2D */
	double rot[3][3];   /* rows: the ellipsoid's axes in object coordinates */
} r5_ellipsoid;

typedef struct r5_shape_set {
	int n;
	int three_d;           /* 0: ellipses (a 2D object, constant along z) */
	double half_fov_mm[3]; /* scale from normalised to mm; the y axis is flipped */
	r5_ellipsoid e[R5_SHAPES_MAX];
} r5_shape_set;

/* three_d: 0 = 2D modified Shepp-Logan, 1 = 3D. fov_mm: the FOV the unit square spans. */
r5_status r5_shepp_logan_make(int three_d, const double fov_mm[3], r5_shape_set *out);

/* Intensity at a point (mm). In 2D r_mm[2] is ignored. */
double r5_shapes_value(const r5_shape_set *s, const double r_mm[3]);

/* Continuous Fourier transform at k (cycles/mm). In 2D k[2] is ignored and the result is the
 * 2D transform (units intensity·mm²); in 3D intensity·mm³. */
double complex r5_shapes_ft(const r5_shape_set *s, const double k_per_mm[3]);

/* A row of the transform: out[j] += scale · F(k0 + j·dk) for j < n (k in cycles/mm). The same
 * values as r5_shapes_ft, faster (the per-shape linear maps and the phase advance by
 * recurrence along the row). */
void r5_shapes_ft_row(const r5_shape_set *s, const double k0[3], const double dk[3], long n, double scale,
		      float complex *out, long stride);

#endif
