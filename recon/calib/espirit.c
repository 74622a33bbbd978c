/* ESPIRiT maps (espirit.h). Threshold: singular values normalised by the largest; the pipeline
 * default is 0.02, BART's ecalib -t default 0.001 keeps more of the noise subspace. */
#include "espirit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fft.h"
#include "../core/log.h"
#include "../core/threads.h"
#include "herm_eig.h"

#define R5_PI 3.14159265358979323846

const r5_espirit_conf r5_espirit_defaults = {.kernel = 6, .calib = 24, .threshold = 0.02f, .crop = 0.8f, .n_maps = 1};

struct calib_geom {
	long c[3];  /* ACS block used */
	long kd[3]; /* kernel dims */
	long n_coils, n_kernel_pos, n_rows, n_cols;
};

/* Host copy of the centred calibration block, capped at conf->calib per dimension. */
static r5_status acs_block(r5_ctx *ctx, const r5_espirit_conf *conf, const r5_array *acs, struct calib_geom *g,
			   float complex **block)
{
	r5_array *host = NULL;
	R5_TRY(r5_array_to_host(ctx, acs, &host));
	g->n_coils = acs->dims[R5_DIM_COIL];
	for (int d = 0; d < 3; d++) {
		long n = acs->dims[d];
		g->c[d] = conf->calib > 0 && n > conf->calib ? conf->calib : n;
		g->kd[d] = n > 1 ? conf->kernel : 1;
	}
	r5_status s = R5_OK;
	for (int d = 0; d < 3 && s == R5_OK; d++)
		if (g->c[d] < g->kd[d])
			s = r5_set_error(R5_EINVAL,
					 "ESPIRiT calibration: calibration region %ld x %ld x %ld is smaller than the "
					 "kernel %d (dimension %d)", g->c[0], g->c[1], g->c[2], conf->kernel, d);
	if (s == R5_OK && (conf->kernel < 1 || conf->kernel > 32))
		s = r5_set_error(R5_EINVAL, "ESPIRiT calibration: kernel width %d (1..32 supported)", conf->kernel);
	if (s == R5_OK && (g->n_coils < 1 || g->n_coils > 64))
		s = r5_set_error(R5_EINVAL, "ESPIRiT calibration: %ld coils (1..64 supported; compress first)", g->n_coils);
	long n = g->c[0] * g->c[1] * g->c[2] * g->n_coils;
	*block = s == R5_OK ? malloc(sizeof **block * n) : NULL;
	if (s == R5_OK && !*block)
		s = r5_set_error(R5_ENOMEM, "ESPIRiT calibration block");
	if (s == R5_OK) {
		long o[3];
		for (int d = 0; d < 3; d++)
			o[d] = acs->dims[d] / 2 - g->c[d] / 2;
		long i = 0;
		for (long c = 0; c < g->n_coils; c++)
			for (long z = 0; z < g->c[2]; z++)
				for (long y = 0; y < g->c[1]; y++)
					for (long x = 0; x < g->c[0]; x++)
						(*block)[i++] = host->data[(o[0] + x) + acs->dims[0] * ((o[1] + y) + acs->dims[1] *
							((o[2] + z) + acs->dims[2] * c))];
	}
	r5_array_free(host);
	g->n_kernel_pos = g->kd[0] * g->kd[1] * g->kd[2];
	g->n_rows = (g->c[0] - g->kd[0] + 1) * (g->c[1] - g->kd[1] + 1) * (g->c[2] - g->kd[2] + 1);
	g->n_cols = g->n_kernel_pos * g->n_coils;
	return s;
}

/* Gram matrix A^H A of the calibration matrix (rows = kernel-sized patches), host double,
 * without forming A: entry ((a,c1),(b,c2)) = sum over patch origins r of
 * conj(x_c1(r+a)) x_c2(r+b), i.e. the box sum over s in a + box of q(s) = conj(x_c1(s)) x_c2(s+d),
 * d = b - a. One summed-area table of q per (c1, c2, d) gives every entry with that offset in
 * 2^3 look-ups: cost C^2 (2k-1)^3 |ACS| instead of the GEMM's rows x n^2 (20x less in 3D). */
struct gram_job {
	const struct calib_geom *g;
	const float complex *block;
	double complex *out;
};

static long sat_index(const long c[3], long x, long y, long z)
{
	return x + (c[0] + 1) * (y + (c[1] + 1) * z);
}

/* Summed-area table (zero first row/column/plane) of q for coils c1, c2 and offset d. */
static void gram_table(const struct gram_job *job, long c1, long c2, const long d[3], double complex *sat)
{
	const long *c = job->g->c;
	const float complex *x1 = job->block + c[0] * c[1] * c[2] * c1, *x2 = job->block + c[0] * c[1] * c[2] * c2;
	for (long z = 0; z <= c[2]; z++)
		for (long y = 0; y <= c[1]; y++)
			for (long x = 0; x <= c[0]; x++) {
				long i = sat_index(c, x, y, z);
				if (!x || !y || !z) {
					sat[i] = 0;
					continue;
				}
				long sx = x - 1 + d[0], sy = y - 1 + d[1], sz = z - 1 + d[2];
				double complex q = 0;
				if (sx >= 0 && sx < c[0] && sy >= 0 && sy < c[1] && sz >= 0 && sz < c[2])
					q = conj((double complex)x1[(x - 1) + c[0] * ((y - 1) + c[1] * (z - 1))]) *
					    (double complex)x2[sx + c[0] * (sy + c[1] * sz)];
				sat[i] = q + sat[sat_index(c, x - 1, y, z)] + sat[sat_index(c, x, y - 1, z)] +
					 sat[sat_index(c, x, y, z - 1)] - sat[sat_index(c, x - 1, y - 1, z)] -
					 sat[sat_index(c, x - 1, y, z - 1)] - sat[sat_index(c, x, y - 1, z - 1)] +
					 sat[sat_index(c, x - 1, y - 1, z - 1)];
			}
}

/* Box sum of the table over [lo, lo + len) per dimension. */
static double complex box_sum(const long c[3], const double complex *sat, const long lo[3], const long len[3])
{
	long x0 = lo[0], y0 = lo[1], z0 = lo[2], x1 = lo[0] + len[0], y1 = lo[1] + len[1], z1 = lo[2] + len[2];
	return sat[sat_index(c, x1, y1, z1)] - sat[sat_index(c, x0, y1, z1)] - sat[sat_index(c, x1, y0, z1)] -
	       sat[sat_index(c, x1, y1, z0)] + sat[sat_index(c, x0, y0, z1)] + sat[sat_index(c, x0, y1, z0)] +
	       sat[sat_index(c, x1, y0, z0)] - sat[sat_index(c, x0, y0, z0)];
}

/* All entries with coils (c1, c2), c1 <= c2, and kernel offsets d with d_z = dz - (k_z - 1), and
 * their Hermitian mirrors. For c1 == c2 the offsets d and -d give the same entries (mirrored),
 * so only d >= 0 (lexicographically, z first) is computed: every entry is written by one call. */
static void gram_coil_pair(const struct gram_job *job, long c1, long c2, long dz, double complex *sat)
{
	const struct calib_geom *g = job->g;
	long n = g->n_cols, K = g->n_kernel_pos, D[3], nr[3];
	for (int k = 0; k < 3; k++) {
		D[k] = 2 * g->kd[k] - 1;
		nr[k] = g->c[k] - g->kd[k] + 1;
	}
	for (long dy = 0; dy < D[1]; dy++)
		for (long dx = 0; dx < D[0]; dx++) {
			long d[3] = {dx - (g->kd[0] - 1), dy - (g->kd[1] - 1), dz - (g->kd[2] - 1)};
			if (c1 == c2 && (d[2] < 0 || (d[2] == 0 && (d[1] < 0 || (d[1] == 0 && d[0] < 0)))))
				continue;
			gram_table(job, c1, c2, d, sat);
			for (long a = 0; a < K; a++) {
				long av[3] = {a % g->kd[0], (a / g->kd[0]) % g->kd[1], a / (g->kd[0] * g->kd[1])};
				long bv[3] = {av[0] + d[0], av[1] + d[1], av[2] + d[2]};
				if (bv[0] < 0 || bv[0] >= g->kd[0] || bv[1] < 0 || bv[1] >= g->kd[1] || bv[2] < 0 ||
				    bv[2] >= g->kd[2])
					continue;
				long b = bv[0] + g->kd[0] * (bv[1] + g->kd[1] * bv[2]);
				double complex v = box_sum(g->c, sat, av, nr);
				long i = a + K * c1, j = b + K * c2;
				job->out[i + j * n] = v;
				job->out[j + i * n] = conj(v);
			}
		}
}

/* Work items (coil pair, z offset) go in chunks of four per thread, with a stop check between
 * chunks (an item is 2k-1 x 2k-1 tables of the ACS block: ~30 ms for 24^3, k = 6). */
static r5_status gram(const struct calib_geom *g, const float complex *block, double complex *gram_out,
		      const r5_progress *progress)
{
	struct gram_job job = {.g = g, .block = block, .out = gram_out};
	long C = g->n_coils, n_pairs = C * (C + 1) / 2, nz = 2 * g->kd[2] - 1, n_items = n_pairs * nz;
	long chunk = progress ? 4L * r5_max_threads() : n_items;
	size_t sat_size = (size_t)(g->c[0] + 1) * (size_t)(g->c[1] + 1) * (size_t)(g->c[2] + 1);
	int failed = 0;
	r5_status s = R5_OK;
	for (long first = 0; first < n_items && !failed && s == R5_OK; first += chunk) {
		long last = first + chunk < n_items ? first + chunk : n_items;
#pragma omp parallel reduction(| : failed)
		{
			double complex *sat = malloc(sizeof *sat * sat_size);
			failed = !sat;
#pragma omp for schedule(dynamic)
			for (long item = first; item < last; item++) {
				long c1 = 0, rest = item / nz; /* pair -> (c1 <= c2) */
				while (rest >= C - c1) {
					rest -= C - c1;
					c1++;
				}
				if (sat)
					gram_coil_pair(&job, c1, c1 + rest, item % nz, sat);
			}
			free(sat);
		}
		s = r5_progress_check(progress, "espirit calibration matrix", 0.3 * (double)last / (double)n_items);
	}
	return failed ? r5_set_error(R5_ENOMEM, "ESPIRiT Gram matrix tables") : s;
}

/* A stop status gets the step's name in front ("ESPIRiT maps: stage eigen-decomposition: ..."). */
static r5_status stopped_context(r5_status s, const char *step)
{
	return s == R5_ECANCELLED || s == R5_ETIMEDOUT ? r5_error_context(s, "%s", step) : s;
}

/* Steps 1-2 (progress: fractions 0..1 of this step): returns V (n_cols x n_cols, columns = right singular vectors, descending) and the
 * number kept. */
static r5_status calibrate(r5_ctx *ctx, const r5_espirit_conf *conf, const r5_array *acs, struct calib_geom *g,
			   const r5_progress *progress, double complex **v_out, double **sv_out, int *n_kept)
{
	float complex *block = NULL;
	*v_out = NULL;
	*sv_out = NULL;
	r5_status s = acs_block(ctx, conf, acs, g, &block);
	long n = g->n_cols;
	double complex *v = s == R5_OK ? malloc(sizeof *v * n * n) : NULL;
	double *sv = s == R5_OK ? malloc(sizeof *sv * n) : NULL;
	if (s == R5_OK && (!v || !sv))
		s = r5_set_error(R5_ENOMEM, "ESPIRiT Gram matrix %ld x %ld", n, n);
	if (s == R5_OK)
		s = gram(g, block, v, progress);
	/* only the signal subspace is computed (randomized subspace iteration for the 3D sizes, the
	 * dense solver below 400): sv beyond n_values is 0, below the threshold */
	int n_vectors = 0, n_values = 0;
	double rel_min = (double)conf->threshold * conf->threshold * 0.999;
	r5_progress_part eig;
	if (s == R5_OK)
		s = r5_herm_eig_signal((int)n, v, sv, rel_min, &n_vectors, &n_values,
				       r5_progress_part_init(&eig, progress, 0.3, 1.0, NULL));
	free(block);
	if (s == R5_OK) {
		for (long j = 0; j < n; j++)
			sv[j] = sqrt(sv[j] > 0 ? sv[j] : 0);
		if (!(sv[0] > 0))
			s = r5_set_error(R5_EINVAL, "ESPIRiT calibration: the calibration region holds no signal");
	}
	if (s == R5_OK) {
		int kept = 0;
		double largest = sv[0]; /* normalise by the largest (sv[0] itself changes in the loop) */
		for (long j = 0; j < n; j++) {
			sv[j] /= largest;
			kept += j < n_vectors && sv[j] >= conf->threshold;
		}
		*n_kept = kept;
	}
	if (s != R5_OK) {
		free(v);
		free(sv);
		return s;
	}
	*v_out = v;
	*sv_out = sv;
	return R5_OK;
}

r5_status r5_espirit_calibrate(r5_ctx *ctx, const r5_espirit_conf *conf, const r5_array *acs, int *n_kept,
			       double **singular_values, int *n_values)
{
	struct calib_geom g;
	double complex *v = NULL;
	double *sv = NULL;
	conf = conf ? conf : &r5_espirit_defaults;
	r5_progress_part whole;
	const r5_progress *progress = r5_progress_part_init(&whole, conf->progress, 0, 0.5, "espirit");
	R5_TRY(stopped_context(calibrate(ctx, conf, acs, &g, progress, &v, &sv, n_kept), "ESPIRiT calibration"));
	free(v);
	if (n_values)
		*n_values = (int)g.n_cols;
	if (singular_values)
		*singular_values = sv;
	else
		free(sv);
	return R5_OK;
}

/* Step 3a: the kernel-offset sums G_delta = 1/K sum_{a - b = delta} P_ab, P = V_r V_r^H (on the
 * back end), host double [Dx, Dy, Dz, C, C] with D = 2 kd - 1. */
static r5_status kernel_offsets(r5_ctx *ctx, const struct calib_geom *g, const double complex *v, int kept,
				double complex *gd, const r5_progress *progress)
{
	long n = g->n_cols, dims[R5_DIMS], hdims[R5_DIMS], pdims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = n;
	dims[1] = kept;
	r5_dims_ones(hdims);
	hdims[0] = kept;
	hdims[1] = n;
	r5_dims_ones(pdims);
	pdims[0] = pdims[1] = n;
	r5_array *vr = NULL, *vh = NULL, *vr_w = NULL, *vh_w = NULL, *p = NULL, *p_host = NULL;
	r5_status s = r5_array_alloc_host(dims, &vr);
	if (s == R5_OK)
		s = r5_array_alloc_host(hdims, &vh);
	if (s == R5_OK) {
		for (long j = 0; j < kept; j++)
			for (long i = 0; i < n; i++) {
				vr->data[i + j * n] = (float complex)v[i + j * n];
				vh->data[j + i * kept] = (float complex)conj(v[i + j * n]);
			}
		s = r5_array_to_work(ctx, vr, &vr_w);
	}
	if (s == R5_OK)
		s = r5_array_to_work(ctx, vh, &vh_w);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, pdims, &p);
	/* P by blocks of columns, a stop check between them (n = 1728, kept ~ 500: ~1.5 G MACs) */
	long cols = R5_PROGRESS_CHUNK_MACS / (n * (kept > 0 ? kept : 1));
	cols = cols < 1 ? 1 : cols;
	for (long j0 = 0; j0 < n && s == R5_OK; j0 += cols) {
		long nc = j0 + cols < n ? cols : n - j0;
		s = r5_zgemm(ctx, 0, n, nc, kept, 1.0f, vr_w->data, n,
			     vh_w->data + j0 * kept, kept, 0.0f, p->data + j0 * n, n);
		if (s == R5_OK)
			s = r5_progress_check(progress, "espirit kernel offsets", 0.8 * (double)(j0 + nc) / (double)n);
	}
	if (s == R5_OK)
		s = r5_array_to_host(ctx, p, &p_host);
	if (s == R5_OK) {
		long D[3], K = g->n_kernel_pos, C = g->n_coils;
		for (int d = 0; d < 3; d++)
			D[d] = 2 * g->kd[d] - 1;
		long nd = D[0] * D[1] * D[2];
		memset(gd, 0, sizeof *gd * nd * C * C);
		long per_check = R5_PROGRESS_CHUNK_VALUES / (K * C * C) + 1; /* rows a between checks */
		for (long a = 0; a < K && s == R5_OK; a++) {
			if (a % per_check == per_check - 1)
				s = r5_progress_check(progress, "espirit kernel offsets", 0.8 + 0.2 * (double)a / (double)K);
			for (long b = 0; b < K; b++) {
				long ax = a % g->kd[0], ay = (a / g->kd[0]) % g->kd[1], az = a / (g->kd[0] * g->kd[1]);
				long bx = b % g->kd[0], by = (b / g->kd[0]) % g->kd[1], bz = b / (g->kd[0] * g->kd[1]);
				long delta = (ax - bx + g->kd[0] - 1) + D[0] * ((ay - by + g->kd[1] - 1) + D[1] * (az - bz + g->kd[2] - 1));
				for (long c2 = 0; c2 < C; c2++)
					for (long c1 = 0; c1 < C; c1++)
						gd[delta + nd * (c1 + C * c2)] += conj((double complex)p_host->data[(a + K * c1) + n * (b + K * c2)]) / (double)K;
			}
		}
	}
	r5_array_free(vr);
	r5_array_free(vh);
	r5_array_free(vr_w);
	r5_array_free(vh_w);
	r5_array_free(p);
	r5_array_free(p_host);
	return s;
}

struct slab_job {
	const struct calib_geom *g;
	const double complex *gd;
	const long *img; /* nx, ny, nz */
	long x0, bx;
	const r5_progress *progress; /* checked inside the slab's per-pixel step, fractions lo..hi */
	double lo, hi;
};

/* Step 3b: per-pixel matrices G(r) for readout positions x0 .. x0+bx-1, as a work array of
 * [C*C, bx*ny*nz] (one column-major C x C matrix per pixel). */
static r5_status slab_matrices(r5_ctx *ctx, const struct slab_job *job, r5_array *grid, r5_array *mats)
{
	const struct calib_geom *g = job->g;
	long C = g->n_coils, CC = C * C, nx = job->img[0], ny = job->img[1], nz = job->img[2];
	long D[3];
	for (int d = 0; d < 3; d++)
		D[d] = 2 * g->kd[d] - 1;
	long nd = D[0] * D[1] * D[2];
	r5_array *host = NULL;
	R5_TRY(r5_array_zeros(NULL, R5_HOST, grid->dims, &host));
	long npix = job->bx * ny * nz;
	double complex phase[64]; /* e^{i 2 pi dx x / nx} for the 2k-1 <= 63 readout offsets */
	for (long xi = 0; xi < job->bx; xi++) {
		double xr = (double)(job->x0 + xi - nx / 2) / (double)nx;
		for (long dx = 0; dx < D[0] && dx < 64; dx++)
			phase[dx] = cexp(2.0 * R5_PI * I * (double)(dx - (g->kd[0] - 1)) * xr);
		for (long dz = 0; dz < D[2]; dz++)
			for (long dy = 0; dy < D[1]; dy++) {
				long yy = ny / 2 + dy - (g->kd[1] - 1), zz = nz / 2 + dz - (g->kd[2] - 1);
				for (long ch = 0; ch < CC; ch++) {
					double complex sum = 0;
					for (long dx = 0; dx < D[0]; dx++)
						sum += job->gd[dx + D[0] * (dy + D[1] * dz) + nd * ch] * phase[dx];
					host->data[xi + job->bx * (yy + ny * zz) + npix * ch] = (float complex)sum;
				}
			}
	}
	r5_status s = r5_array_copy(ctx, grid, host);
	r5_array_free(host);
	unsigned long flags = (ny > 1 ? R5_FLAG(R5_DIM_Y) : 0) | (nz > 1 ? R5_FLAG(R5_DIM_Z) : 0);
	if (s == R5_OK && flags)
		s = r5_ifft(ctx, flags, grid, grid);
	if (s == R5_OK)
		s = r5_zscale(ctx, grid, (float)sqrt((double)(ny * nz)));
	if (s == R5_OK) { /* transpose [pixels, C*C] -> [C*C, pixels] */
		long tdims[R5_DIMS], tstrides[R5_DIMS];
		r5_dims_ones(tdims);
		tdims[0] = CC;
		tdims[1] = npix;
		r5_dims_ones(tstrides);
		tstrides[0] = npix;
		tstrides[1] = 1;
		r5_array in = r5_array_view_strided(grid, tdims, tstrides, 0);
		s = r5_zresize_centered(ctx, mats, &in);
	}
	return s;
}

/* Per-pixel eigen-decompositions of the C x C matrices (mats, [C*C, npix]; evals: npix x C
 * floats, descending): the back end's zheev_top_batched, the n_maps leading vectors of each
 * pixel with coil 0 real >= 0, in double on both back ends (recon/core/eig_math.h), so that a
 * CPU and a GPU context compute the same maps and the same crop mask. With a hook, in chunks
 * of R5_PROGRESS_CHUNK_MACS / C^3 pixels (32 Ki at C = 8: ~40 ms on one core), a stop check
 * after each; fractions lo..hi. */
static r5_status pixel_eigs(r5_ctx *ctx, long npix, long C, int n_maps, r5_array *mats, r5_array *evals,
			    const r5_progress *progress, double lo, double hi)
{
	long chunk = progress ? R5_PROGRESS_CHUNK_MACS / (C * C * C) : npix;
	chunk = chunk < 1 ? 1 : chunk;
	float *ev = (float *)evals->data;
	r5_status s = R5_OK;
	for (long p0 = 0; p0 < npix && s == R5_OK; p0 += chunk) {
		long np = p0 + chunk < npix ? chunk : npix - p0;
		s = r5_zheev_top_batched(ctx, np, (int)C, n_maps, mats->data + p0 * C * C, ev + p0 * C);
		if (s == R5_OK)
			s = r5_progress_check(progress, "espirit per-pixel eigenvectors",
					      lo + (hi - lo) * (double)(p0 + np) / (double)npix);
	}
	return s;
}

/* Step 4 for one slab: eigen-decomposition, map set m = eigenvector m (coil 0 real >= 0), zero
 * where eigenvalue m < crop; copied into maps at readout offset x0. */
static r5_status slab_maps(r5_ctx *ctx, const r5_espirit_conf *conf, const struct slab_job *job, r5_array *mats,
			   r5_array *evals, r5_array *slab, r5_array *mask_work, r5_array *maps, float *eig_host)
{
	long C = job->g->n_coils, CC = C * C, npix = job->bx * job->img[1] * job->img[2];
	R5_TRY(pixel_eigs(ctx, npix, C, conf->n_maps, mats, evals, job->progress, job->lo, job->hi));
	r5_array *ev_host = NULL, *mask = NULL;
	R5_TRY(r5_array_to_host(ctx, evals, &ev_host));
	const float *ev = (const float *)ev_host->data;
	r5_status s = r5_array_alloc_host(mask_work->dims, &mask);
	for (int m = 0; m < conf->n_maps && s == R5_OK; m++) {
		long vstrides[R5_DIMS];
		r5_dims_ones(vstrides);
		vstrides[0] = CC;
		vstrides[1] = CC * job->bx;
		vstrides[2] = CC * job->bx * job->img[1];
		vstrides[3] = 1;
		r5_array in = r5_array_view_strided(mats, slab->dims, vstrides, C * m);
		s = r5_zresize_centered(ctx, slab, &in);
		for (long p = 0; p < npix && s == R5_OK; p++) {
			float lambda = ev[p * C + m];
			mask->data[p] = lambda >= conf->crop ? 1.0f : 0.0f;
			long x = p % job->bx, rest = p / job->bx;
			eig_host[(job->x0 + x) + job->img[0] * rest + job->img[0] * job->img[1] * job->img[2] * m] = lambda;
		}
		/* the phase is the solver's (coil 0 real >= 0): only the crop mask is applied */
		if (s == R5_OK)
			s = r5_array_copy(ctx, mask_work, mask);
		if (s == R5_OK)
			s = r5_zmul(ctx, slab, slab, mask_work, 0);
		if (s == R5_OK) {
			long odims[R5_DIMS];
			r5_dims_copy(odims, maps->dims);
			odims[R5_DIM_MAP] = 1;
			odims[0] = job->bx;
			r5_array out = r5_array_view_strided(maps, odims, NULL, job->x0 + m * maps->strides[R5_DIM_MAP]);
			if (maps->where == r5_ctx_residency(ctx)) {
				s = r5_zresize_centered(ctx, &out, slab);
			} else { /* host maps of a device context: the slab comes down */
				r5_array *down = NULL;
				s = r5_array_to_host(ctx, slab, &down);
				if (s == R5_OK)
					s = r5_array_host_copy(&out, down);
				r5_array_free(down);
			}
		}
	}
	r5_array_free(mask);
	r5_array_free(ev_host);
	return s;
}

/* Slabs of readout positions sized so that one holds about R5_PROGRESS_CHUNK_VALUES complex
 * values of matrices (8 x-positions of 128^2 x 8 coils, one of 128^2 x 32 coils): a slab's FFTs
 * and copies stay well inside the stop-check budget, with a check before each slab. On a device
 * the slab's two matrix arrays also stay under half of its free memory (r5_ctx_mem_info). */
static r5_status all_slabs(r5_ctx *ctx, const r5_espirit_conf *conf, const struct calib_geom *g,
			   const double complex *gd, const long img[3], r5_array *maps, float *eig_host,
			   const r5_progress *progress)
{
	long C = g->n_coils, CC = C * C, plane = img[1] * img[2];
	long bx = R5_PROGRESS_CHUNK_VALUES / (plane * CC);
	long fit = r5_ctx_fit(ctx, (double)sizeof(float complex) * (double)(plane * CC), 0.25, bx);
	bx = fit < bx ? fit : bx;
	bx = bx < 1 ? 1 : bx > img[0] ? img[0] : bx;
	while (img[0] % bx)
		bx--;
	long gdims[R5_DIMS], mdims[R5_DIMS], edims[R5_DIMS], sdims[R5_DIMS], rdims[R5_DIMS];
	r5_dims_ones(gdims);
	gdims[0] = bx;
	gdims[1] = img[1];
	gdims[2] = img[2];
	r5_dims_copy(sdims, gdims);
	r5_dims_copy(rdims, gdims);
	gdims[3] = CC;
	sdims[3] = C;
	r5_dims_ones(mdims);
	mdims[0] = CC;
	mdims[1] = bx * plane;
	r5_dims_ones(edims);
	edims[0] = (bx * plane * C + 1) / 2; /* floats, packed into complex elements */
	r5_array *grid = NULL, *mats = NULL, *evals = NULL, *slab = NULL, *mask = NULL;
	r5_status s = r5_array_alloc_work(ctx, gdims, &grid);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, mdims, &mats);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, edims, &evals);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, sdims, &slab);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, rdims, &mask);
	for (long x0 = 0; x0 < img[0] && s == R5_OK; x0 += bx) {
		double lo = (double)x0 / (double)img[0], hi = (double)(x0 + bx) / (double)img[0];
		struct slab_job job = {.g = g, .gd = gd, .img = img, .x0 = x0, .bx = bx, .progress = progress,
				       .lo = lo + 0.3 * (hi - lo), .hi = hi};
		s = r5_progress_check(progress, "espirit slab", lo);
		if (s == R5_OK)
			s = slab_matrices(ctx, &job, grid, mats);
		if (s == R5_OK)
			s = r5_progress_check(progress, "espirit slab", job.lo);
		if (s == R5_OK)
			s = slab_maps(ctx, conf, &job, mats, evals, slab, mask, maps, eig_host);
	}
	r5_array_free(grid);
	r5_array_free(mats);
	r5_array_free(evals);
	r5_array_free(slab);
	r5_array_free(mask);
	return s;
}

r5_status r5_espirit_maps(r5_ctx *ctx, const r5_espirit_conf *conf, const r5_array *acs, const long img_dims[3],
			  r5_array **maps, r5_array **eigenvalues)
{
	*maps = NULL;
	if (eigenvalues)
		*eigenvalues = NULL;
	if (!conf)
		conf = &r5_espirit_defaults;
	if (conf->n_maps < 1 || conf->n_maps > acs->dims[R5_DIM_COIL] || conf->n_maps > 2)
		return r5_set_error(R5_EINVAL, "ESPIRiT: %d map sets requested (1 or 2, at most the %ld coils)",
				    conf->n_maps, acs->dims[R5_DIM_COIL]);
	struct calib_geom g;
	double complex *v = NULL, *gd = NULL;
	double *sv = NULL;
	int kept = 0;
	r5_progress_part whole, calib_part, offsets_part, slabs_part;
	const r5_progress *progress = r5_progress_part_init(&whole, conf->progress, 0, 1, "espirit");
	R5_TRY(stopped_context(calibrate(ctx, conf, acs, &g, r5_progress_part_init(&calib_part, progress, 0, 0.45, NULL),
					 &v, &sv, &kept), "ESPIRiT maps"));
	r5_status s = R5_OK;
	for (int d = 0; d < 3; d++)
		if (img_dims[d] < 2 * g.kd[d] - 1 || img_dims[d] < acs->dims[d])
			s = r5_set_error(R5_EINVAL, "ESPIRiT: image dimension %d (%ld) smaller than the kernel support or "
					 "the calibration block", d, img_dims[d]);
	long D = (2 * g.kd[0] - 1) * (2 * g.kd[1] - 1) * (2 * g.kd[2] - 1);
	if (s == R5_OK && !(gd = malloc(sizeof *gd * D * g.n_coils * g.n_coils)))
		s = r5_set_error(R5_ENOMEM, "ESPIRiT kernel offsets");
	if (s == R5_OK)
		s = kernel_offsets(ctx, &g, v, kept, gd, r5_progress_part_init(&offsets_part, progress, 0.45, 0.5, NULL));
	free(v);
	free(sv);
	r5_debug("ESPIRiT: calibration %ldx%ldx%ld, kernel %ldx%ldx%ld, %d of %ld kernels kept", g.c[0], g.c[1], g.c[2],
		 g.kd[0], g.kd[1], g.kd[2], kept, g.n_cols);
	long mdims[R5_DIMS], edims[R5_DIMS];
	r5_dims_ones(mdims);
	for (int d = 0; d < 3; d++)
		mdims[d] = img_dims[d];
	r5_dims_copy(edims, mdims);
	mdims[R5_DIM_COIL] = g.n_coils;
	mdims[R5_DIM_MAP] = edims[R5_DIM_MAP] = conf->n_maps;
	float *eig_host = NULL;
	if (s == R5_OK)
		s = conf->host_maps ? r5_array_alloc_host(mdims, maps) : r5_array_alloc_work(ctx, mdims, maps);
	if (s == R5_OK && !(eig_host = malloc(sizeof *eig_host * r5_dims_size(edims))))
		s = r5_set_error(R5_ENOMEM, "ESPIRiT eigenvalues");
	if (s == R5_OK)
		s = all_slabs(ctx, conf, &g, gd, img_dims, *maps, eig_host,
			      r5_progress_part_init(&slabs_part, progress, 0.5, 1, NULL));
	if (s == R5_OK && eigenvalues) {
		r5_array *host = NULL;
		s = r5_array_alloc_host(edims, &host);
		for (long i = 0, n = s == R5_OK ? r5_array_size(host) : 0; i < n; i++)
			host->data[i] = eig_host[i];
		if (s == R5_OK)
			s = r5_array_to_work(ctx, host, eigenvalues);
		r5_array_free(host);
	}
	free(gd);
	free(eig_host);
	if (s != R5_OK) {
		r5_array_free(*maps);
		*maps = NULL;
	}
	return stopped_context(s, "ESPIRiT maps");
}
