/* The vessel-wall phantom's shapes, wall mask and wall thickness (see vessel_wall.h). */
#include "vessel_wall.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PI 3.14159265358979323846

const r5_vessel r5_vessel_defaults[R5_VESSEL_COUNT] = {
	{"carotid", {-8, -2}, 3.0, 1.0, 1.0, 0, 0.5, 0.75},
	{"intracranial", {10, 5}, 1.5, 0.5, 0.25, 90, 0, 0},
	{"carotid-thick", {5, -11}, 2.5, 1.0, 0.25, -90, 0, 0},
};

const r5_vessel_wall_intensities r5_vessel_wall_contrast = {
	.lumen = 0, .tissue = 0.45, .wall = 0.80, .cap = 1.00, .core = 0.30,
};

/* Centre (mm) of a disc at distance `along` from the vessel axis towards the plaque. */
static void towards_plaque(const r5_vessel *v, double along, double out[2])
{
	double a = v->plaque_angle_deg * PI / 180;
	out[0] = v->centre_mm[0] + along * cos(a);
	out[1] = v->centre_mm[1] + along * sin(a);
}

/* A z-aligned circular cylinder of radius_mm at centre_mm, the tubes' length. */
static void add_tube(r5_shape_set *s, double intensity, const double centre_mm[2], double radius_mm)
{
	r5_ellipsoid *e = &s->e[s->n++];
	memset(e, 0, sizeof *e);
	e->intensity = intensity;
	e->cylinder = 1;
	e->centre[0] = centre_mm[0] / s->half_fov_mm[0];
	e->centre[1] = -centre_mm[1] / s->half_fov_mm[1]; /* shepp_logan.h: y flipped */
	e->semi[0] = radius_mm / s->half_fov_mm[0];
	e->semi[1] = radius_mm / s->half_fov_mm[1];
	e->semi[2] = R5_VESSEL_TUBE_HALF_LENGTH;
	for (int i = 0; i < 3; i++)
		e->rot[i][i] = 1;
}

static r5_status check_vessel(const r5_vessel *v, const double half[3])
{
	double outer = v->lumen_radius_mm + v->wall_mm + v->plaque_shift_mm;
	if (!(v->lumen_radius_mm > 0 && v->wall_mm > 0 && v->plaque_shift_mm >= 0 && v->cap_mm >= 0 &&
	      v->core_radius_mm >= 0))
		return r5_set_error(R5_EINVAL, "vessel-wall phantom: %s has a non-positive size", v->name);
	if (v->core_radius_mm > 0 &&
	    v->lumen_radius_mm + 2 * (v->cap_mm + v->core_radius_mm) > v->lumen_radius_mm + v->wall_mm + 2 * v->plaque_shift_mm)
		return r5_set_error(R5_EINVAL, "vessel-wall phantom: %s's core and cap (%g + %g mm) do not fit its plaque",
				    v->name, v->core_radius_mm, v->cap_mm);
	/* the farthest wall point, at the ends of the tube, inside the tissue ellipsoid */
	double reach = hypot(v->centre_mm[0], v->centre_mm[1]) + outer + v->plaque_shift_mm;
	double r = reach / (R5_VESSEL_TISSUE_SEMI * fmin(half[0], half[1]));
	double z = R5_VESSEL_TUBE_HALF_LENGTH / R5_VESSEL_TISSUE_SEMI;
	if (r * r + z * z > 1)
		return r5_set_error(R5_EINVAL,
				    "vessel-wall phantom: the %s (reaching %.2f mm from the centre) does not fit in the "
				    "tissue of a %g x %g x %g mm FOV",
				    v->name, reach, 2 * half[0], 2 * half[1], 2 * half[2]);
	return R5_OK;
}

r5_status r5_vessel_wall_make(const double fov_mm[3], r5_shape_set *out)
{
	if (!out || !fov_mm)
		return r5_set_error(R5_EINVAL, "vessel-wall phantom: NULL argument");
	for (int d = 0; d < 3; d++)
		if (!(fov_mm[d] > 0))
			return r5_set_error(R5_EINVAL, "vessel-wall phantom: FOV[%d] = %g mm must be positive", d, fov_mm[d]);
	memset(out, 0, sizeof *out);
	out->three_d = 1;
	for (int d = 0; d < 3; d++)
		out->half_fov_mm[d] = fov_mm[d] / 2;
	const r5_vessel_wall_intensities *c = &r5_vessel_wall_contrast;
	r5_ellipsoid *tissue = &out->e[out->n++];
	tissue->intensity = c->tissue;
	for (int i = 0; i < 3; i++)
		tissue->semi[i] = R5_VESSEL_TISSUE_SEMI, tissue->rot[i][i] = 1;
	for (int i = 0; i < R5_VESSEL_COUNT; i++) {
		const r5_vessel *v = &r5_vessel_defaults[i];
		R5_TRY(check_vessel(v, out->half_fov_mm));
		double centre[2];
		/* superposition: each shape adds the step from what lies under it */
		towards_plaque(v, v->plaque_shift_mm, centre);
		add_tube(out, c->wall - c->tissue, centre, v->lumen_radius_mm + v->wall_mm + v->plaque_shift_mm);
		add_tube(out, c->lumen - c->wall, v->centre_mm, v->lumen_radius_mm);
		if (v->core_radius_mm > 0) {
			towards_plaque(v, v->lumen_radius_mm + v->cap_mm + v->core_radius_mm, centre);
			add_tube(out, c->cap - c->wall, centre, v->cap_mm + v->core_radius_mm);
			add_tube(out, c->core - c->cap, centre, v->core_radius_mm);
		}
	}
	return R5_OK;
}

double r5_vessel_wall_half_length_mm(const double fov_mm[3])
{
	return R5_VESSEL_TUBE_HALF_LENGTH * fov_mm[2] / 2;
}

void r5_vessel_wall_geometry(const double fov_mm[3], int index, r5_vessel_geometry *out)
{
	const r5_vessel *v = &r5_vessel_defaults[index];
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", v->name);
	out->centre_mm[0] = v->centre_mm[0], out->centre_mm[1] = v->centre_mm[1];
	out->axis[2] = 1;
	out->half_length_mm = r5_vessel_wall_half_length_mm(fov_mm);
	out->lumen_radius_mm = v->lumen_radius_mm;
	out->wall_min_mm = v->wall_mm;
	out->wall_max_mm = v->wall_mm + 2 * v->plaque_shift_mm;
	out->plaque_shift_mm = v->plaque_shift_mm, out->plaque_angle_deg = v->plaque_angle_deg;
	out->cap_mm = v->cap_mm, out->core_radius_mm = v->core_radius_mm;
}

int r5_vessel_wall_contains(const double fov_mm[3], const double r_mm[3])
{
	if (fabs(r_mm[2]) > r5_vessel_wall_half_length_mm(fov_mm))
		return 0;
	for (int i = 0; i < R5_VESSEL_COUNT; i++) {
		const r5_vessel *v = &r5_vessel_defaults[i];
		double outer[2];
		towards_plaque(v, v->plaque_shift_mm, outer);
		double to_axis = hypot(r_mm[0] - v->centre_mm[0], r_mm[1] - v->centre_mm[1]);
		double to_outer = hypot(r_mm[0] - outer[0], r_mm[1] - outer[1]);
		if (to_axis > v->lumen_radius_mm && to_outer <= v->lumen_radius_mm + v->wall_mm + v->plaque_shift_mm)
			return 1;
	}
	return 0;
}

void r5_vessel_wall_mask(const int matrix[3], const double fov_mm[3], float *out)
{
	int nx = matrix[0], ny = matrix[1], nz = matrix[2];
	double d[3] = {fov_mm[0] / nx, fov_mm[1] / ny, fov_mm[2] / nz};
	for (int iz = 0; iz < nz; iz++)
		for (int iy = 0; iy < ny; iy++)
			for (int ix = 0; ix < nx; ix++) {
				double r[3] = {(ix - nx / 2) * d[0], (iy - ny / 2) * d[1], (iz - nz / 2) * d[2]};
				out[((long)iz * ny + iy) * nx + ix] = (float)r5_vessel_wall_contains(fov_mm, r);
			}
}

double r5_vessel_wall_thickness(const r5_vessel *v, double theta_deg)
{
	double t = theta_deg * PI / 180, e = v->plaque_shift_mm, outer = v->lumen_radius_mm + v->wall_mm + e;
	return e * cos(t) + sqrt(outer * outer - e * e * sin(t) * sin(t)) - v->lumen_radius_mm;
}
