/* Black-blood vessel-wall phantom (recon5t phantom --kind vessel-wall): 3D arteries along z at
 * sub-millimetre resolution, the object the issue-13 compressed-sensing pipeline is judged on.
 *
 * Each artery is a set of coaxial and offset circular cylinders (shepp_logan.h shapes, so its
 * k-space is analytic like Shepp-Logan's): a lumen of radius R_l (blood suppressed, 0), a wall
 * of thickness t, and an eccentric plaque made by widening the outer wall boundary into a disc
 * of radius R_l + t + e whose centre is shifted by e towards the plaque direction; the wall is
 * then t thick on the far side and t + 2e on the plaque side:
 *     thickness(θ) = e cos θ + sqrt((R_l + t + e)² - e² sin² θ) - R_l
 * (θ from the plaque direction, in the axial plane). A plaque may hold a lipid core (a disc of
 * radius r_c, darker) under a fibrous cap (a ring of width c around it, brighter), the ring
 * touching the lumen on the plaque side: the cap is c thick between lumen and core.
 * Around the arteries: an ellipsoid of tissue (muscle-like). Tubes end inside the FOV (their
 * length is 0.6 of the FOV in z), flat-ended.
 *
 * Relative intensities (T1-weighted black-blood 3D TSE: wall/muscle ≈ 1.8, Saam et al.,
 * Radiology 244, 2007; lipid-rich necrotic core hypointense and fibrous cap hyperintense as on
 * PD/T2 weighting, Yuan et al., Circulation 104, 2001):
 *     lumen 0, tissue 0.45, wall 0.80, fibrous cap 1.00, lipid core 0.30.
 *
 * Default vessels (mm, image frame, relative to the volume centre; 0.5 mm voxels):
 *     carotid       centre (-8, -2), lumen 6 mm (R_l 3.0), wall 1.0, plaque e = 1.0 towards +x
 *                   (wall 1.0 .. 3.0 mm), cap 0.5, core radius 0.75;
 *     intracranial  centre (10, 5), lumen 3 mm (R_l 1.5), wall 0.5, plaque e = 0.25 towards +y
 *                   (wall 0.5 .. 1.0 mm), no core;
 *     carotid-thick centre (5, -11), lumen 5 mm (R_l 2.5), wall 1.0, e = 0.25 towards -y
 *                   (diffuse intimal thickening: wall 1.0 .. 1.5 mm all round), no core.
 * So walls of 0.5 .. 1.5 mm (and a 3 mm plaque) are present, 1 .. 1.5 mm over the whole
 * circumference of one vessel and a third of another's.
 *
 * The image frame (mm): voxel (i, j, k) of an [nx, ny, nz] image sits at ((i - nx/2) dx,
 * (j - ny/2) dy, (k - nz/2) dz), d = fov / matrix; the tubes run along +z over
 * |z| <= r5_vessel_wall_half_length_mm. phantom_write.c stores this geometry in the file
 * (r5_vessel_wall_geometry).
 */
#ifndef R5_PHANTOMS_VESSEL_WALL_H
#define R5_PHANTOMS_VESSEL_WALL_H

#include "../recon/core/status.h"
#include "shepp_logan.h"

#define R5_VESSEL_COUNT 3

typedef struct r5_vessel {
	const char *name;
	double centre_mm[2];      /* x, y (image frame) */
	double lumen_radius_mm;   /* R_l */
	double wall_mm;           /* t: the wall opposite the plaque */
	double plaque_shift_mm;   /* e: the plaque adds up to 2e; 0 = concentric */
	double plaque_angle_deg;  /* plaque direction in the x-y plane, from +x towards +y */
	double cap_mm;            /* fibrous cap width c */
	double core_radius_mm;    /* lipid core r_c; 0 = no core */
} r5_vessel;

typedef struct r5_vessel_wall_intensities {
	double lumen, tissue, wall, cap, core;
} r5_vessel_wall_intensities;

extern const r5_vessel r5_vessel_defaults[R5_VESSEL_COUNT];
extern const r5_vessel_wall_intensities r5_vessel_wall_contrast;

/* The tissue ellipsoid's semi-axes and the tubes' half length as fractions of half the FOV. */
#define R5_VESSEL_TISSUE_SEMI 0.92
#define R5_VESSEL_TUBE_HALF_LENGTH 0.6

/* The shape set for a FOV (mm): tissue first (the coil fit uses e[0]), then per vessel its
 * outer wall, lumen, cap and core. R5_EINVAL, naming the vessel, when one does not fit inside
 * the tissue for this FOV. */
r5_status r5_vessel_wall_make(const double fov_mm[3], r5_shape_set *out);

/* 1 when the point (mm, image frame) lies in a vessel wall (plaque included), else 0. */
int r5_vessel_wall_contains(const double fov_mm[3], const double r_mm[3]);

/* Wall mask [nx, ny, nz]: 1 where the voxel centre, (i - n/2) d, lies in a wall. */
void r5_vessel_wall_mask(const int matrix[3], const double fov_mm[3], float *out);

/* Half the tubes' length (mm): they span |z| <= this in the image frame. */
double r5_vessel_wall_half_length_mm(const double fov_mm[3]);

/* One vessel's geometry as stored in the phantom file (dataset "vessels", one row per vessel):
 * the centre line through centre_mm along axis (a unit vector), |s| <= half_length_mm along
 * it; the thinnest (t) and thickest (t + 2e) wall; the plaque's shift, direction, cap and core
 * as in r5_vessel. */
typedef struct r5_vessel_geometry {
	char name[24];
	double centre_mm[3], axis[3], half_length_mm;
	double lumen_radius_mm, wall_min_mm, wall_max_mm;
	double plaque_shift_mm, plaque_angle_deg, cap_mm, core_radius_mm;
} r5_vessel_geometry;

/* The geometry of default vessel `index` (0 .. R5_VESSEL_COUNT-1) for a FOV (mm). */
void r5_vessel_wall_geometry(const double fov_mm[3], int index, r5_vessel_geometry *out);

/* The wall thickness (mm) of vessel v in the axial plane at angle theta_deg from its plaque
 * direction (the formula above). */
double r5_vessel_wall_thickness(const r5_vessel *v, double theta_deg);

#endif
