/* The analytic k-space of a phantom seen by each coil, on the Cartesian sample grid.
 * Coil c at grid point k: Σ_t a_{c,t} F(k - m_t/P). F is evaluated once on a table with spacing
 * 1/P per dimension, which holds both the sample grid (every ref-th table point, ref = P times
 * the sample spacing) and every shifted point, extended by the largest shift; each coil line is
 * then a short weighted sum of shifted table rows — no trigonometry per coil. The period is
 * P = 2 FOV in y and z, and max(2, os) FOV_x in x, so that ref is 1 or 2.
 * Used by phantom.c and phantom_write.c. */
#ifndef R5_PHANTOMS_SPECTRUM_H
#define R5_PHANTOMS_SPECTRUM_H

#include "phantom.h"

typedef struct r5_spectrum {
	long ext[3], pad[3]; /* table size, padding per side (table points) */
	long ref[3];         /* table points per sample */
	int os, nxo;         /* readout oversampling, samples per readout */
	float complex *F;    /* ext[0] x ext[1] x ext[2], scaled k-space units (phantom.h) */
} r5_spectrum;

/* The coil-harmonic periods (mm) this module works with, for r5_coils_make. */
void r5_spectrum_periods(const struct r5_phantom_params *p, double period_mm[3]);
/* Evaluates the object's transform on the table (OpenMP over rows). */
r5_status r5_spectrum_make(const struct r5_phantom_params *p, const r5_shape_set *object,
			   const r5_coil_model *coils, r5_spectrum *t);
/* One phase-encode line (iy, iz) for every coil: out[c * nxo + x]. */
void r5_spectrum_line(const r5_spectrum *t, const r5_coil_model *coils, int iy, int iz, float complex *out);
void r5_spectrum_free(r5_spectrum *t); /* NULL harmless */

#endif
