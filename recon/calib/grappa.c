/* GRAPPA kernel calibration, image-space application and analytic g-factor (grappa.h).
 * Griswold et al., MRM 47:1202 (2002); Breuer et al., MRM 62:739 (2009).
 *
 * Geometry: a kernel placement ("base") sits on a sampled grid point b. Its sources are
 * b + (jx, Ry jy, Rz jz) for jx in [-hx, hx] and jy, jz in the source ranges below; its targets
 * are the missing points b + (0, ry, rz), 0 <= ry < Ry, 0 <= rz < Rz, (ry, rz) != (0, 0). The
 * displacement of a source from its target, d = source - target, differs between target
 * offsets modulo R, so every offset's weights fit in one convolution kernel together with the
 * identity at d = 0. */
#include "grappa.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/dense.h"
#include "../core/fft.h"
#include "../core/log.h"

const r5_grappa_conf r5_grappa_defaults = {
	.kernel_x = 0,
	.src_lines = 0,
	.lambda = 1e-3f,
	.max_fits = 0,
};

void r5_grappa_kernel_free(r5_grappa_kernel *kernel)
{
	if (!kernel)
		return;
	r5_array_free(kernel->weights);
	free(kernel);
}

/* --- sampling pattern --------------------------------------------------------------------- */

static long gcd_long(long a, long b)
{
	a = labs(a);
	b = labs(b);
	while (b) {
		long t = a % b;
		a = b;
		b = t;
	}
	return a;
}

struct outside_lines {
	long count, first_y, first_z, gcd_y, gcd_z;
	long min_y, max_y, min_z, max_z;
};

/* Sampled points outside the calibration block: how many, the gcd of their distances, extent. */
static void scan_outside(const unsigned char *mask, long ny, long nz, const long calib_yz[2], struct outside_lines *o)
{
	long y0 = ny / 2 - calib_yz[0] / 2, z0 = nz / 2 - calib_yz[1] / 2;
	memset(o, 0, sizeof *o);
	for (long z = 0; z < nz; z++) {
		for (long y = 0; y < ny; y++) {
			int inside = y >= y0 && y < y0 + calib_yz[0] && z >= z0 && z < z0 + calib_yz[1];
			if (!mask[y + ny * z] || inside)
				continue;
			if (o->count == 0) {
				o->first_y = o->min_y = o->max_y = y;
				o->first_z = o->min_z = o->max_z = z;
			}
			o->gcd_y = gcd_long(o->gcd_y, y - o->first_y);
			o->gcd_z = gcd_long(o->gcd_z, z - o->first_z);
			o->min_y = y < o->min_y ? y : o->min_y;
			o->max_y = y > o->max_y ? y : o->max_y;
			o->min_z = z < o->min_z ? z : o->min_z;
			o->max_z = z > o->max_z ? z : o->max_z;
			o->count++;
		}
	}
}

static r5_status check_header_accel(const int header_accel[2], const int accel[2])
{
	static const char *const names[2] = {"ky", "kz"};
	for (int d = 0; d < 2; d++) {
		if (!header_accel || header_accel[d] <= 1 || header_accel[d] == accel[d])
			continue;
		return r5_set_error(R5_EINVAL,
				    "GRAPPA sampling: header says R=%d along %s but sampled lines outside the "
				    "calibration region are spaced by %d",
				    header_accel[d], names[d], accel[d]);
	}
	return R5_OK;
}

r5_status r5_grappa_sampling(const unsigned char *mask, long ny, long nz, const long calib_yz[2],
			     const int header_accel[2], int accel[2], int offset[2])
{
	if (!mask || ny < 1 || nz < 1)
		return r5_set_error(R5_EINVAL, "GRAPPA sampling: no sampling mask");
	struct outside_lines o;
	scan_outside(mask, ny, nz, calib_yz, &o);
	accel[0] = accel[1] = 1;
	offset[0] = offset[1] = 0;
	if (o.count == 0) {
		if (header_accel && (header_accel[0] > 1 || header_accel[1] > 1))
			r5_warn("GRAPPA sampling: header says R=%dx%d but every line was sampled; nothing to fill",
				header_accel[0], header_accel[1]);
		return R5_OK;
	}
	/* one row only: the spacing is unknown there, take the header's word */
	accel[0] = o.gcd_y ? (int)o.gcd_y : (header_accel && header_accel[0] > 1 ? header_accel[0] : 1);
	accel[1] = o.gcd_z ? (int)o.gcd_z : (header_accel && header_accel[1] > 1 ? header_accel[1] : 1);
	offset[0] = (int)(o.first_y % accel[0]);
	offset[1] = (int)(o.first_z % accel[1]);
	R5_TRY(check_header_accel(header_accel, accel));
	/* uniform: most grid points in the sampled extent outside the block are there (an elliptical
	 * shutter in 3D leaves about pi/4 of them) */
	long y0 = ny / 2 - calib_yz[0] / 2, z0 = nz / 2 - calib_yz[1] / 2, grid = 0;
	for (long z = o.min_z; z <= o.max_z; z += accel[1])
		for (long y = o.min_y; y <= o.max_y; y += accel[0])
			grid += !(y >= y0 && y < y0 + calib_yz[0] && z >= z0 && z < z0 + calib_yz[1]);
	if ((double)o.count < 0.6 * (double)grid)
		return r5_set_error(R5_EINVAL,
				    "GRAPPA sampling: lines outside the calibration region are not uniformly "
				    "undersampled (%ld of %ld points of the %dx%d grid sampled); GRAPPA needs uniform "
				    "undersampling",
				    o.count, grid, accel[0], accel[1]);
	return R5_OK;
}

/* --- kernel geometry ---------------------------------------------------------------------- */

struct geom {
	long n[3];          /* grid */
	long R[3];          /* 1, Ry, Rz */
	long j0[3], j1[3];  /* source index range per dimension: offset R j */
	long half[3];       /* kernel half widths (displacements) */
	long fit0[3], nfit[3]; /* first base position and number of them in the ACS block */
	long n_src, n_cls, n_coils;
};

static r5_status geom_make(const long n[3], long n_coils, const long calib[3], const int accel[2],
			   const r5_grappa_conf *conf, struct geom *g)
{
	memset(g, 0, sizeof *g);
	int n_accel = (accel[0] > 1) + (accel[1] > 1);
	/* measured on Shepp-Logan phantoms: 7 is better than 5 for ky, worse with 2 x 2 ky-kz sources */
	long kx = conf->kernel_x > 0 ? conf->kernel_x : (n_accel > 1 ? 5 : 7);
	kx -= kx % 2 == 0;
	if (kx > n[0])
		kx = n[0] - (n[0] % 2 == 0); /* k-space with its readout transformed already: nx = 1 */
	/* 4 source lines per accelerated dimension; in ky-kz with a readout 4 x 4 x kx x coils
	 * unknowns grow fast (the A^H A build is rows x n^2), so 2 x 2 beyond ~800 of them */
	long src = conf->src_lines > 0 ? conf->src_lines
				       : (n_accel > 1 && kx > 1 && 16 * kx * n_coils > 800 ? 2 : 4);
	src = src < 2 ? 2 : src - src % 2;
	g->n_coils = n_coils;
	g->n_src = 1;
	g->n_cls = (long)accel[0] * accel[1] - 1;
	for (int d = 0; d < 3; d++) {
		g->n[d] = n[d];
		g->R[d] = d == 0 ? 1 : accel[d - 1];
		if (g->R[d] > 1) {
			g->j0[d] = -(src / 2 - 1);
			g->j1[d] = src / 2;
		} else {
			long h = d == 0 ? kx / 2 : (n[d] > 1 ? 1 : 0);
			g->j0[d] = -h;
			g->j1[d] = h;
		}
		long lo = g->R[d] * g->j0[d] - (g->R[d] - 1), hi = g->R[d] * g->j1[d];
		g->half[d] = labs(lo) > hi ? labs(lo) : hi;
		g->n_src *= g->j1[d] - g->j0[d] + 1;
		long a = calib[d] < n[d] ? calib[d] : n[d];
		long span = g->R[d] * (g->j1[d] - g->j0[d]);
		if (2 * g->half[d] + 1 > n[d] || a - span < 1) {
			static const char *const names[3] = {"readout", "ky", "kz"};
			return r5_set_error(R5_EINVAL,
					    "GRAPPA calibration: the calibration region is %ld wide along %s but the "
					    "kernel (R=%ld, %ld source points) spans %ld",
					    a, names[d], g->R[d], g->j1[d] - g->j0[d] + 1, span + 1);
		}
		g->nfit[d] = a - span;
		g->fit0[d] = n[d] / 2 - a / 2 - g->R[d] * g->j0[d];
	}
	return R5_OK;
}

/* Source s -> its index offsets (jx, jy, jz). */
static void geom_source(const struct geom *g, long s, long j[3])
{
	for (int d = 0; d < 3; d++) {
		long w = g->j1[d] - g->j0[d] + 1;
		j[d] = g->j0[d] + s % w;
		s /= w;
	}
}

/* Target class c (0-based, skipping (0, 0)) -> (ry, rz). */
static void geom_target(const struct geom *g, long cls, long r[2])
{
	long k = cls + 1;
	r[0] = k % g->R[1];
	r[1] = k / g->R[1];
}

/* --- calibration ---------------------------------------------------------------------------- */

/* A [rows, n_src coils] and T [rows, n_cls coils] from the ACS block, fits spread evenly. */
static void fill_system(const struct geom *g, const float complex *k, long rows, float complex *A, float complex *T)
{
	long total = g->nfit[0] * g->nfit[1] * g->nfit[2];
	long nx = g->n[0], ny = g->n[1], nz = g->n[2], C = g->n_coils;
	long coil_stride = nx * ny * nz;
	for (long row = 0; row < rows; row++) {
		long idx = (long)((double)row * (double)total / (double)rows);
		long b[3] = {idx % g->nfit[0], (idx / g->nfit[0]) % g->nfit[1], idx / (g->nfit[0] * g->nfit[1])};
		for (int d = 0; d < 3; d++)
			b[d] += g->fit0[d];
		for (long s = 0; s < g->n_src; s++) {
			long j[3];
			geom_source(g, s, j);
			long pos = (b[0] + j[0]) + nx * ((b[1] + g->R[1] * j[1]) + ny * (b[2] + g->R[2] * j[2]));
			for (long c = 0; c < C; c++)
				A[row + rows * (c + C * s)] = k[pos + coil_stride * c];
		}
		for (long cls = 0; cls < g->n_cls; cls++) {
			long r[2];
			geom_target(g, cls, r);
			long pos = b[0] + nx * ((b[1] + r[0]) + ny * (b[2] + r[1]));
			for (long c = 0; c < C; c++)
				T[row + rows * (c + C * cls)] = k[pos + coil_stride * c];
		}
	}
	(void)nz;
}

/* C = A^H B on the context (A rows x m, B rows x n, column-major, host in and out), summed over
 * blocks of rows of about R5_PROGRESS_CHUNK_MACS multiply-adds with a stop check after each;
 * fractions lo..hi. */
static r5_status gram(r5_ctx *ctx, const r5_array *A, const r5_array *B, const r5_progress *progress, double lo,
		      double hi, r5_array **out)
{
	r5_array *a = NULL, *b = NULL, *c = NULL;
	long rows = A->dims[0], m = A->dims[1], n = B->dims[1];
	long cdims[R5_DIMS];
	r5_dims_ones(cdims);
	cdims[0] = m;
	cdims[1] = n;
	r5_status s = r5_array_to_work(ctx, A, &a);
	if (s == R5_OK)
		s = A == B ? R5_OK : r5_array_to_work(ctx, B, &b);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, cdims, &c);
	long block = R5_PROGRESS_CHUNK_MACS / (m * n);
	block = block < 1 ? 1 : block;
	for (long r0 = 0; r0 < rows && s == R5_OK; r0 += block) {
		long nr = r0 + block < rows ? block : rows - r0;
		s = r5_zgemm(ctx, 1, m, n, nr, 1.0f, a->data + r0, rows,
			     (b ? b : a)->data + r0, rows, r0 ? 1.0f : 0.0f, c->data, m);
		if (s == R5_OK)
			s = r5_progress_check(progress, "grappa calibration", lo + (hi - lo) * (double)(r0 + nr) / (double)rows);
	}
	if (s == R5_OK)
		s = r5_array_to_host(ctx, c, out);
	r5_array_free(a);
	r5_array_free(b);
	r5_array_free(c);
	return s;
}

/* X = (AhA + lambda trace/n I)^-1 AhT in double; returns the relative residual via the normal
 * equations: |AX - T|^2 = X^H AhA X - 2 Re X^H AhT + |T|^2. */
static r5_status solve_normal(const r5_array *AhA, const r5_array *AhT, double t_norm2, float lambda,
			      double complex **out, double *residual)
{
	long n = AhA->dims[0], m = AhT->dims[1];
	double complex *L = malloc(sizeof *L * (size_t)(n * n));
	double complex *X = malloc(sizeof *X * (size_t)(n * m));
	if (!L || !X) {
		free(L);
		free(X);
		return r5_set_error(R5_ENOMEM, "GRAPPA calibration: %ld x %ld normal equations", n, m);
	}
	double trace = 0;
	for (long i = 0; i < n; i++)
		trace += crealf(AhA->data[i + n * i]);
	double reg = (lambda > 0 ? lambda : 1e-6) * trace / (double)n;
	for (long i = 0; i < n * n; i++)
		L[i] = AhA->data[i];
	for (long i = 0; i < n; i++)
		L[i + n * i] += reg;
	for (long i = 0; i < n * m; i++)
		X[i] = AhT->data[i];
	r5_status s = R5_OK;
	if (r5_dense_cholesky(n, L, 0, 0) >= 0)
		s = r5_set_error(R5_EINVAL, "GRAPPA calibration: normal equations not positive definite "
					    "(all-zero calibration data?)");
	if (s == R5_OK) {
		r5_dense_cholesky_solve(n, L, m, X);
		double r2 = t_norm2;
		for (long c = 0; c < m; c++) {
			const double complex *x = X + n * c;
			for (long i = 0; i < n; i++) {
				double complex ax = 0;
				for (long k = 0; k < n; k++)
					ax += AhA->data[i + n * k] * x[k];
				r2 += creal(conj(x[i]) * ax) - 2 * creal(conj(x[i]) * AhT->data[i + n * c]);
			}
		}
		*residual = t_norm2 > 0 ? sqrt(fmax(r2, 0) / t_norm2) : 0;
	}
	free(L);
	if (s != R5_OK) {
		free(X);
		return s;
	}
	*out = X;
	return R5_OK;
}

/* Scatters the solved weights X [n_src coils, n_cls coils] into the flipped kernel. */
static void fill_kernel(const struct geom *g, const double complex *X, r5_grappa_kernel *k)
{
	long w[3] = {k->width[0], k->width[1], k->width[2]}, C = g->n_coils, n = g->n_src * C;
	float complex *W = k->weights->data;
	memset(W, 0, sizeof *W * (size_t)r5_array_size(k->weights));
	long centre = g->half[0] + w[0] * (g->half[1] + w[1] * g->half[2]);
	long block = w[0] * w[1] * w[2];
	for (long c = 0; c < C; c++)
		W[centre + block * (c + C * c)] = 1;
	for (long cls = 0; cls < g->n_cls; cls++) {
		long r[2];
		geom_target(g, cls, r);
		for (long s = 0; s < g->n_src; s++) {
			long j[3];
			geom_source(g, s, j);
			long d[3] = {j[0], g->R[1] * j[1] - r[0], g->R[2] * j[2] - r[1]};
			long at = (g->half[0] - d[0]) + w[0] * ((g->half[1] - d[1]) + w[1] * (g->half[2] - d[2]));
			for (long co = 0; co < C; co++)
				for (long ci = 0; ci < C; ci++)
					W[at + block * (ci + C * co)] = (float complex)X[(ci + C * s) + n * (co + C * cls)];
		}
	}
}

static r5_status kernel_alloc(const struct geom *g, const int accel[2], r5_grappa_kernel **out)
{
	r5_grappa_kernel *k = calloc(1, sizeof *k);
	if (!k)
		return r5_set_error(R5_ENOMEM, "GRAPPA kernel");
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < 3; d++)
		dims[d] = k->width[d] = 2 * g->half[d] + 1;
	dims[3] = dims[4] = g->n_coils;
	k->accel[0] = accel[0];
	k->accel[1] = accel[1];
	k->n_coils = g->n_coils;
	r5_status s = r5_array_zeros(NULL, R5_HOST, dims, &k->weights);
	if (s != R5_OK) {
		free(k);
		return s;
	}
	*out = k;
	return R5_OK;
}

static r5_status check_kspace(const r5_array *kspace, const char *what)
{
	if (!kspace || kspace->where != R5_HOST || !r5_array_is_contiguous(kspace))
		return r5_set_error(R5_EINVAL, "GRAPPA %s: k-space must be a contiguous host array", what);
	for (int d = 4; d < R5_DIMS; d++)
		if (kspace->dims[d] != 1)
			return r5_set_error(R5_EINVAL, "GRAPPA %s: one frame [x, y, z, coil] at a time (dim %d is %ld)",
					    what, d, kspace->dims[d]);
	return R5_OK;
}

static r5_status alloc_2d(long rows, long cols, r5_array **out)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = rows;
	dims[1] = cols;
	return r5_array_alloc_host(dims, out);
}

r5_status r5_grappa_calibrate(r5_ctx *ctx, const r5_array *kspace, const long calib[3], const int accel[2],
			      const r5_grappa_conf *conf, r5_grappa_kernel **out)
{
	*out = NULL;
	R5_TRY(check_kspace(kspace, "calibration"));
	if (!conf)
		conf = &r5_grappa_defaults;
	if (accel[0] < 1 || accel[1] < 1 || (accel[0] == 1 && accel[1] == 1))
		return r5_set_error(R5_EINVAL, "GRAPPA calibration: acceleration %dx%d has nothing to fill", accel[0],
				    accel[1]);
	struct geom g;
	R5_TRY(geom_make(kspace->dims, kspace->dims[R5_DIM_COIL], calib, accel, conf, &g));
	long n = g.n_src * g.n_coils, m = g.n_cls * g.n_coils;
	long total = g.nfit[0] * g.nfit[1] * g.nfit[2];
	long cap = conf->max_fits > 0 ? conf->max_fits : 6 * n;
	long rows = total < cap ? total : cap;
	if (rows < n)
		r5_warn("GRAPPA calibration: %ld fits for %ld unknowns; regularisation carries the rest", rows, n);
	r5_array *A = NULL, *T = NULL, *AhA = NULL, *AhT = NULL;
	double complex *X = NULL;
	double t_norm2 = 0, residual = 0;
	r5_status s = alloc_2d(rows, n, &A);
	if (s == R5_OK)
		s = alloc_2d(rows, m, &T);
	if (s == R5_OK) {
		fill_system(&g, kspace->data, rows, A->data, T->data);
		for (long i = 0; i < rows * m; i++)
			t_norm2 += (double)crealf(T->data[i] * conjf(T->data[i]));
		s = gram(ctx, A, A, conf->progress, 0.0, 0.8, &AhA);
	}
	if (s == R5_OK)
		s = gram(ctx, A, T, conf->progress, 0.8, 0.9, &AhT);
	r5_array_free(A);
	r5_array_free(T);
	if (s == R5_OK)
		s = solve_normal(AhA, AhT, t_norm2, conf->lambda, &X, &residual);
	if (s == R5_OK)
		s = r5_progress_check(conf->progress, "grappa calibration", 1.0);
	r5_array_free(AhA);
	r5_array_free(AhT);
	r5_grappa_kernel *k = NULL;
	if (s == R5_OK)
		s = kernel_alloc(&g, accel, &k);
	if (s == R5_OK) {
		fill_kernel(&g, X, k);
		k->n_fits = rows;
		k->residual = residual;
		r5_debug("GRAPPA calibration: R=%dx%d, %ld fits, %ld unknowns, kernel %ldx%ldx%ld, residual %.3g",
			 accel[0], accel[1], rows, n, k->width[0], k->width[1], k->width[2], residual);
		*out = k;
	}
	free(X);
	if (s == R5_ECANCELLED || s == R5_ETIMEDOUT)
		return r5_error_context(s, "GRAPPA calibration");
	return s;
}

/* --- application ---------------------------------------------------------------------------- */

struct apply_work {
	r5_array *small, *mix, *q, *q_rss, *p_rss;
	long group; /* input coils per mixing group */
};

static void apply_work_free(struct apply_work *w)
{
	r5_array_free(w->small);
	r5_array_free(w->mix);
	r5_array_free(w->q);
	r5_array_free(w->q_rss);
	r5_array_free(w->p_rss);
}

static r5_status apply_check(const r5_grappa_kernel *kernel, const r5_array *aliased, const r5_array *coil_images,
			     const r5_array *weights, const r5_array *gfactor)
{
	if (!kernel || !aliased || !coil_images || !r5_dims_equal(aliased->dims, coil_images->dims))
		return r5_set_error(R5_EINVAL, "GRAPPA apply: aliased and coil images must have the same shape");
	if (aliased->dims[R5_DIM_COIL] != kernel->n_coils)
		return r5_set_error(R5_EINVAL, "GRAPPA apply: kernel calibrated for %ld coils, data has %ld",
				    kernel->n_coils, aliased->dims[R5_DIM_COIL]);
	for (int d = 0; d < 3; d++)
		if (kernel->width[d] > aliased->dims[d])
			return r5_set_error(R5_EINVAL, "GRAPPA apply: kernel width %ld exceeds the grid (%ld) along dim %d",
					    kernel->width[d], aliased->dims[d], d);
	for (int d = 4; d < R5_DIMS; d++)
		if (aliased->dims[d] != 1)
			return r5_set_error(R5_EINVAL, "GRAPPA apply: one frame [x, y, z, coil] at a time");
	if (gfactor && (!weights || !r5_dims_equal(weights->dims, aliased->dims)))
		return r5_set_error(R5_EINVAL, "GRAPPA apply: the g-factor needs coil combination weights");
	return R5_OK;
}

/* small: one group's kernel row [wx, wy, wz, group]; mix: its image-space version on the grid. */
static r5_status apply_alloc(r5_ctx *ctx, const r5_grappa_kernel *kernel, const r5_array *aliased, int with_g,
			     struct apply_work *w)
{
	long voxels = aliased->dims[0] * aliased->dims[1] * aliased->dims[2], dims[R5_DIMS];
	w->group = R5_PROGRESS_CHUNK_VALUES / voxels;
	w->group = w->group < 1 ? 1 : w->group > kernel->n_coils ? kernel->n_coils : w->group;
	r5_dims_copy(dims, kernel->weights->dims);
	dims[3] = w->group;
	dims[4] = 1;
	R5_TRY(r5_array_alloc_work(ctx, dims, &w->small));
	r5_dims_copy(dims, aliased->dims);
	dims[R5_DIM_COIL] = w->group;
	R5_TRY(r5_array_alloc_work(ctx, dims, &w->mix));
	if (!with_g)
		return R5_OK;
	R5_TRY(r5_array_zeros(ctx, r5_ctx_residency(ctx), aliased->dims, &w->q));
	r5_dims_copy(dims, aliased->dims);
	dims[R5_DIM_COIL] = 1;
	R5_TRY(r5_array_alloc_work(ctx, dims, &w->q_rss));
	return r5_array_alloc_work(ctx, dims, &w->p_rss);
}

/* View of coils c0 .. c0+n-1 of a contiguous [x, y, z, coils] array. */
static r5_status coil_view(r5_ctx *ctx, const r5_array *a, long c0, long n, r5_array **out)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, a->dims);
	dims[R5_DIM_COIL] = n;
	long voxels = dims[0] * dims[1] * dims[2];
	return r5_array_view(a->where, a->ctx ? a->ctx : ctx, dims, a->data + voxels * c0, out);
}

/* *mix = W[cout, cin0 .. cin0+n-1] over the grid: those kernel rows zero-padded, IFFT, times
 * sqrt(N); *mix is a view of w->mix with n coils. */
static r5_status mixing_rows(r5_ctx *ctx, const r5_grappa_kernel *kernel, long cout, long cin0, long n,
			     struct apply_work *w, r5_array **mix)
{
	long block = kernel->width[0] * kernel->width[1] * kernel->width[2];
	r5_array *row = NULL, *small = NULL;
	R5_TRY(coil_view(ctx, w->small, 0, n, &small));
	r5_status s = r5_array_view(R5_HOST, NULL, small->dims, kernel->weights->data + block * (cin0 + kernel->n_coils * cout),
				    &row);
	if (s == R5_OK)
		s = r5_array_copy(ctx, small, row);
	r5_array_free(row);
	if (s == R5_OK)
		s = coil_view(ctx, w->mix, 0, n, mix);
	if (s == R5_OK)
		s = r5_zresize_centered(ctx, *mix, small);
	r5_array_free(small);
	unsigned long flags = 0;
	double n_grid = 1;
	for (int d = 0; d < 3; d++) {
		if (w->mix->dims[d] > 1)
			flags |= R5_FLAG(d);
		n_grid *= (double)w->mix->dims[d];
	}
	if (s == R5_OK)
		s = r5_ifft(ctx, flags, *mix, *mix);
	if (s == R5_OK)
		s = r5_zscale(ctx, *mix, (float)sqrt(n_grid));
	return s;
}

/* g = |q| / (R |p|) */
static r5_status gfactor_finish(r5_ctx *ctx, const r5_grappa_kernel *kernel, const r5_array *weights,
				struct apply_work *w, r5_array *gfactor)
{
	R5_TRY(r5_zrss(ctx, w->q_rss, w->q, R5_DIM_COIL));
	R5_TRY(r5_zrss(ctx, w->p_rss, weights, R5_DIM_COIL));
	R5_TRY(r5_zunary(ctx, R5_UNARY_RECIP, w->p_rss, w->p_rss));
	R5_TRY(r5_zmul(ctx, gfactor, w->q_rss, w->p_rss, 0));
	return r5_zscale(ctx, gfactor, 1.0f / (float)(kernel->accel[0] * kernel->accel[1]));
}

/* out_c (+)= sum over the group's input coils of mix_cin a_cin; q[cin] += mix_cin conj(p_c). */
static r5_status mix_group(r5_ctx *ctx, const r5_array *mix, const r5_array *aliased, long cin0, r5_array *out_c,
			   const r5_array *p_c, struct apply_work *w)
{
	r5_status s = R5_OK;
	for (long i = 0; i < mix->dims[R5_DIM_COIL] && s == R5_OK; i++) {
		r5_array *m = NULL, *a = NULL, *q = NULL;
		s = coil_view(ctx, mix, i, 1, &m);
		if (s == R5_OK)
			s = coil_view(ctx, aliased, cin0 + i, 1, &a);
		if (s == R5_OK)
			s = r5_zmul(ctx, out_c, m, a, cin0 + i ? R5_ZMUL_ACCUM : 0);
		/* q[cin] += W[c, cin] conj(p[c]): |q| = |W^H p| */
		if (s == R5_OK && p_c)
			s = coil_view(ctx, w->q, cin0 + i, 1, &q);
		if (s == R5_OK && p_c)
			s = r5_zmul(ctx, q, m, p_c, R5_ZMUL_CONJ2 | R5_ZMUL_ACCUM);
		r5_array_free(m);
		r5_array_free(a);
		r5_array_free(q);
	}
	return s;
}

r5_status r5_grappa_apply(r5_ctx *ctx, const r5_grappa_kernel *kernel, const r5_array *aliased,
			  r5_array *coil_images, const r5_array *weights, r5_array *gfactor,
			  const r5_progress *progress)
{
	R5_TRY(apply_check(kernel, aliased, coil_images, weights, gfactor));
	struct apply_work w = {0};
	r5_status s = apply_alloc(ctx, kernel, aliased, gfactor != NULL, &w);
	long C = kernel->n_coils;
	for (long c = 0; s == R5_OK && c < C; c++) {
		r5_array *out_c = NULL, *p_c = NULL;
		s = coil_view(ctx, coil_images, c, 1, &out_c);
		if (s == R5_OK && gfactor)
			s = coil_view(ctx, weights, c, 1, &p_c);
		for (long cin0 = 0; cin0 < C && s == R5_OK; cin0 += w.group) {
			long n = cin0 + w.group < C ? w.group : C - cin0;
			r5_array *mix = NULL;
			s = mixing_rows(ctx, kernel, c, cin0, n, &w, &mix);
			if (s == R5_OK)
				s = mix_group(ctx, mix, aliased, cin0, out_c, p_c, &w);
			r5_array_free(mix);
			if (s == R5_OK)
				s = r5_progress_check(progress, "grappa apply", ((double)c + (double)(cin0 + n) / C) / C);
		}
		r5_array_free(out_c);
		r5_array_free(p_c);
	}
	if (s == R5_OK && gfactor)
		s = gfactor_finish(ctx, kernel, weights, &w, gfactor);
	apply_work_free(&w);
	return s == R5_OK ? R5_OK : r5_error_context(s, "GRAPPA apply");
}
