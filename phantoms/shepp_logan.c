/* Shepp-Logan ellipses/ellipsoids and their analytic Fourier transforms (see shepp_logan.h).
 * Unit disc: ∫ exp(-2πi q·u) du = J1(2π|q|)/|q|; unit ball: (sin t - t cos t)/(2π² |q|³) with
 * t = 2π|q|. An ellipsoid u = D⁻¹R(r - c) transforms as |D| exp(-2πi k·c) B(|D R k|). */
#define _XOPEN_SOURCE 700 /* j1() */
#include "shepp_logan.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

/* intensity, a, b, c, x0, y0, z0, phi, theta, psi (degrees) */
static const double shepp_logan_3d[10][10] = {
	{1.0, .6900, .920, .810, 0, 0, 0, 0, 0, 0},
	{-.8, .6624, .874, .780, 0, -.0184, 0, 0, 0, 0},
	{-.2, .1100, .310, .220, .22, 0, 0, -18, 0, 10},
	{-.2, .1600, .410, .280, -.22, 0, 0, 18, 0, 10},
	{.1, .2100, .250, .410, 0, .35, -.15, 0, 0, 0},
	{.1, .0460, .046, .050, 0, .1, .25, 0, 0, 0},
	{.1, .0460, .046, .050, 0, -.1, .25, 0, 0, 0},
	{.1, .0460, .023, .050, -.08, -.605, 0, 0, 0, 0},
	{.1, .0230, .023, .020, 0, -.606, 0, 0, 0, 0},
	{.1, .0230, .046, .020, .06, -.605, 0, 0, 0, 0},
};

/* Matlab phantom('Modified Shepp-Logan'): intensity, a, b, x0, y0, phi (degrees). */
static const double shepp_logan_2d[10][6] = {
	{1.0, .69, .92, 0, 0, 0},         {-.8, .6624, .8740, 0, -.0184, 0},
	{-.2, .1100, .3100, .22, 0, -18}, {-.2, .1600, .4100, -.22, 0, 18},
	{.1, .2100, .2500, 0, .35, 0},    {.1, .0460, .0460, 0, .1, 0},
	{.1, .0460, .0460, 0, -.1, 0},    {.1, .0460, .0230, -.08, -.605, 0},
	{.1, .0230, .0230, 0, -.606, 0},  {.1, .0230, .0460, .06, -.605, 0},
};

/* Euler rotation of Schabel's phantom3d (z-x-z), rows = ellipsoid axes. */
static void euler_rotation(double phi_deg, double theta_deg, double psi_deg, double r[3][3])
{
	double phi = phi_deg * PI / 180, theta = theta_deg * PI / 180, psi = psi_deg * PI / 180;
	double cphi = cos(phi), sphi = sin(phi), cth = cos(theta), sth = sin(theta);
	double cpsi = cos(psi), spsi = sin(psi);
	double m[3][3] = {
		{cpsi * cphi - cth * sphi * spsi, cpsi * sphi + cth * cphi * spsi, spsi * sth},
		{-spsi * cphi - cth * sphi * cpsi, -spsi * sphi + cth * cphi * cpsi, cpsi * sth},
		{sth * sphi, -sth * cphi, cth},
	};
	memcpy(r, m, sizeof m);
}

r5_status r5_shepp_logan_make(int three_d, const double fov_mm[3], r5_shape_set *out)
{
	if (!out || !fov_mm)
		return r5_set_error(R5_EINVAL, "shepp-logan: NULL argument");
	for (int d = 0; d < (three_d ? 3 : 2); d++)
		if (!(fov_mm[d] > 0))
			return r5_set_error(R5_EINVAL, "shepp-logan: FOV[%d] = %g mm must be positive", d, fov_mm[d]);
	memset(out, 0, sizeof *out);
	out->n = 10;
	out->three_d = three_d ? 1 : 0;
	for (int d = 0; d < 3; d++)
		out->half_fov_mm[d] = (fov_mm[d] > 0 ? fov_mm[d] : 1.0) / 2;
	for (int i = 0; i < 10; i++) {
		r5_ellipsoid *e = &out->e[i];
		if (three_d) {
			const double *t = shepp_logan_3d[i];
			e->intensity = t[0];
			e->semi[0] = t[1], e->semi[1] = t[2], e->semi[2] = t[3];
			e->centre[0] = t[4], e->centre[1] = t[5], e->centre[2] = t[6];
			euler_rotation(t[7], t[8], t[9], e->rot);
		} else {
			const double *t = shepp_logan_2d[i];
			e->intensity = t[0];
			e->semi[0] = t[1], e->semi[1] = t[2], e->semi[2] = 1;
			e->centre[0] = t[3], e->centre[1] = t[4];
			euler_rotation(t[5], 0, 0, e->rot);
		}
	}
	return R5_OK;
}

/* mm -> normalised object coordinates (y flipped for display). */
static void to_object(const r5_shape_set *s, const double r_mm[3], double u[3])
{
	u[0] = r_mm[0] / s->half_fov_mm[0];
	u[1] = -r_mm[1] / s->half_fov_mm[1];
	u[2] = s->three_d ? r_mm[2] / s->half_fov_mm[2] : 0;
}

double r5_shapes_value(const r5_shape_set *s, const double r_mm[3])
{
	double u[3], value = 0;
	int nd = s->three_d ? 3 : 2;
	to_object(s, r_mm, u);
	for (int i = 0; i < s->n; i++) {
		const r5_ellipsoid *e = &s->e[i];
		double d[3] = {u[0] - e->centre[0], u[1] - e->centre[1], u[2] - e->centre[2]}, q = 0, axial = 0;
		for (int a = 0; a < nd; a++) {
			double l = 0;
			for (int b = 0; b < nd; b++)
				l += e->rot[a][b] * d[b];
			l /= e->semi[a];
			if (e->cylinder && a == 2)
				axial = fabs(l);
			else
				q += l * l;
		}
		if (q <= 1.0 && axial <= 1.0)
			value += e->intensity;
	}
	return value;
}

/* Transform of the unit disc (2D) or unit ball (3D) at radius q (cycles per unit). */
static double unit_shape_ft(int three_d, double q)
{
	double t = 2 * PI * q;
	if (!three_d) {
		if (t < 1e-4)
			return PI * (1 - t * t / 8);
		return j1(t) / q;
	}
	if (t < 1e-3)
		return 4 * PI / 3 * (1 - t * t / 10);
	return (sin(t) - t * cos(t)) / (2 * PI * PI * q * q * q);
}

/* Transform of the unit cylinder {|u_12| <= 1, |u_3| <= 1} at local frequency l (cycles per
 * unit): the unit disc's times the unit interval's, sin(2π l_3)/(π l_3). */
static double unit_cylinder_ft(const double l[3])
{
	double t = 2 * PI * l[2];
	double axial = fabs(t) < 1e-4 ? 2 * (1 - t * t / 6) : 2 * sin(t) / t;
	return unit_shape_ft(0, sqrt(l[0] * l[0] + l[1] * l[1])) * axial;
}

double complex r5_shapes_ft(const r5_shape_set *s, const double k_per_mm[3])
{
	int nd = s->three_d ? 3 : 2;
	/* f(r) = g(S r), S = diag(1/hx, -1/hy, 1/hz): F_f(k) = |S⁻¹| F_g(S⁻ᵀ k) */
	double q[3] = {k_per_mm[0] * s->half_fov_mm[0], -k_per_mm[1] * s->half_fov_mm[1],
		       s->three_d ? k_per_mm[2] * s->half_fov_mm[2] : 0};
	double jacobian = s->half_fov_mm[0] * s->half_fov_mm[1] * (s->three_d ? s->half_fov_mm[2] : 1);
	double complex sum = 0;
	for (int i = 0; i < s->n; i++) {
		const r5_ellipsoid *e = &s->e[i];
		double radius2 = 0, volume = 1, phase = 0, local[3] = {0, 0, 0};
		for (int a = 0; a < nd; a++) {
			double l = 0;
			for (int b = 0; b < nd; b++)
				l += e->rot[a][b] * q[b];
			l *= e->semi[a];
			local[a] = l;
			radius2 += l * l;
			volume *= e->semi[a];
			phase += q[a] * e->centre[a];
		}
		double unit = s->three_d && e->cylinder ? unit_cylinder_ft(local) : unit_shape_ft(s->three_d, sqrt(radius2));
		double amplitude = e->intensity * volume * unit;
		sum += amplitude * (cos(2 * PI * phase) - I * sin(2 * PI * phase));
	}
	return sum * jacobian;
}

void r5_shapes_ft_row(const r5_shape_set *s, const double k0[3], const double dk[3], long n, double scale,
		      float complex *out, long stride)
{
	int nd = s->three_d ? 3 : 2;
	double flip[3] = {s->half_fov_mm[0], -s->half_fov_mm[1], s->three_d ? s->half_fov_mm[2] : 0};
	double jacobian = s->half_fov_mm[0] * s->half_fov_mm[1] * (s->three_d ? s->half_fov_mm[2] : 1);
	for (int i = 0; i < s->n; i++) {
		const r5_ellipsoid *e = &s->e[i];
		/* local frequency l(j) = l0 + j l1, phase(j) = p0 + j p1 (cycles) */
		double l0[3] = {0}, l1[3] = {0}, p0 = 0, p1 = 0, volume = 1;
		for (int a = 0; a < nd; a++) {
			for (int b = 0; b < nd; b++) {
				l0[a] += e->rot[a][b] * k0[b] * flip[b];
				l1[a] += e->rot[a][b] * dk[b] * flip[b];
			}
			l0[a] *= e->semi[a], l1[a] *= e->semi[a];
			volume *= e->semi[a];
			p0 += k0[a] * flip[a] * e->centre[a];
			p1 += dk[a] * flip[a] * e->centre[a];
		}
		double amplitude = e->intensity * volume * jacobian * scale;
		double complex rotor = cexp(-2 * PI * I * p1), phase = cexp(-2 * PI * I * p0);
		int cylinder = s->three_d && e->cylinder;
		for (long j = 0; j < n; j++) {
			double r2 = 0, l[3] = {0, 0, 0};
			for (int a = 0; a < nd; a++) {
				l[a] = l0[a] + j * l1[a];
				r2 += l[a] * l[a];
			}
			double unit = cylinder ? unit_cylinder_ft(l) : unit_shape_ft(s->three_d, sqrt(r2));
			out[j * stride] += (float complex)(amplitude * unit * phase);
			phase *= rotor;
			if ((j & 63) == 63) /* keep |phase| = 1 and the angle exact */
				phase = cexp(-2 * PI * I * (p0 + (j + 1) * p1));
		}
	}
}
