/* Phantom parameters, geometry, analytic coil k-space and ground truth (see phantom.h).
 */
#include "phantom.h"
#include "dynamic.h"
#include "spectrum.h"
#include "recon/core/fft.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* What every kind's defaults share: coils, sampling, noise scan, geometry, oversampling, seed,
 * field strength. */
#define PHANTOM_COMMON_DEFAULTS                                                                     \
	.n_coils = 8, .sampling = R5_SAMPLING_FULL, .accel = {1, 1}, .calib = 24, .noise_sigma = 0,     \
	.noise_correlation = 0.2, .n_noise_samples = 8192, .oblique_count = 0, .oblique_deg = {0, 0}, \
	.position_mm = {10, -20, 30}, .readout_oversampling = 2, .seed = 42, .field_T = 5.0

const struct r5_phantom_params r5_phantom_defaults_2d = {
	.kind = R5_PHANTOM_SHEPP_LOGAN,
	.matrix = {256, 256, 1},
	.fov_mm = {256, 256, 5},
	PHANTOM_COMMON_DEFAULTS,
	.tr_ms = 10,
	.te_ms = 4,
	.flip_deg = 15,
};

const struct r5_phantom_params r5_phantom_defaults_3d = {
	.kind = R5_PHANTOM_SHEPP_LOGAN_3D,
	.matrix = {128, 128, 128},
	.fov_mm = {128, 128, 128},
	PHANTOM_COMMON_DEFAULTS,
	.tr_ms = 8,
	.te_ms = 3,
	.flip_deg = 10,
};

/* Black-blood T1-weighted 3D TSE-like header values; the object is vessel_wall.h's. */
const struct r5_phantom_params r5_phantom_defaults_vessel_wall = {
	.kind = R5_PHANTOM_VESSEL_WALL,
	.matrix = {128, 128, 64},
	.fov_mm = {64, 64, 32},
	PHANTOM_COMMON_DEFAULTS,
	.tr_ms = 800,
	.te_ms = 15,
	.flip_deg = 90,
};

/* A golden-angle radial dynamic scan (dynamic.h): 24 frames of 21 spokes, 96 ms each. */
const struct r5_phantom_params r5_phantom_defaults_dynamic = {
	.kind = R5_PHANTOM_DYNAMIC,
	.matrix = {128, 128, 1},
	.fov_mm = {256, 256, 8},
	.n_coils = 8, .sampling = R5_SAMPLING_FULL, .accel = {1, 1}, .calib = 24, .noise_sigma = 0.01,
	.noise_correlation = 0.2, .n_noise_samples = 8192, .oblique_count = 0, .oblique_deg = {0, 0},
	.position_mm = {10, -20, 30}, .readout_oversampling = 2, .seed = 42, .field_T = 5.0,
	.tr_ms = 4,
	.te_ms = 1.8,
	.flip_deg = 12,
	.n_frames = 24,
	.frame_spokes = 21,
	.per_frame_motion = 0,
	.heart_period_s = 0.8,
};

int r5_phantom_is_3d(const struct r5_phantom_params *p)
{
	return p->kind == R5_PHANTOM_SHEPP_LOGAN_3D || p->kind == R5_PHANTOM_VESSEL_WALL;
}

r5_status r5_phantom_object(const struct r5_phantom_params *p, r5_shape_set *object)
{
	if (p->kind == R5_PHANTOM_VESSEL_WALL)
		return r5_vessel_wall_make(p->fov_mm, object);
	if (p->kind == R5_PHANTOM_DYNAMIC) /* the object at the first spoke */
		return r5_dynamic_object(p, 0, (double)p->n_frames * p->frame_spokes * p->tr_ms * 1e-3, object);
	return r5_shepp_logan_make(r5_phantom_is_3d(p), p->fov_mm, object);
}

const char *r5_phantom_kind_name(r5_phantom_kind kind)
{
	return kind == R5_PHANTOM_DYNAMIC		     ? "dynamic"
	       : kind == R5_PHANTOM_VESSEL_WALL	     ? "vessel-wall"
	       : kind == R5_PHANTOM_SHEPP_LOGAN_3D ? "shepp-logan-3d"
						   : "shepp-logan";
}

r5_status r5_phantom_kind_parse(const char *name, r5_phantom_kind *kind)
{
	if (name && !strcmp(name, "shepp-logan"))
		*kind = R5_PHANTOM_SHEPP_LOGAN;
	else if (name && !strcmp(name, "shepp-logan-3d"))
		*kind = R5_PHANTOM_SHEPP_LOGAN_3D;
	else if (name && !strcmp(name, "vessel-wall"))
		*kind = R5_PHANTOM_VESSEL_WALL;
	else if (name && !strcmp(name, "dynamic"))
		*kind = R5_PHANTOM_DYNAMIC;
	else
		return r5_set_error(R5_EINVAL, "phantom kind '%s' is not shepp-logan, shepp-logan-3d, vessel-wall or dynamic",
				    name ? name : "(null)");
	return R5_OK;
}

r5_status r5_phantom_check(const struct r5_phantom_params *p)
{
	if (!p)
		return r5_set_error(R5_EINVAL, "phantom: NULL parameters");
	int three_d = r5_phantom_is_3d(p);
	if (p->kind != R5_PHANTOM_SHEPP_LOGAN && p->kind != R5_PHANTOM_DYNAMIC && !three_d)
		return r5_set_error(R5_EINVAL, "phantom: unknown kind %d", (int)p->kind);
	for (int d = 0; d < 3; d++) {
		if (p->matrix[d] < 1 || p->matrix[d] > 4096)
			return r5_set_error(R5_EINVAL, "phantom: matrix[%d] = %d (1..4096)", d, p->matrix[d]);
		if (!(p->fov_mm[d] > 0 && p->fov_mm[d] < 1e4))
			return r5_set_error(R5_EINVAL, "phantom: fov[%d] = %g mm must be in (0, 1e4) mm", d, p->fov_mm[d]);
	}
	if (!three_d && p->matrix[2] != 1)
		return r5_set_error(R5_EINVAL, "phantom: 2D shepp-logan needs matrix z = 1 (got %d)", p->matrix[2]);
	if (p->matrix[0] < 4 || p->matrix[1] < 4 || (three_d && p->matrix[2] < 4))
		return r5_set_error(R5_EINVAL, "phantom: matrix %d x %d x %d too small (>= 4 per encoded dimension)",
				    p->matrix[0], p->matrix[1], p->matrix[2]);
	if (p->readout_oversampling < 1 || p->readout_oversampling > 4 ||
	    (long)p->readout_oversampling * p->matrix[0] > 65535)
		return r5_set_error(R5_EINVAL, "phantom: readout oversampling %d (1..4, os*nx <= 65535)",
				    p->readout_oversampling);
	if (p->n_coils < 1 || p->n_coils > 128)
		return r5_set_error(R5_EINVAL, "phantom: %d coils (1..128)", p->n_coils);
	if (p->uniform_coil && p->n_coils != 1)
		return r5_set_error(R5_EINVAL, "phantom: a uniform coil is one coil (--coils 1), not %d", p->n_coils);
	if (p->accel[0] < 1 || p->accel[1] < 1 || p->accel[0] > p->matrix[1] || p->accel[1] > p->matrix[2])
		return r5_set_error(R5_EINVAL, "phantom: acceleration %d,%d does not fit matrix %d x %d", p->accel[0],
				    p->accel[1], p->matrix[1], p->matrix[2]);
	if (p->calib < 0 || p->calib > p->matrix[1])
		return r5_set_error(R5_EINVAL, "phantom: calibration width %d (0..%d)", p->calib, p->matrix[1]);
	if (!(p->noise_sigma >= 0) || !(p->noise_correlation >= 0 && p->noise_correlation < 0.9))
		return r5_set_error(R5_EINVAL, "phantom: noise sigma %g (>= 0) / correlation %g ([0, 0.9))",
				    p->noise_sigma, p->noise_correlation);
	if (p->n_noise_samples < 0 || p->n_noise_samples > 1 << 24)
		return r5_set_error(R5_EINVAL, "phantom: %d noise samples", p->n_noise_samples);
	if (p->oblique_count < 0 || p->oblique_count > 2)
		return r5_set_error(R5_EINVAL, "phantom: %d oblique angles (0..2)", p->oblique_count);
	for (int i = 0; i < p->oblique_count; i++)
		if (!(fabs(p->oblique_deg[i]) <= 360))
			return r5_set_error(R5_EINVAL, "phantom: oblique angle %g deg", p->oblique_deg[i]);
	for (int d = 0; d < 3; d++)
		if (!(fabs(p->position_mm[d]) < 1e4))
			return r5_set_error(R5_EINVAL, "phantom: position[%d] = %g mm", d, p->position_mm[d]);
	if (p->kind == R5_PHANTOM_DYNAMIC && p->along_sequence) { /* the sequence sets matrix and trajectory */
		if (p->n_frames < 1 || p->frame_spokes < 1 || !(p->heart_period_s > 0))
			return r5_set_error(R5_EINVAL, "dynamic phantom: %d frames x %d readouts, heart period %g s (each > 0)",
					    p->n_frames, p->frame_spokes, p->heart_period_s);
		return R5_OK;
	}
	if (p->kind == R5_PHANTOM_DYNAMIC)
		return r5_dynamic_check(p);
	return R5_OK;
}

void r5_phantom_directions(const struct r5_phantom_params *p, float read[3], float phase[3], float slice[3])
{
	double a = p->oblique_count > 0 ? p->oblique_deg[0] * PI / 180 : 0;
	double b = p->oblique_count > 1 ? p->oblique_deg[1] * PI / 180 : 0;
	/* about slice (z): read/phase turn in the transverse plane */
	double r1[3] = {cos(a), sin(a), 0}, p1[3] = {-sin(a), cos(a), 0}, s1[3] = {0, 0, 1};
	/* about the new read axis: phase and slice turn */
	for (int i = 0; i < 3; i++) {
		read[i] = (float)r1[i];
		phase[i] = (float)(cos(b) * p1[i] + sin(b) * s1[i]);
		slice[i] = (float)(-sin(b) * p1[i] + cos(b) * s1[i]);
	}
}

r5_status r5_phantom_kspace(const struct r5_phantom_params *p, const r5_shape_set *object,
			    const r5_coil_model *coils, float complex *out)
{
	R5_TRY(r5_phantom_check(p));
	r5_spectrum t;
	R5_TRY(r5_spectrum_make(p, object, coils, &t));
	int ny = p->matrix[1], nz = p->matrix[2];
	long per_coil = (long)t.nxo * ny * nz;
	float complex *line = malloc(sizeof *line * (size_t)t.nxo * coils->n_coils);
	if (!line) {
		r5_spectrum_free(&t);
		return r5_set_error(R5_ENOMEM, "phantom k-space line");
	}
	for (int iz = 0; iz < nz; iz++)
		for (int iy = 0; iy < ny; iy++) {
			r5_spectrum_line(&t, coils, iy, iz, line);
			for (int c = 0; c < coils->n_coils; c++)
				memcpy(out + c * per_coil + ((long)iz * ny + iy) * t.nxo, line + (long)c * t.nxo,
				       sizeof *line * (size_t)t.nxo);
		}
	free(line);
	r5_spectrum_free(&t);
	return R5_OK;
}

r5_status r5_phantom_ground_truth(const struct r5_phantom_params *p, const r5_shape_set *object, float *out)
{
	R5_TRY(r5_phantom_check(p));
	int three_d = r5_phantom_is_3d(p);
	int nx = p->matrix[0], ny = p->matrix[1], nz = p->matrix[2], sub = three_d ? 2 : 4, subz = three_d ? 2 : 1;
	double d[3] = {p->fov_mm[0] / nx, p->fov_mm[1] / ny, p->fov_mm[2] / nz};
	long rows = (long)ny * nz;
#pragma omp parallel for schedule(dynamic, 8)
	for (long row = 0; row < rows; row++) {
		int iy = (int)(row % ny), iz = (int)(row / ny);
		for (int ix = 0; ix < nx; ix++) {
			double sum = 0, r[3];
			for (int sz = 0; sz < subz; sz++)
				for (int sy = 0; sy < sub; sy++)
					for (int sx = 0; sx < sub; sx++) {
						r[0] = (ix - nx / 2 + (sx + 0.5) / sub - 0.5) * d[0];
						r[1] = (iy - ny / 2 + (sy + 0.5) / sub - 0.5) * d[1];
						r[2] = three_d ? (iz - nz / 2 + (sz + 0.5) / subz - 0.5) * d[2] : 0;
						sum += r5_shapes_value(object, r);
					}
			out[row * nx + ix] = (float)(sum / (sub * sub * subz));
		}
	}
	return R5_OK;
}

/* The object band-limited to the acquired k-space extent: the analytic spectrum of the object
 * alone (one unit coil) on the encoded grid — with the readout oversampling the scan has, so the
 * readout is inverse FFT'd over the oversampled FOV and cropped to the central nx as the
 * reconstruction does (at 1x the band-limited object's ringing would wrap around a FOV it does
 * not wrap around in the data: 1.8 % NRMSE at 64^2) — centred unitary inverse FFT. This is what
 * a perfect reconstruction of fully sampled, noise-free data gives, so the NRMSE of a
 * reconstruction against it measures the reconstruction (aliasing, noise, g-factor, map
 * errors) and not the Gibbs ringing that truncating k-space at the matrix size causes for any
 * method (about 0.06 at 256² against the voxel-averaged object). */
r5_status r5_phantom_bandlimited(const struct r5_phantom_params *p, const r5_shape_set *object, float *out)
{
	struct r5_phantom_params q = *p;
	R5_TRY(r5_phantom_check(&q));
	int three_d = r5_phantom_is_3d(p);
	long nx = q.matrix[0], nxo = (long)q.readout_oversampling * nx;
	int m[1][3] = {{0, 0, 0}};
	double complex one = 1.0;
	r5_coil_model unit = {.n_coils = 1, .order = {0, 0, 0}, .n_terms = 1, .m = m, .coeff = &one};
	r5_spectrum_periods(&q, unit.period_mm);
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = nxo, dims[1] = q.matrix[1], dims[2] = three_d ? q.matrix[2] : 1;
	r5_array *k = NULL;
	r5_ctx *ctx = NULL;
	r5_status s = r5_array_alloc_host(dims, &k);
	if (s == R5_OK)
		s = r5_phantom_kspace(&q, object, &unit, k->data);
	if (s == R5_OK)
		s = r5_ctx_create(&ctx, "cpu", 0);
	if (s == R5_OK)
		s = r5_ifft(ctx, R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(2), k, k);
	if (s == R5_OK)
		for (long row = 0; row < dims[1] * dims[2]; row++)
			for (long x = 0; x < nx; x++)
				out[row * nx + x] = cabsf(k->data[row * nxo + (nxo - nx) / 2 + x]);
	r5_ctx_destroy(ctx);
	r5_array_free(k);
	return s;
}
