/* Simulated receive-coil sensitivities that keep k-space analytic: each coil's sensitivity is a
 * low-order Fourier series S_c(r) = Σ_t a_{c,t} exp(2πi m_t·r / P), so the k-space of the object
 * seen by coil c is Σ_t a_{c,t} F(k - m_t/P), a sum of shifted analytic spectra (Guerquin-Kern,
 * Lejeune, Pruessmann, Unser, "Realistic analytical phantoms for parallel magnetic resonance
 * imaging", IEEE TMI 31(3), 2012). The caller picks the period P (at least twice the object's
 * extent so that the series need not wrap around the object; a multiple of the FOV so that
 * every shift m/P lies on a grid the k-space table can hold, see spectrum.h).
 *
 * The coefficients are a least-squares fit, over the object's support, of loop coils placed on
 * a circle (2D) or on rings of a cylinder (3D) around the object: magnitude the on-axis
 * Biot-Savart falloff (a²/(a²+d²))^{3/2}, a phase that turns around the array and varies
 * across each coil. The targets are normalised to unit root-sum-of-squares before the fit, so
 * Σ_c |S_c|² ≈ 1 over the object and the rss image ≈ the phantom. */
#ifndef R5_PHANTOMS_COILS_H
#define R5_PHANTOMS_COILS_H

#include <complex.h>

#include "../recon/core/status.h"
#include "shepp_logan.h"

typedef struct r5_coil_model {
	int n_coils;
	int order[3];        /* m in [-order, order] per dimension; order[2] = 0 in 2D */
	int n_terms;         /* Π (2 order + 1) */
	int (*m)[3];         /* n_terms harmonic indices */
	double period_mm[3]; /* of the harmonics */
	double complex *coeff; /* n_coils x n_terms */
	double rss_min, rss_max; /* Σ|S_c|² range over the object support, after the fit */
} r5_coil_model;

/* Fits n_coils (1..128) sensitivities for the shape set's support (the outer ellipse(oid)
 * slightly enlarged). three_d: coils on rings along z and harmonics along z. period_mm >= FOV. */
r5_status r5_coils_make(int n_coils, int three_d, const double fov_mm[3], const double period_mm[3],
			const r5_shape_set *object, r5_coil_model *out);
void r5_coils_free(r5_coil_model *m); /* NULL and zeroed models are harmless */

/* One coil of sensitivity 1 everywhere (a body coil): the k-space is the object's own, so a
 * reconstruction can be checked against the truth to round-off. */
r5_status r5_coils_uniform(r5_coil_model *out);

/* The model a phantom's parameters ask for: uniform (n_coils must be 1) or r5_coils_make's. */
r5_status r5_coils_for(int uniform, int n_coils, int three_d, const double fov_mm[3], const double period_mm[3],
		       const r5_shape_set *object, r5_coil_model *out);

/* S_c(r) at a point (mm, image frame). */
double complex r5_coils_value(const r5_coil_model *m, int coil, const double r_mm[3]);

#endif
