/* The dynamic phantom (see dynamic.h): the object as a shape set at any time, the golden-angle
 * trajectory, and the analytic k-space of every spoke for every coil (a coil's k-space is
 * sum_t a_ct F(k - m_t / P), coils.h; a spoke is a straight line in k-space, so each shifted
 * transform is one r5_shapes_ft_row), noise, and the per-frame truth. */
#include "dynamic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../recon/core/fft.h"
#include "../recon/core/threads.h"

#define PI 3.14159265358979323846

static double gamma_variate(double tau)
{
	if (tau <= 0)
		return 0;
	double u = tau / 0.2;
	return pow(u * exp(1 - u), 3);
}

static void add_disc(r5_shape_set *s, double intensity, double cx, double cy, double ax, double ay)
{
	r5_ellipsoid *e = &s->e[s->n++];
	memset(e, 0, sizeof *e);
	e->intensity = intensity;
	e->centre[0] = cx, e->centre[1] = cy;
	e->semi[0] = ax, e->semi[1] = ay, e->semi[2] = 1;
	for (int d = 0; d < 3; d++)
		e->rot[d][d] = 1;
}

r5_status r5_dynamic_object(const struct r5_phantom_params *p, double t_s, double duration_s, r5_shape_set *object)
{
	if (!p || !object || !(duration_s > 0))
		return r5_set_error(R5_EINVAL, "dynamic phantom: object needs parameters and a positive duration");
	memset(object, 0, sizeof *object);
	for (int d = 0; d < 3; d++)
		object->half_fov_mm[d] = p->fov_mm[d] / 2;
	double tau = t_s / duration_s, beat = sin(2 * PI * t_s / p->heart_period_s);
	double tissue = 0.2, blood = 0.4 + 1.2 * gamma_variate(tau), myo = 0.35 + 0.3 * gamma_variate(tau - 0.05);
	double liver = 0.3 + 0.25 * tau, v1 = tau - 0.1, v2 = tau - 0.15;
	double lesion1 = 0.3 + (v1 > 0 ? 0.9 * (1 - exp(-v1 / 0.08)) * exp(-v1 / 0.8) : 0);
	double lesion2 = 0.3 + (v2 > 0 ? 0.6 * (1 - exp(-v2 / 0.35)) : 0);
	double cavity = 0.14 - 0.04 * beat, wall = 0.07 + 0.025 * beat;
	/* the body first: coils.h fits the sensitivities on the first shape's support */
	add_disc(object, tissue, 0, 0, 0.85, 0.7);
	add_disc(object, myo - tissue, -0.4, 0.05, cavity + wall, cavity + wall);
	add_disc(object, blood - myo, -0.4, 0.05, cavity, cavity);
	add_disc(object, liver - tissue, 0.35, 0.05, 0.4, 0.45);
	add_disc(object, lesion1 - liver, 0.42, 0.22, 0.08, 0.08);
	add_disc(object, lesion2 - liver, 0.3, -0.18, 0.06, 0.06);
	return R5_OK;
}

r5_status r5_dynamic_check(const struct r5_phantom_params *p)
{
	if (p->matrix[0] != p->matrix[1] || p->matrix[2] != 1)
		return r5_set_error(R5_EINVAL, "dynamic phantom: matrix %d x %d x %d, want a square 2D matrix (N x N x 1)",
				    p->matrix[0], p->matrix[1], p->matrix[2]);
	if (p->fov_mm[0] != p->fov_mm[1])
		return r5_set_error(R5_EINVAL, "dynamic phantom: FOV %g x %g mm, want a square FOV", p->fov_mm[0],
				    p->fov_mm[1]);
	if (p->readout_oversampling < 1 || p->readout_oversampling > 2)
		return r5_set_error(R5_EINVAL, "dynamic phantom: readout oversampling %d (1 or 2)", p->readout_oversampling);
	if (p->n_frames < 1 || p->frame_spokes < 1 || (long)p->n_frames * p->frame_spokes > 65535)
		return r5_set_error(R5_EINVAL, "dynamic phantom: %d frames x %d spokes (each >= 1, at most 65535 spokes)",
				    p->n_frames, p->frame_spokes);
	if (!(p->tr_ms > 0) || !(p->heart_period_s > 0))
		return r5_set_error(R5_EINVAL, "dynamic phantom: TR %g ms and heart period %g s must be positive", p->tr_ms,
				    p->heart_period_s);
	if (p->per_frame_motion != 0 && p->per_frame_motion != 1)
		return r5_set_error(R5_EINVAL, "dynamic phantom: per_frame_motion %d (0 or 1)", p->per_frame_motion);
	return R5_OK;
}

void r5_dynamic_trajectory(const struct r5_phantom_params *p, long first, long count, float *coords)
{
	long n = (long)p->readout_oversampling * p->matrix[0];
	float limit = (float)(p->matrix[0] / 2);
	for (long j = 0; j < count; j++) {
		double angle = fmod((double)(first + j) * R5_DYNAMIC_GOLDEN_ANGLE, 2 * PI);
		double along0 = sin(angle), along1 = cos(angle); /* BART's direction (traj.h) */
		for (long i = 0; i < n; i++) {
			double r = (double)(i - n / 2) / p->readout_oversampling;
			float *k = coords + 3 * (i + n * j);
			k[0] = (float)(r * along0), k[1] = (float)(r * along1), k[2] = 0;
			/* the first sample at angles near pi would round onto +N/2, outside [-N/2, N/2) */
			for (int d = 0; d < 2; d++)
				if (k[d] >= limit)
					k[d] = nextafterf(limit, 0);
		}
	}
}

static double spoke_time(const struct r5_phantom_params *p, long spoke)
{
	if (p->per_frame_motion) {
		long f = spoke / p->frame_spokes;
		return ((double)f * p->frame_spokes + (p->frame_spokes - 1) / 2.0) * p->tr_ms * 1e-3;
	}
	return (double)spoke * p->tr_ms * 1e-3;
}

/* One spoke for every coil: out[i + n_read (spoke + n_spokes c)] (the samples array). */
static void simulate_spoke(const struct r5_phantom_params *p, const r5_coil_model *coils,
			   const double complex *noise_lower, long spoke, long n_spokes, double duration_s,
			   float complex *term_row, float complex *out)
{
	long n = (long)p->readout_oversampling * p->matrix[0];
	double N = p->matrix[0], fov = p->fov_mm[0], dx = fov / N;
	r5_shape_set object;
	r5_dynamic_object(p, spoke_time(p, spoke), duration_s, &object);
	double angle = fmod((double)spoke * R5_DYNAMIC_GOLDEN_ANGLE, 2 * PI), c = sin(angle), s = cos(angle);
	double step = 1.0 / (p->readout_oversampling * fov); /* cycles/mm per sample */
	double start = -(double)(n / 2) * step, scale = 1.0 / (dx * dx * N);
	for (long co = 0; co < coils->n_coils; co++)
		memset(out + n * (spoke + n_spokes * co), 0, sizeof *out * (size_t)n);
	for (int t = 0; t < coils->n_terms; t++) {
		double k0[3] = {start * c - coils->m[t][0] / coils->period_mm[0],
				start * s - coils->m[t][1] / coils->period_mm[1], 0};
		double dk[3] = {step * c, step * s, 0}; /* (c, s) = (sin, cos) of the angle: BART's direction */
		memset(term_row, 0, sizeof *term_row * (size_t)n);
		r5_shapes_ft_row(&object, k0, dk, n, scale, term_row, 1);
		for (long co = 0; co < coils->n_coils; co++) {
			float complex a = (float complex)coils->coeff[co * coils->n_terms + t];
			float complex *line = out + n * (spoke + n_spokes * co);
			for (long i = 0; i < n; i++)
				line[i] += a * term_row[i];
		}
	}
	if (noise_lower) {
		r5_rng rng;
		r5_rng_seed(&rng, p->seed, 0xd7a0000000ULL + (uint64_t)spoke);
		for (long i = 0; i < n; i++)
			r5_noise_add(coils->n_coils, noise_lower, &rng, out + n * spoke + i, n * n_spokes);
	}
}

static r5_status simulate_samples(const struct r5_phantom_params *p, r5_dynamic_scan *scan)
{
	r5_shape_set support;
	r5_coil_model coils = {0};
	double complex *lower = NULL;
	double duration_s = (double)scan->n_spokes * p->tr_ms * 1e-3;
	double period_mm[3] = {2 * p->fov_mm[0], 2 * p->fov_mm[1], 2 * p->fov_mm[2]};
	R5_TRY(r5_dynamic_object(p, 0, duration_s, &support));
	R5_TRY(r5_coils_for(p->uniform_coil, p->n_coils, 0, p->fov_mm, period_mm, &support, &coils));
	r5_status s = r5_noise_factor(p->n_coils, p->noise_sigma, p->noise_correlation, &lower);
	long n = scan->n_read, n_spokes = scan->n_spokes;
	int threads = r5_max_threads();
	float complex *rows = s == R5_OK ? malloc(sizeof *rows * (size_t)n * threads) : NULL;
	if (s == R5_OK && !rows)
		s = r5_set_error(R5_ENOMEM, "dynamic phantom: spoke buffers");
	if (s == R5_OK) {
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
		for (long j = 0; j < n_spokes; j++) {
			int me = 0;
#ifdef _OPENMP
			me = omp_get_thread_num();
#endif
			simulate_spoke(p, &coils, lower, j, n_spokes, duration_s, rows + n * me, scan->samples->data);
		}
	}
	free(rows);
	free(lower);
	r5_coils_free(&coils);
	return s;
}

/* Frame f's truth: the band-limited object (analytic transform on the N x N grid, centred unitary
 * inverse FFT, magnitude) into band, the voxel average into voxels (N x N each). */
static r5_status frame_truth(r5_ctx *ctx, const struct r5_phantom_params *p, const r5_shape_set *object,
			     r5_array *grid, float complex *band, float complex *voxels)
{
	long N = p->matrix[0];
	double fov = p->fov_mm[0], dx = fov / (double)N;
	memset(grid->data, 0, sizeof *grid->data * (size_t)(N * N));
	for (long iy = 0; iy < N; iy++) {
		double k0[3] = {-(double)(N / 2) / fov, (double)(iy - N / 2) / fov, 0}, dk[3] = {1.0 / fov, 0, 0};
		r5_shapes_ft_row(object, k0, dk, N, 1.0 / (dx * dx * (double)N), grid->data + iy * N, 1);
	}
	R5_TRY(r5_ifft(ctx, R5_FLAG(0) | R5_FLAG(1), grid, grid));
	for (long i = 0; i < N * N; i++)
		band[i] = cabsf(grid->data[i]);
	const int sub = 4;
#pragma omp parallel for schedule(static)
	for (long iy = 0; iy < N; iy++)
		for (long ix = 0; ix < N; ix++) {
			double sum = 0, r[3] = {0, 0, 0};
			for (int sy = 0; sy < sub; sy++)
				for (int sx = 0; sx < sub; sx++) {
					r[0] = ((double)(ix - N / 2) + (sx + 0.5) / sub - 0.5) * dx;
					r[1] = ((double)(iy - N / 2) + (sy + 0.5) / sub - 0.5) * dx;
					sum += r5_shapes_value(object, r);
				}
			voxels[iy * N + ix] = (float)(sum / (sub * sub));
		}
	return R5_OK;
}

static r5_status simulate_truth(const struct r5_phantom_params *p, r5_dynamic_scan *scan)
{
	long N = p->matrix[0], dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = dims[1] = N;
	r5_array *grid = NULL;
	r5_ctx *ctx = NULL;
	R5_TRY(r5_array_alloc_host(dims, &grid));
	r5_status s = r5_ctx_create(&ctx, "cpu", 0);
	double duration_s = (double)scan->n_spokes * p->tr_ms * 1e-3;
	for (long f = 0; f < scan->n_frames && s == R5_OK; f++) {
		double t = ((double)f * scan->frame_spokes + (scan->frame_spokes - 1) / 2.0) * p->tr_ms * 1e-3;
		scan->frame_time_s[f] = t;
		r5_shape_set object;
		s = r5_dynamic_object(p, t, duration_s, &object);
		if (s == R5_OK)
			s = frame_truth(ctx, p, &object, grid, scan->truth->data + f * N * N, scan->object->data + f * N * N);
	}
	r5_ctx_destroy(ctx);
	r5_array_free(grid);
	return s;
}

r5_status r5_dynamic_simulate(const struct r5_phantom_params *p, int with_truth, r5_dynamic_scan *scan)
{
	if (!scan)
		return r5_set_error(R5_EINVAL, "dynamic phantom: no output");
	memset(scan, 0, sizeof *scan);
	R5_TRY(r5_phantom_check(p));
	if (p->kind != R5_PHANTOM_DYNAMIC)
		return r5_set_error(R5_EINVAL, "dynamic phantom: kind %s is not dynamic", r5_phantom_kind_name(p->kind));
	scan->n_read = (long)p->readout_oversampling * p->matrix[0];
	scan->frame_spokes = p->frame_spokes;
	scan->n_frames = p->n_frames;
	scan->n_spokes = scan->n_frames * scan->frame_spokes;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[1] = scan->n_read, dims[2] = scan->n_spokes, dims[3] = p->n_coils;
	r5_status s = r5_array_alloc_host(dims, &scan->samples);
	r5_dims_ones(dims);
	dims[0] = 3, dims[1] = scan->n_read, dims[2] = scan->n_spokes;
	if (s == R5_OK)
		s = r5_array_alloc_host(dims, &scan->traj);
	if (s == R5_OK) {
		float *coords = malloc(sizeof *coords * 3 * (size_t)(scan->n_read * scan->n_spokes));
		if (!coords)
			s = r5_set_error(R5_ENOMEM, "dynamic phantom: trajectory");
		else {
			r5_dynamic_trajectory(p, 0, scan->n_spokes, coords);
			for (long i = 0; i < 3 * scan->n_read * scan->n_spokes; i++)
				scan->traj->data[i] = coords[i];
			free(coords);
		}
	}
	if (s == R5_OK)
		s = simulate_samples(p, scan);
	if (s == R5_OK && with_truth) {
		r5_dims_ones(dims);
		dims[0] = dims[1] = p->matrix[0], dims[R5_DIM_TIME] = scan->n_frames;
		s = r5_array_alloc_host(dims, &scan->truth);
		if (s == R5_OK)
			s = r5_array_alloc_host(dims, &scan->object);
		scan->frame_time_s = s == R5_OK ? malloc(sizeof *scan->frame_time_s * (size_t)scan->n_frames) : NULL;
		if (s == R5_OK && !scan->frame_time_s)
			s = r5_set_error(R5_ENOMEM, "dynamic phantom: frame times");
		if (s == R5_OK)
			s = simulate_truth(p, scan);
	}
	if (s != R5_OK)
		r5_dynamic_free(scan);
	return s;
}

void r5_dynamic_free(r5_dynamic_scan *scan)
{
	if (!scan)
		return;
	r5_array_free(scan->samples);
	r5_array_free(scan->traj);
	r5_array_free(scan->truth);
	r5_array_free(scan->object);
	free(scan->frame_time_s);
	memset(scan, 0, sizeof *scan);
}
