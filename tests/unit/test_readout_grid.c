/* Readout regridding (recon/io/readout_grid.h) and the scan builder's lines with a 1D readout
 * trajectory (recon/io/scan.h): samples on the grid give a permutation (N and 2N voxels); a line
 * band-limited in the N-voxel model sampled along a trapezoid (ramp sampling) gives its exact
 * DFT on the grid, forward and reversed; a sharp-edged object's line is fitted to ~1e-4 with 2N
 * voxels and far worse with N (why the builder models 2N); fewer samples than grid points stay
 * finite; the plan's pattern cache; through r5_scan_builder_add a ramp-sampled EPI of a smooth
 * object (alternate lines reversed, some plain Cartesian) assembles the Cartesian k-space, with
 * the header 2x oversampled and with oversampled plain lines; every refusal names the
 * acquisition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon/io/readout_grid.h"
#include "recon/io/scan.h"

#define PI 3.14159265358979323846

static uint64_t rng_state;

static double uniform(void) /* [-1, 1), deterministic */
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(rng_state >> 11) / (double)(1ULL << 52) - 1.0;
}

/* m positions along a trapezoid readout: gradient ramps over ramp of the readout time at each
 * end, flat between; samples at the middle of their dwell; k = integral of the gradient scaled to
 * run from lo to hi (hi to lo when reversed: the gradient negated). */
static void trapezoid(long m, double lo, double hi, double ramp, int reversed, double *k)
{
	double area = 1.0 - ramp;
	for (long j = 0; j < m; j++) {
		double t = ((double)j + 0.5) / (double)m, a;
		if (t < ramp)
			a = t * t / (2 * ramp);
		else if (t <= 1 - ramp)
			a = ramp / 2 + (t - ramp);
		else
			a = area - (1 - t) * (1 - t) / (2 * ramp);
		double u = a / area;
		k[j] = reversed ? hi - (hi - lo) * u : lo + (hi - lo) * u;
	}
}

/* s(k) = sum_x f(x) exp(-2 pi i k x / n), x = -n/2 .. n-1-n/2 */
static double complex line_at(long n, const double complex *f, double k)
{
	double complex sum = 0;
	for (long i = 0; i < n; i++)
		sum += f[i] * cexp(-2.0 * PI * I * k * (double)(i - n / 2) / (double)n);
	return sum;
}

static void random_line(long n, double complex *f)
{
	for (long i = 0; i < n; i++)
		f[i] = uniform() + I * uniform();
}

/* ||g s - u|| / ||u|| for the exact grid values u of f */
static double grid_error(long n, long m, const double complex *g, const double *k, const double complex *f)
{
	double err = 0, norm = 0;
	for (long i = 0; i < n; i++) {
		double complex u = 0;
		for (long j = 0; j < m; j++)
			u += g[i + n * j] * line_at(n, f, k[j]);
		double complex want = line_at(n, f, (double)(i - n / 2));
		err += pow(cabs(u - want), 2);
		norm += pow(cabs(want), 2);
	}
	return sqrt(err / norm);
}

static void test_on_grid_permutation(void **state)
{
	(void)state;
	rng_state = 1;
	const long sizes[] = {16, 17, 96};
	for (int s = 0; s < 3; s++) {
		long n = sizes[s];
		double *k = malloc(sizeof *k * (size_t)n);
		double complex *g = malloc(sizeof *g * (size_t)(n * n));
		assert_non_null(k);
		assert_non_null(g);
		for (int order = 0; order < 3; order++) { /* in order, reversed, shuffled */
			for (long j = 0; j < n; j++)
				k[j] = (double)((order == 1 ? n - 1 - j : j) - n / 2);
			if (order == 2)
				for (long j = n - 1; j > 0; j--) {
					long r = (long)((uniform() + 1) * 0.5 * (double)(j + 1)) % (j + 1);
					double t = k[j];
					k[j] = k[r], k[r] = t;
				}
			for (long os = 1; os <= 2; os++) {
				assert_int_equal(r5_readout_grid_matrix(n, os * n, n, k, g), R5_OK);
				double worst = 0;
				for (long j = 0; j < n; j++)
					for (long i = 0; i < n; i++) {
						double want = (double)(i - n / 2) == k[j] ? 1.0 : 0.0;
						worst = fmax(worst, cabs(g[i + n * j] - want));
					}
				if (worst > 1e-9)
					fail_msg("n %ld voxels %ld order %d: G differs from the permutation by %g", n, os * n,
						 order, worst);
			}
		}
		free(k);
		free(g);
	}
}

static void test_trapezoid_band_limited(void **state)
{
	(void)state;
	rng_state = 2;
	enum { N0 = 96, M = 120 };
	double k[M];
	double complex f[N0], g[N0 * M];
	random_line(N0, f);
	for (int reversed = 0; reversed < 2; reversed++) {
		trapezoid(M, -N0 / 2, N0 / 2, 0.2, reversed, k);
		assert_true(fabs(k[reversed ? M - 1 : 0] + N0 / 2) < 0.1 && fabs(k[reversed ? 0 : M - 1] - N0 / 2) < 0.1);
		assert_int_equal(r5_readout_grid_matrix(N0, N0, M, k, g), R5_OK);
		double err = grid_error(N0, M, g, k, f);
		printf("trapezoid %s: relative error %.2e\n", reversed ? "reversed" : "forward", err);
		if (!(err <= 1e-6))
			fail_msg("trapezoid %s: relative error %g > 1e-6", reversed ? "reversed" : "forward", err);
	}
	/* the same through a plan in single precision, several lines (coils) at once */
	r5_readout_grid *plan = NULL;
	assert_int_equal(r5_readout_grid_create(N0, N0, &plan), R5_OK);
	float complex in[2 * M], out[2 * N0];
	for (long j = 0; j < M; j++)
		for (int c = 0; c < 2; c++)
			in[j + M * c] = (float complex)(line_at(N0, f, k[j]) * (c ? 2.0 * I : 1.0));
	assert_int_equal(r5_readout_grid_apply(plan, M, k, 2, in, M, out, N0), R5_OK);
	double err = 0, norm = 0;
	for (int c = 0; c < 2; c++)
		for (long i = 0; i < N0; i++) {
			double complex want = line_at(N0, f, (double)(i - N0 / 2)) * (c ? 2.0 * I : 1.0);
			err += pow(cabs(out[i + N0 * c] - want), 2);
			norm += pow(cabs(want), 2);
		}
	printf("single precision apply: relative error %.2e\n", sqrt(err / norm));
	assert_true(sqrt(err / norm) <= 1e-5);
	r5_readout_grid_destroy(plan);
}

/* A line of a real object: boxes (sharp edges, spectrum falling as 1/k) inside the FOV, their
 * continuous transform. The 2N-voxel model fits it to about 1e-4; the N-periodic one, which
 * makes the samples beyond +-N/2 wrap onto the other end of the grid, is 1e-2 off. */
typedef struct boxes {
	double amplitude[4], centre[4], width[4]; /* centre, width in voxels of the grid */
} boxes;

static double complex boxes_at(const boxes *o, long n, double k)
{
	double complex sum = 0;
	for (int b = 0; b < 4; b++) {
		double a = PI * k * o->width[b] / (double)n, sinc = a == 0 ? 1.0 : sin(a) / a;
		sum += o->amplitude[b] * o->width[b] * sinc * cexp(-2.0 * PI * I * k * o->centre[b] / (double)n);
	}
	return sum;
}

static void test_sharp_edged_object(void **state)
{
	(void)state;
	rng_state = 8;
	enum { N0 = 96, M = 120 };
	double k[M], worst[2] = {0, 0};
	double complex *g = malloc(sizeof *g * (size_t)(N0 * M));
	assert_non_null(g);
	for (int trial = 0; trial < 6; trial++) {
		boxes o;
		for (int b = 0; b < 4; b++) {
			o.amplitude[b] = uniform();
			o.width[b] = (0.3 + 0.2 * uniform()) * N0;
			o.centre[b] = 0.2 * uniform() * N0;
		}
		trapezoid(M, -N0 / 2, N0 / 2, 0.2, trial % 2, k);
		for (int os = 1; os <= 2; os++) {
			assert_int_equal(r5_readout_grid_matrix(N0, os * N0, M, k, g), R5_OK);
			double err = 0, norm = 0;
			for (long i = 0; i < N0; i++) {
				double complex u = 0;
				for (long j = 0; j < M; j++)
					u += g[i + N0 * j] * boxes_at(&o, N0, k[j]);
				double complex want = boxes_at(&o, N0, (double)(i - N0 / 2));
				err += pow(cabs(u - want), 2);
				norm += pow(cabs(want), 2);
			}
			worst[os - 1] = fmax(worst[os - 1], sqrt(err / norm));
		}
	}
	free(g);
	printf("boxes: relative error %.2e with N voxels, %.2e with 2N\n", worst[0], worst[1]);
	if (!(worst[1] <= 5e-4))
		fail_msg("2N voxels: relative error %g > 5e-4", worst[1]);
	if (!(worst[0] > 10 * worst[1]))
		fail_msg("N voxels (%g) not worse than 2N (%g): the reason for R5_READOUT_GRID_OS is gone", worst[0],
			 worst[1]);
}

static void test_few_samples_finite(void **state)
{
	(void)state;
	rng_state = 3;
	enum { N0 = 96, M = 40 };
	double k[M];
	double complex f[N0], g[N0 * M];
	random_line(N0, f);
	for (int kind = 0; kind < 3; kind++) {
		if (kind == 0)
			trapezoid(M, -N0 / 2, N0 / 2, 0.2, 0, k); /* M < N0 across the line */
		else
			for (long j = 0; j < M; j++) /* clustered around 0; kind 2: pairs 1e-9 apart */
				k[j] = kind == 1 ? -2.0 + 4.0 * (double)j / M : (double)(j / 2) + 1e-9 * (double)(j % 2);
		assert_int_equal(r5_readout_grid_matrix(N0, (kind + 1) * N0 / 2 + N0 / 2, M, k, g), R5_OK);
		double s_norm = 0, u_norm = 0;
		for (long j = 0; j < M; j++)
			s_norm += pow(cabs(line_at(N0, f, k[j])), 2);
		for (long i = 0; i < N0; i++) {
			double complex u = 0;
			for (long j = 0; j < M; j++) {
				assert_true(isfinite(creal(g[i + N0 * j])) && isfinite(cimag(g[i + N0 * j])));
				u += g[i + N0 * j] * line_at(N0, f, k[j]);
			}
			u_norm += pow(cabs(u), 2);
		}
		/* finite and bounded: the regularisation caps a component's gain near 1/sqrt(lambda) */
		if (!(sqrt(u_norm) <= 1e4 * sqrt(s_norm)))
			fail_msg("kind %d: |u| %g for |s| %g", kind, sqrt(u_norm), sqrt(s_norm));
	}
	/* bad input */
	k[3] = NAN;
	assert_int_equal(r5_readout_grid_matrix(N0, 2 * N0, M, k, g), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "sample 3"));
	assert_int_equal(r5_readout_grid_matrix(0, N0, M, k, g), R5_EINVAL);
	assert_int_equal(r5_readout_grid_matrix(N0, N0 - 1, M, k, g), R5_EINVAL);
	r5_readout_grid *plan = NULL;
	assert_int_equal(r5_readout_grid_create(N0, N0 / 2, &plan), R5_EINVAL);
	assert_null(plan);
}

static void test_plan_cache(void **state)
{
	(void)state;
	enum { N0 = 32, M = 40 };
	double fwd[M], rev[M], near[M], other[M];
	trapezoid(M, -16, 16, 0.2, 0, fwd);
	trapezoid(M, -16, 16, 0.2, 1, rev);
	trapezoid(M, -16, 16, 0.25, 0, other);
	for (long j = 0; j < M; j++)
		near[j] = fwd[j] + 4e-7;
	r5_readout_grid *plan = NULL;
	assert_int_equal(r5_readout_grid_create(N0, 2 * N0, &plan), R5_OK);
	long bytes0 = r5_readout_grid_bytes(plan);
	const double complex *g = NULL, *g_fwd = NULL;
	for (int line = 0; line < 10; line++) /* an EPI: forward, reversed, forward, ... */
		assert_int_equal(r5_readout_grid_get(plan, M, line % 2 ? rev : fwd, &g), R5_OK);
	assert_int_equal(r5_readout_grid_computed(plan), 2);
	assert_true(r5_readout_grid_bytes(plan) >= bytes0 + 2L * N0 * M * (long)sizeof(double complex));
	assert_int_equal(r5_readout_grid_get(plan, M, fwd, &g_fwd), R5_OK);
	assert_int_equal(r5_readout_grid_get(plan, M, near, &g), R5_OK); /* within 1e-6: the same */
	assert_ptr_equal(g, g_fwd);
	assert_int_equal(r5_readout_grid_computed(plan), 2);
	assert_int_equal(r5_readout_grid_get(plan, M, other, &g), R5_OK);
	assert_int_equal(r5_readout_grid_get(plan, M - 1, fwd, &g), R5_OK); /* another length */
	assert_int_equal(r5_readout_grid_computed(plan), 4);
	/* a fifth pattern replaces the one used longest ago (rev), the others stay */
	for (long j = 0; j < M; j++)
		near[j] = fwd[j] + 0.01;
	assert_int_equal(r5_readout_grid_get(plan, M, near, &g), R5_OK);
	assert_int_equal(r5_readout_grid_computed(plan), 5);
	assert_int_equal(r5_readout_grid_get(plan, M, fwd, &g), R5_OK);
	assert_int_equal(r5_readout_grid_computed(plan), 5);
	assert_int_equal(r5_readout_grid_get(plan, M, rev, &g), R5_OK);
	assert_int_equal(r5_readout_grid_computed(plan), 6);
	r5_readout_grid_destroy(plan);
	r5_readout_grid_destroy(NULL);
}

/* --- through the scan builder --- */

#define NY 24
#define COILS 2

static char xml[2048];

/* A Cartesian/EPI header: encoded x ex (recon x rx, FOV x in proportion), NY lines centred. */
static const char *epi_xml(const char *trajectory, long ex, long rx)
{
	snprintf(xml, sizeof xml,
		 "<?xml version=\"1.0\"?><ismrmrdHeader xmlns=\"http://www.ismrm.org/ISMRMRD\">"
		 "<acquisitionSystemInformation><receiverChannels>%d</receiverChannels></acquisitionSystemInformation>"
		 "<encoding><encodedSpace><matrixSize><x>%ld</x><y>%d</y><z>1</z></matrixSize><fieldOfView_mm><x>%ld</x>"
		 "<y>240</y><z>5</z></fieldOfView_mm></encodedSpace><reconSpace><matrixSize><x>%ld</x><y>%d</y><z>1</z>"
		 "</matrixSize><fieldOfView_mm><x>%ld</x><y>240</y><z>5</z></fieldOfView_mm></reconSpace>"
		 "<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>%d</maximum><center>%d</center>"
		 "</kspace_encoding_step_1></encodingLimits><trajectory>%s</trajectory></encoding></ismrmrdHeader>",
		 COILS, ex, NY, 10 * ex, rx, NY, 10 * rx, NY - 1, NY / 2, trajectory);
	return xml;
}

/* The object: a few Gaussian blobs along x (inside the FOV, their spectrum below 1e-5 at the
 * grid's ends: band-limited as a real object is, so that regridding has nothing to lose), each
 * with a random profile over the NY voxels along y; coil c weighted by w_c. */
#define BLOBS 3
typedef struct object {
	long nx;
	double amplitude[BLOBS], centre[BLOBS], sigma[BLOBS]; /* voxels of the nx grid */
	double complex profile[BLOBS][NY];
} object;

static double complex coil_weight(int c) { return (1.0 + 0.5 * c) * cexp(0.7 * I * c); }

/* The object's continuous transform at readout k (cycles per FOV) on the line of phase-encode
 * frequency v. */
static double complex object_at(const object *o, long v, double k)
{
	double complex sum = 0;
	for (int b = 0; b < BLOBS; b++) {
		double complex py = 0;
		for (long iy = 0; iy < NY; iy++)
			py += o->profile[b][iy] * cexp(-2.0 * PI * I * (double)(v * (iy - NY / 2)) / NY);
		double a = 2.0 * PI * PI * o->sigma[b] * o->sigma[b] / ((double)o->nx * (double)o->nx);
		double complex shift = cexp(-2.0 * PI * I * k * o->centre[b] / (double)o->nx);
		sum += o->amplitude[b] * o->sigma[b] * exp(-a * k * k) * shift * py;
	}
	return sum;
}

static ISMRMRD_AcquisitionHeader line_head(long row, long samples, int traj_dims, int reverse)
{
	ISMRMRD_AcquisitionHeader h;
	ismrmrd_init_acquisition_header(&h);
	h.number_of_samples = (uint16_t)samples;
	h.active_channels = h.available_channels = COILS;
	h.trajectory_dimensions = (uint16_t)traj_dims;
	h.center_sample = (uint16_t)(samples / 2);
	h.sample_time_us = 2.0f;
	h.idx.kspace_encode_step_1 = (uint16_t)row;
	h.scan_counter = (uint32_t)(500 + row);
	h.read_dir[0] = h.phase_dir[1] = h.slice_dir[2] = 1.0f;
	if (reverse)
		ismrmrd_set_flag(&h.flags, ISMRMRD_ACQ_IS_REVERSE);
	return h;
}

/* Line `row` sampled at m positions k (double) into data [coil][m] and traj (float). */
static void sample_line(const object *o, long row, long m, const double *k, float complex *data, float *traj)
{
	for (long j = 0; j < m; j++) {
		double complex s = object_at(o, row - NY / 2, k[j]);
		for (int c = 0; c < COILS; c++)
			data[j + m * c] = (float complex)(coil_weight(c) * s);
		if (traj)
			traj[j] = (float)k[j];
	}
}

/* How a scan's lines are sent: every line ramp-sampled (odd ones reversed in time, every third
 * reversed one also flagged reverse, which traj overrides) except every fourth, a plain
 * Cartesian line of plain_samples (nx integer positions, or 2 nx half-integer ones: oversampled)
 * — or, with all_plain, every line plain. */
static r5_scan *build(const char *header, const object *o, long m, long plain_samples, int all_plain)
{
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(header, strlen(header), NULL, &b), R5_OK);
	long n_max = m > plain_samples ? m : plain_samples;
	double *k = malloc(sizeof *k * (size_t)n_max);
	float *traj = malloc(sizeof *traj * (size_t)n_max);
	float complex *data = malloc(sizeof *data * (size_t)(n_max * COILS));
	assert_true(k && traj && data);
	long bytes0 = r5_scan_builder_bytes(b);
	for (long row = 0; row < NY; row++) {
		int plain = all_plain || row % 4 == 0;
		ISMRMRD_AcquisitionHeader h;
		if (plain) {
			for (long j = 0; j < plain_samples; j++)
				k[j] = (double)(j - plain_samples / 2) * (double)o->nx / (double)plain_samples;
			sample_line(o, row, plain_samples, k, data, NULL);
			h = line_head(row, plain_samples, 0, 0);
			assert_int_equal(r5_scan_builder_add(b, &h, data, NULL), R5_OK);
		} else {
			int reversed = row % 2;
			trapezoid(m, -(double)(o->nx / 2), (double)(o->nx / 2), 0.2, reversed, k);
			sample_line(o, row, m, k, data, traj);
			h = line_head(row, m, 1, reversed && row % 3 == 0);
			r5_status s = r5_scan_builder_add(b, &h, data, traj);
			if (s != R5_OK)
				fail_msg("row %ld: %s", row, r5_last_error());
		}
	}
	if (!all_plain) /* the plan's matrices are counted */
		assert_true(r5_scan_builder_bytes(b) > bytes0 + 2L * o->nx * m * (long)sizeof(double complex));
	free(k);
	free(traj);
	free(data);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_builder_finish(b, &scan), R5_OK);
	return scan;
}

static object random_object(long nx)
{
	object o;
	o.nx = nx;
	for (int b = 0; b < BLOBS; b++) {
		o.amplitude[b] = 1.0 + 0.5 * uniform();
		o.centre[b] = 0.2 * uniform() * (double)nx;
		o.sigma[b] = (0.06 + 0.01 * uniform()) * (double)nx;
		random_line(NY, o.profile[b]);
	}
	return o;
}

/* The Cartesian k-space of the object [nx, NY, 1, COILS] */
static double complex *cartesian(const object *o)
{
	long nx = o->nx;
	double complex *want = malloc(sizeof *want * (size_t)(nx * NY * COILS));
	assert_non_null(want);
	for (long row = 0; row < NY; row++)
		for (long i = 0; i < nx; i++) {
			double complex s = object_at(o, row - NY / 2, (double)(i - nx / 2));
			for (int c = 0; c < COILS; c++)
				want[i + nx * (row + NY * c)] = coil_weight(c) * s;
		}
	return want;
}

static double relative_difference(long n, const float complex *a, const double complex *want_d,
				  const float complex *want_f)
{
	double err = 0, norm = 0;
	for (long i = 0; i < n; i++) {
		double complex w = want_d ? want_d[i] : (double complex)want_f[i];
		err += pow(cabs(a[i] - w), 2);
		norm += pow(cabs(w), 2);
	}
	return sqrt(err / norm);
}

static void test_builder_epi(void **state)
{
	(void)state;
	rng_state = 4;
	enum { NX = 32, M = 40 };
	object o = random_object(NX);
	r5_scan *scan = build(epi_xml("epi", NX, NX), &o, M, NX, 0);
	const r5_array *k = scan->kspace;
	assert_int_equal(k->dims[0], NX);
	assert_int_equal(k->dims[1], NY);
	assert_int_equal(k->dims[3], COILS);
	assert_int_equal(scan->readout_oversampling, 1);
	double complex *want = cartesian(&o);
	for (long row = 0; row < NY; row++)
		assert_true(scan->sampled[row] && scan->imaging[row]);
	double err = relative_difference(NX * NY * COILS, k->data, want, NULL);
	printf("ramp-sampled EPI through the builder: relative error %.2e\n", err);
	if (!(err <= 1e-5))
		fail_msg("assembled k-space differs from the Cartesian one by %g (relative)", err);
	free(want);
	r5_scan_free(scan);
}

/* A 2x oversampled header (encoded x 64, recon 32): the regridded lines go through the same
 * oversampling removal as plain lines of 64 samples. */
static void test_builder_oversampled_header(void **state)
{
	(void)state;
	rng_state = 5;
	enum { EX = 64, M = 80 };
	object o = random_object(EX);
	const char *x = epi_xml("cartesian", EX, EX / 2);
	char header[sizeof xml];
	memcpy(header, x, sizeof header);
	r5_scan *ramp = build(header, &o, M, EX, 0);
	r5_scan *plain = build(header, &o, M, EX, 1);
	assert_int_equal(ramp->kspace->dims[0], EX / 2);
	assert_int_equal(ramp->readout_oversampling, 2);
	long n = r5_array_size(plain->kspace);
	assert_int_equal(r5_array_size(ramp->kspace), n);
	double err = relative_difference(n, ramp->kspace->data, NULL, plain->kspace->data);
	printf("oversampled header: regridded vs plain lines %.2e\n", err);
	assert_true(err <= 1e-5);
	r5_scan_free(ramp);
	r5_scan_free(plain);
}

/* The acquisitions oversampled against the header (plain lines of 2 NX half-integer samples,
 * the first line one of them): regridded lines land on the encoded grid directly. */
static void test_builder_oversampled_lines(void **state)
{
	(void)state;
	rng_state = 6;
	enum { NX = 32, M = 40 };
	object o = random_object(NX);
	r5_scan *scan = build(epi_xml("epi", NX, NX), &o, M, 2 * NX, 0);
	assert_int_equal(scan->readout_oversampling, 2);
	assert_int_equal(scan->kspace->dims[0], NX);
	double complex *want = cartesian(&o);
	double err = relative_difference(NX * NY * COILS, scan->kspace->data, want, NULL);
	printf("oversampled plain lines + regridded lines: relative error %.2e\n", err);
	assert_true(err <= 1e-5);
	free(want);
	r5_scan_free(scan);
}

static void expect(r5_status got, r5_status want, const char *text)
{
	assert_int_equal(got, want);
	if (!strstr(r5_last_error(), text))
		fail_msg("message '%s' lacks '%s'", r5_last_error(), text);
}

static void test_builder_refusals(void **state)
{
	(void)state;
	rng_state = 7;
	enum { NX = 32, M = 40 };
	object o = random_object(NX);
	double k[M];
	float traj[M];
	float complex data[M * COILS];
	trapezoid(M, -NX / 2, NX / 2, 0.2, 0, k);
	sample_line(&o, 3, M, k, data, traj);
	const char *x = epi_xml("epi", NX, NX);
	r5_scan_builder *b = NULL;
	assert_int_equal(r5_scan_builder_create(x, strlen(x), NULL, &b), R5_OK);
	ISMRMRD_AcquisitionHeader h = line_head(3, M, 1, 0);

	traj[7] = NAN;
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "scan_counter 503");
	assert_non_null(strstr(r5_last_error(), "sample 7"));
	traj[7] = 17.5f; /* the grid is -16 .. 15: 2 beyond is 17 */
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "outside [-18, 17]");
	assert_non_null(strstr(r5_last_error(), "scan_counter 503"));
	traj[7] = -18.5f;
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "outside");
	traj[7] = (float)k[7];
	h.number_of_samples = NX / 2 - 1;
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "too few samples");
	assert_non_null(strstr(r5_last_error(), "scan_counter 503"));
	h.number_of_samples = M;
	h.discard_post = M - NX / 2 + 1; /* the kept samples count */
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "too few samples");
	h.discard_post = 0;
	expect(r5_scan_builder_add(b, &h, data, NULL), R5_EINVAL, "no traj array");
	{ /* more than 8 samples per grid point */
		long many = 8 * NX + 1;
		float *many_traj = calloc((size_t)many, sizeof *many_traj);
		float complex *many_data = calloc((size_t)(many * COILS), sizeof *many_data);
		assert_true(many_traj && many_data);
		ISMRMRD_AcquisitionHeader hm = line_head(3, many, 1, 0);
		expect(r5_scan_builder_add(b, &hm, many_data, many_traj), R5_EINVAL, "more than 8 samples per grid point");
		assert_non_null(strstr(r5_last_error(), "scan_counter 503"));
		free(many_traj);
		free(many_data);
	}
	/* after the refusals the same line is taken */
	assert_int_equal(r5_scan_builder_add(b, &h, data, traj), R5_OK);
	r5_scan_builder_destroy(b);

	/* a 1D trajectory under a non-Cartesian header */
	char radial[sizeof xml];
	snprintf(radial, sizeof radial, "%s", epi_xml("radial", NX, NX));
	assert_int_equal(r5_scan_builder_create(radial, strlen(radial), NULL, &b), R5_OK);
	expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "trajectory_dimensions 1");
	assert_non_null(strstr(r5_last_error(), "scan_counter 503"));
	assert_non_null(strstr(r5_last_error(), "'radial'"));
	r5_scan_builder_destroy(b);

	/* no encoded x to regrid onto */
	const char *no_x = "<?xml version=\"1.0\"?><ismrmrdHeader xmlns=\"http://www.ismrm.org/ISMRMRD\"><encoding>"
			   "<encodedSpace><matrixSize><y>24</y><z>1</z></matrixSize></encodedSpace><trajectory>epi"
			   "</trajectory></encoding></ismrmrdHeader>";
	if (r5_scan_builder_create(no_x, strlen(no_x), NULL, &b) == R5_OK) {
		expect(r5_scan_builder_add(b, &h, data, traj), R5_EINVAL, "encodedSpace/matrixSize/x");
		r5_scan_builder_destroy(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_on_grid_permutation),
		cmocka_unit_test(test_trapezoid_band_limited),
		cmocka_unit_test(test_sharp_edged_object),
		cmocka_unit_test(test_few_samples_finite),
		cmocka_unit_test(test_plan_cache),
		cmocka_unit_test(test_builder_epi),
		cmocka_unit_test(test_builder_oversampled_header),
		cmocka_unit_test(test_builder_oversampled_lines),
		cmocka_unit_test(test_builder_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
