/* Analytic coil k-space on the Cartesian grid (see spectrum.h). */
#include "spectrum.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void r5_spectrum_free(r5_spectrum *t)
{
	if (t) {
		free(t->F);
		t->F = NULL;
	}
}

void r5_spectrum_periods(const struct r5_phantom_params *p, double period_mm[3])
{
	int os = p->readout_oversampling;
	period_mm[0] = (os >= 2 ? os : 2) * p->fov_mm[0];
	period_mm[1] = 2 * p->fov_mm[1];
	period_mm[2] = 2 * p->fov_mm[2];
}

r5_status r5_spectrum_make(const struct r5_phantom_params *p, const r5_shape_set *object,
			   const r5_coil_model *coils, r5_spectrum *t)
{
	int three_d = r5_phantom_is_3d(p);
	memset(t, 0, sizeof *t);
	t->os = p->readout_oversampling;
	t->nxo = t->os * p->matrix[0];
	long n_samples[3] = {t->nxo, p->matrix[1], p->matrix[2]};
	double spacing[3] = {1.0 / (t->os * p->fov_mm[0]), 1.0 / p->fov_mm[1], 1.0 / p->fov_mm[2]};
	long n = 1;
	for (int d = 0; d < 3; d++) {
		int used = d < 2 || three_d;
		t->ref[d] = used ? lround(coils->period_mm[d] * spacing[d]) : 1;
		if (used && (t->ref[d] < 1 || fabs(coils->period_mm[d] * spacing[d] - t->ref[d]) > 1e-9))
			return r5_set_error(R5_EINTERNAL, "phantom: coil period %g mm is not a multiple of the grid in dim %d",
					    coils->period_mm[d], d);
		t->pad[d] = used ? coils->order[d] : 0;
		t->ext[d] = t->ref[d] * (n_samples[d] - 1) + 1 + 2 * t->pad[d];
		n *= t->ext[d];
	}
	t->F = malloc(sizeof *t->F * (size_t)n);
	if (!t->F)
		return r5_set_error(R5_ENOMEM, "phantom: spectrum table of %ld samples", n);
	double dx = p->fov_mm[0] / p->matrix[0], dy = p->fov_mm[1] / p->matrix[1], dz = p->fov_mm[2] / p->matrix[2];
	double n_grid = (double)t->nxo * p->matrix[1] * p->matrix[2];
	double scale = 1.0 / (dx * dy * (three_d ? dz : 1.0) * sqrt(n_grid));
	double centre[3];
	for (int d = 0; d < 3; d++)
		centre[d] = (double)(t->pad[d] + t->ref[d] * (n_samples[d] / 2));
	long rows = t->ext[1] * t->ext[2];
#pragma omp parallel for schedule(dynamic, 4)
	for (long row = 0; row < rows; row++) {
		long jy = row % t->ext[1], jz = row / t->ext[1];
		double k0[3] = {-centre[0] / coils->period_mm[0], (jy - centre[1]) / coils->period_mm[1],
				three_d ? (jz - centre[2]) / coils->period_mm[2] : 0};
		double dk[3] = {1.0 / coils->period_mm[0], 0, 0};
		float complex *out = t->F + row * t->ext[0];
		memset(out, 0, sizeof *out * (size_t)t->ext[0]);
		r5_shapes_ft_row(object, k0, dk, t->ext[0], scale, out, 1);
	}
	return R5_OK;
}

void r5_spectrum_line(const r5_spectrum *t, const r5_coil_model *coils, int iy, int iz, float complex *out)
{
	long rx = t->ref[0];
	for (int c = 0; c < coils->n_coils; c++) {
		float complex *line = out + (long)c * t->nxo;
		memset(line, 0, sizeof *line * (size_t)t->nxo);
		for (int term = 0; term < coils->n_terms; term++) {
			const int *m = coils->m[term];
			float complex a = (float complex)coils->coeff[(long)c * coils->n_terms + term];
			long jy = t->ref[1] * iy + t->pad[1] - m[1], jz = t->ref[2] * iz + t->pad[2] - m[2];
			const float complex *row = t->F + (jz * t->ext[1] + jy) * t->ext[0] + t->pad[0] - m[0];
			for (int x = 0; x < t->nxo; x++)
				line[x] += a * row[rx * x];
		}
	}
}
