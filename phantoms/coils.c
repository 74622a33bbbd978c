/* Coil sensitivities as low-order Fourier series fitted to loop coils around the object
 * (see coils.h). The fit is a small regularised least-squares problem (normal equations,
 * Cholesky) shared by all coils; two passes re-normalise the targets by the fitted rss so that
 * Σ|S_c|² stays close to 1 over the object. */
#include "coils.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"

#define PI 3.14159265358979323846

void r5_coils_free(r5_coil_model *m)
{
	if (!m)
		return;
	free(m->m);
	free(m->coeff);
	m->m = NULL;
	m->coeff = NULL;
}

r5_status r5_coils_uniform(r5_coil_model *out)
{
	memset(out, 0, sizeof *out);
	out->n_coils = out->n_terms = 1;
	out->m = calloc(1, sizeof *out->m);
	out->coeff = malloc(sizeof *out->coeff);
	if (!out->m || !out->coeff) {
		r5_coils_free(out);
		return r5_set_error(R5_ENOMEM, "coils: uniform coil");
	}
	out->coeff[0] = 1;
	for (int d = 0; d < 3; d++)
		out->period_mm[d] = 1;
	out->rss_min = out->rss_max = 1;
	return R5_OK;
}

r5_status r5_coils_for(int uniform, int n_coils, int three_d, const double fov_mm[3], const double period_mm[3],
		       const r5_shape_set *object, r5_coil_model *out)
{
	if (!uniform)
		return r5_coils_make(n_coils, three_d, fov_mm, period_mm, object, out);
	if (n_coils != 1)
		return r5_set_error(R5_EINVAL, "coils: a uniform coil is one coil, not %d", n_coils);
	R5_TRY(r5_coils_uniform(out));
	for (int d = 0; d < 3; d++) /* the k-space table wants the period it was given (spectrum.h) */
		out->period_mm[d] = period_mm[d];
	return R5_OK;
}

double complex r5_coils_value(const r5_coil_model *m, int coil, const double r_mm[3])
{
	double complex s = 0;
	for (int t = 0; t < m->n_terms; t++) {
		double phase = 0;
		for (int d = 0; d < 3; d++)
			phase += m->m[t][d] * r_mm[d] / m->period_mm[d];
		s += m->coeff[(long)coil * m->n_terms + t] * cexp(2 * PI * I * phase);
	}
	return s;
}

/* Coil array layout: rings along z (3D), coils evenly around each ring. */
static void coil_layout(int n_coils, int three_d, int *rings)
{
	*rings = 1;
	if (!three_d)
		return;
	for (int r = 4; r >= 2; r--)
		if (n_coils % r == 0 && n_coils / r >= 4) {
			*rings = r;
			return;
		}
}

/* The physical model: loop coil c of the array evaluated at r (mm). */
static double complex coil_target(int c, int n_coils, int three_d, const double half[3], const double r[3])
{
	int rings;
	coil_layout(n_coils, three_d, &rings);
	int per_ring = n_coils / rings, ring = c / per_ring, k = c % per_ring;
	double theta = 2 * PI * (k + 0.5 * (ring % 2)) / per_ring;
	double centre[3] = {1.2 * half[0] * cos(theta), 1.3 * half[1] * sin(theta), 0};
	if (three_d)
		centre[2] = rings > 1 ? half[2] * 0.9 * (2.0 * ring / (rings - 1) - 1) : 0;
	double loop_radius = 1.0 * fmin(half[0], half[1]);
	double d2 = 0, along = 0, tangent[3] = {-sin(theta), cos(theta), 0};
	for (int i = 0; i < (three_d ? 3 : 2); i++) {
		d2 += (r[i] - centre[i]) * (r[i] - centre[i]);
		along += (r[i] - centre[i]) * tangent[i];
	}
	double a2 = loop_radius * loop_radius;
	double magnitude = pow(a2 / (a2 + d2), 1.5);
	double phase = 2 * PI * c / n_coils + 0.5 * PI * along / half[1];
	return magnitude * cexp(I * phase);
}

/* Fit points: a grid over the FOV kept where the enlarged outer ellipse(oid) covers it. */
static long fit_points(const r5_shape_set *object, int three_d, const double half[3], double (**points)[3])
{
	int n = three_d ? 24 : 64, nz = three_d ? n : 1; /* grid over the FOV */
	const r5_ellipsoid *outer = &object->e[0];
	*points = malloc(sizeof **points * (size_t)n * n * nz);
	if (!*points)
		return -1;
	long count = 0;
	for (int iz = 0; iz < nz; iz++)
		for (int iy = 0; iy < n; iy++)
			for (int ix = 0; ix < n; ix++) {
				double u[3] = {-1 + (ix + 0.5) * 2.0 / n, -1 + (iy + 0.5) * 2.0 / n,
					       three_d ? -1 + (iz + 0.5) * 2.0 / nz : 0};
				double q = 0;
				for (int d = 0; d < (three_d ? 3 : 2); d++)
					q += pow(u[d] / (1.1 * outer->semi[d]), 2);
				if (q > 1)
					continue;
				double *r = (*points)[count++];
				r[0] = u[0] * half[0], r[1] = -u[1] * half[1], r[2] = u[2] * half[2];
			}
	return count;
}

static r5_status fit_coefficients(r5_coil_model *m, int three_d, const double half[3], double (*points)[3],
				  long n_points)
{
	int T = m->n_terms, C = m->n_coils;
	double complex *basis = malloc(sizeof *basis * (size_t)n_points * T);
	double complex *gram = calloc((size_t)T * T, sizeof *gram), *lower = malloc(sizeof *lower * (size_t)T * T);
	double complex *target = malloc(sizeof *target * (size_t)n_points * C);
	double complex *rhs = malloc(sizeof *rhs * (size_t)T * C);
	r5_status status = R5_OK;
	if (!basis || !gram || !lower || !target || !rhs) {
		status = r5_set_error(R5_ENOMEM, "coil fit: %d terms x %ld points", T, n_points);
		goto done;
	}
	for (long p = 0; p < n_points; p++) {
		double rss = 0;
		for (int c = 0; c < C; c++) {
			target[p * C + c] = coil_target(c, C, three_d, half, points[p]);
			rss += pow(cabs(target[p * C + c]), 2);
		}
		for (int c = 0; c < C; c++)
			target[p * C + c] /= sqrt(rss);
		for (int t = 0; t < T; t++) {
			double phase = 0;
			for (int d = 0; d < 3; d++)
				phase += m->m[t][d] * points[p][d] / m->period_mm[d];
			basis[p * T + t] = cexp(2 * PI * I * phase);
		}
	}
	for (long p = 0; p < n_points; p++)
		for (int a = 0; a < T; a++)
			for (int b = 0; b < T; b++)
				gram[a * T + b] += conj(basis[p * T + a]) * basis[p * T + b];
	double trace = 0;
	for (int a = 0; a < T; a++)
		trace += creal(gram[a * T + a]);
	for (int a = 0; a < T; a++)
		gram[a * T + a] += 1e-6 * trace / T;
	if ((status = r5_cholesky(T, gram, lower)) != R5_OK)
		goto done;
	for (int pass = 0; pass < 3; pass++) {
		memset(rhs, 0, sizeof *rhs * (size_t)T * C);
		for (long p = 0; p < n_points; p++)
			for (int t = 0; t < T; t++)
				for (int c = 0; c < C; c++)
					rhs[t * C + c] += conj(basis[p * T + t]) * target[p * C + c];
		r5_cholesky_solve(T, lower, C, rhs);
		m->rss_min = INFINITY, m->rss_max = 0;
		for (long p = 0; p < n_points; p++) { /* fitted Σ|S|², and re-normalised targets */
			double sum = 0;
			for (int c = 0; c < C; c++) {
				double complex s = 0;
				for (int t = 0; t < T; t++)
					s += rhs[t * C + c] * basis[p * T + t];
				sum += pow(cabs(s), 2);
			}
			m->rss_min = fmin(m->rss_min, sum), m->rss_max = fmax(m->rss_max, sum);
			for (int c = 0; c < C; c++)
				target[p * C + c] /= sqrt(sqrt(sum));
		}
		for (int c = 0; c < C; c++)
			for (int t = 0; t < T; t++)
				m->coeff[(long)c * T + t] = rhs[t * C + c];
	}
done:
	free(basis), free(gram), free(lower), free(target), free(rhs);
	return status;
}

r5_status r5_coils_make(int n_coils, int three_d, const double fov_mm[3], const double period_mm[3],
			const r5_shape_set *object, r5_coil_model *out)
{
	if (!out || !fov_mm || !period_mm || !object)
		return r5_set_error(R5_EINVAL, "coils: NULL argument");
	memset(out, 0, sizeof *out);
	if (n_coils < 1 || n_coils > 128)
		return r5_set_error(R5_EINVAL, "coils: %d coils (1..128 supported)", n_coils);
	double half[3] = {fov_mm[0] / 2, fov_mm[1] / 2, three_d ? fov_mm[2] / 2 : 1};
	out->n_coils = n_coils;
	out->order[0] = 2, out->order[1] = 2, out->order[2] = three_d ? 1 : 0;
	out->n_terms = (2 * out->order[0] + 1) * (2 * out->order[1] + 1) * (2 * out->order[2] + 1);
	for (int d = 0; d < 3; d++) {
		out->period_mm[d] = period_mm[d];
		if (d < (three_d ? 3 : 2) && !(period_mm[d] >= 2 * half[d]))
			return r5_set_error(R5_EINVAL, "coils: period %g mm shorter than the FOV %g mm", period_mm[d],
					    2 * half[d]);
	}
	out->m = malloc(sizeof *out->m * (size_t)out->n_terms);
	out->coeff = calloc((size_t)n_coils * out->n_terms, sizeof *out->coeff);
	double(*points)[3] = NULL;
	long n_points = fit_points(object, three_d, half, &points);
	if (!out->m || !out->coeff || n_points < 0) {
		free(points);
		r5_coils_free(out);
		return r5_set_error(R5_ENOMEM, "coils: %d coils", n_coils);
	}
	int t = 0;
	for (int mz = -out->order[2]; mz <= out->order[2]; mz++)
		for (int my = -out->order[1]; my <= out->order[1]; my++)
			for (int mx = -out->order[0]; mx <= out->order[0]; mx++, t++)
				out->m[t][0] = mx, out->m[t][1] = my, out->m[t][2] = mz;
	r5_status status = fit_coefficients(out, three_d, half, points, n_points);
	free(points);
	if (status != R5_OK) {
		r5_coils_free(out);
		return r5_error_context(status, "coil sensitivity fit");
	}
	return R5_OK;
}
