/* GPU suite: zgemm (cuBLAS vs the CPU's blocked loops), zheev_batched / zheev_top_batched (the
 * shared double-precision routine of recon/core/eig_math.h, one GPU thread per matrix, vs one
 * OpenMP iteration per matrix), and ESPIRiT maps from a CUDA context vs a CPU context on the same
 * calibration data. Eigenvectors are defined up to a phase (and within degenerate eigenspaces):
 * both back ends use the same convention (first component real >= 0), so where the eigenvalue
 * is well separated the vectors are compared directly, and also as 1 - |<v_cpu, v_gpu>|; the
 * GPU result's own residual ||A V - V diag(l)|| / ||A|| and orthonormality are checked too.
 * ESPIRiT: outside a margin around the crop threshold (pixels counted and reported) the crop
 * masks must agree and the maps agree to 1e-4 per pixel after aligning the free phase. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_suite.h"
#include "recon/calib/espirit.h"
#include "../unit/test_sense_synth.h"

static r5_status run_zgemm(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			   double complex *scalar)
{
	return b->zgemm(s, j->code, j->m, j->cols, j->k, j->alpha, buf[0], j->lda, buf[1], j->ldb, j->beta, buf[2],
			j->ldc);
}

static void zgemm_case(struct pair *p, int trans_a, long m, long n, long k, long pad, int beta_zero)
{
	struct job j;
	memset(&j, 0, sizeof j);
	j.op = trans_a ? "zgemm A^H B" : "zgemm A B";
	j.run = run_zgemm, j.code = trans_a, j.m = m, j.cols = n, j.k = k, j.tol = TOL;
	j.lda = (trans_a ? k : m) + pad, j.ldb = k + pad, j.ldc = m + pad;
	j.n_bufs = 3, j.out = 2, j.full = pad == 0;
	j.len[0] = j.lda * (trans_a ? m : k), j.len[1] = j.ldb * n, j.len[2] = j.ldc * n;
	j.init[0] = j.init[1] = INIT_RANDOM;
	j.init[2] = beta_zero ? INIT_NAN : INIT_RANDOM; /* beta 0: C must not be read */
	j.alpha = suite_crand();
	j.beta = beta_zero ? 0 : suite_crand();
	snprintf(j.shape, sizeof j.shape, "m%ld n%ld k%ld ld+%ld%s", m, n, k, pad, beta_zero ? " b=0" : "");
	suite_run_job(p, &j);
}

/* Hermitian test matrices: (B + B^H)/2 (indefinite) or B B^H / n (PSD, ESPIRiT-like). */
static void make_hermitian(int n, float complex *a, int psd)
{
	float complex *b = malloc(sizeof *b * (size_t)n * n);
	for (long i = 0; i < (long)n * n; i++)
		b[i] = suite_crand();
	for (int c = 0; c < n; c++) {
		for (int r = 0; r < n; r++) {
			double complex sum = 0;
			if (psd)
				for (int l = 0; l < n; l++)
					sum += (double complex)b[r + l * n] * conj((double complex)b[c + l * n]);
			else
				sum = 0.5 * ((double complex)b[r + c * n] + conj((double complex)b[c + r * n]));
			a[r + c * n] = (float complex)(psd ? sum / n : sum);
		}
	}
	free(b);
}

struct eig_errors {
	double eval_num, eval_den, eval_max, resid_num, resid_den, ortho, vec_worst, vec_direct;
	long nan_count;
};

/* Accumulates the errors of one matrix: a = input, vc/lc = CPU result, vg/lg = GPU result. */
static void eig_check_one(int n, const float complex *a, const float complex *vc, const float *lc,
			  const float complex *vg, const float *lg, struct eig_errors *e)
{
	double scale = 0;
	for (long i = 0; i < (long)n * n; i++)
		scale += cabs(a[i]) * cabs(a[i]);
	for (int j = 0; j < n; j++) {
		if (isnan(lg[j]))
			e->nan_count++;
		e->eval_num += (lg[j] - lc[j]) * (double)(lg[j] - lc[j]);
		e->eval_den += lc[j] * (double)lc[j];
		if (fabs((double)lg[j] - lc[j]) > e->eval_max)
			e->eval_max = fabs((double)lg[j] - lc[j]);
		for (int r = 0; r < n; r++) { /* (A v_j - l_j v_j)[r] */
			double complex av = 0;
			for (int l = 0; l < n; l++)
				av += (double complex)a[r + l * n] * vg[l + j * n];
			av -= (double)lg[j] * vg[r + j * n];
			e->resid_num += creal(av * conj(av));
		}
		for (int i = 0; i < n; i++) { /* V^H V - I */
			double complex dot = 0, cross = 0;
			for (int r = 0; r < n; r++) {
				dot += conj((double complex)vg[r + i * n]) * vg[r + j * n];
				if (i == j)
					cross += conj((double complex)vc[r + j * n]) * vg[r + j * n];
			}
			double dev = cabs(dot - (i == j ? 1.0 : 0.0));
			e->ortho = dev > e->ortho ? dev : e->ortho;
			if (i == j) {
				double gap = INFINITY;
				if (j > 0)
					gap = fmin(gap, fabs(lc[j - 1] - lc[j]));
				if (j + 1 < n)
					gap = fmin(gap, fabs(lc[j + 1] - lc[j]));
				if (gap > 1e-2 * sqrt(scale)) {
					double miss = 1.0 - cabs(cross), direct = 0;
					e->vec_worst = miss > e->vec_worst ? miss : e->vec_worst;
					for (int r = 0; r < n; r++) /* same phase convention: no alignment */
						direct = fmax(direct, cabs(vg[r + j * n] - vc[r + j * n]));
					e->vec_direct = direct > e->vec_direct ? direct : e->vec_direct;
				}
			}
		}
	}
	e->resid_den += scale;
}

static int zheev_run(struct pair *p, long batch, int n, const float complex *a, float complex *vc, float *lc,
		     float complex *vg, float *lg)
{
	long nn = (long)n * n;
	memcpy(vc, a, sizeof *a * (size_t)(batch * nn));
	if (p->cb->zheev_batched(p->cs, batch, n, vc, lc) != R5_OK)
		return 0;
	long lg_len = (batch * n + 1) / 2; /* float eigenvalues in a complex-sized device buffer */
	float complex *dm = dev_alloc(p, batch * nn), *dl = dev_alloc(p, lg_len);
	float complex *poison = host_fill(lg_len, INIT_NAN);
	int ok = dm && dl && poison && dev_put(p, dm, a, batch * nn) == R5_OK && dev_put(p, dl, poison, lg_len) == R5_OK &&
		 p->gb->zheev_batched(p->gs, batch, n, dm, (float *)dl) == R5_OK && dev_get(p, vg, dm, batch * nn) == R5_OK &&
		 dev_get(p, poison, dl, lg_len) == R5_OK;
	if (ok)
		memcpy(lg, poison, sizeof *lg * (size_t)(batch * n));
	if (dm)
		dev_free(p, dm);
	if (dl)
		dev_free(p, dl);
	free(poison);
	return ok;
}

/* zheev_top_batched on the GPU for k = 1 and 2 against the GPU's full decomposition: the same
 * routine, so the k vectors and all eigenvalues must be identical. */
static void zheev_top_check(struct pair *p, long batch, int n, const float complex *a, const float complex *vg_full,
			    const float *lg_full, const char *shape)
{
	long nn = (long)n * n, lg_len = (batch * n + 1) / 2;
	for (int k = 1; k <= 2 && k <= n; k++) {
		float complex *dm = dev_alloc(p, batch * nn), *dl = dev_alloc(p, lg_len);
		float complex *v = malloc(sizeof *v * (size_t)(batch * nn)), *l = malloc(sizeof *l * (size_t)lg_len);
		int ok = dm && dl && v && l && dev_put(p, dm, a, batch * nn) == R5_OK &&
			 p->gb->zheev_top_batched(p->gs, batch, n, k, dm, (float *)dl) == R5_OK &&
			 dev_get(p, v, dm, batch * nn) == R5_OK && dev_get(p, l, dl, lg_len) == R5_OK;
		char row_shape[80];
		snprintf(row_shape, sizeof row_shape, "%s k=%d", shape, k);
		if (!ok) {
			suite_fail("zheev_top vs full", row_shape, r5_last_error());
		} else {
			double worst = 0;
			long differ = 0;
			for (long b = 0; b < batch; b++)
				for (long i = 0; i < (long)k * n; i++) {
					double d = cabs(v[b * nn + i] - vg_full[b * nn + i]);
					worst = fmax(worst, isnan(d) ? INFINITY : d);
				}
			differ = memcmp(l, lg_full, sizeof(float) * (size_t)(batch * n)) != 0;
			suite_row("zheev_top vs full", row_shape, worst, worst, 0.0, !differ,
				  differ ? "eigenvalues differ" : "same routine: identical");
		}
		if (dm)
			dev_free(p, dm);
		if (dl)
			dev_free(p, dl);
		free(v), free(l);
	}
}

static void zheev_case(struct pair *p, long batch, int n, int psd)
{
	char shape[64];
	snprintf(shape, sizeof shape, "%ld x %dx%d %s", batch, n, n, psd ? "psd" : "indef");
	long nn = (long)n * n;
	float complex *a = malloc(sizeof *a * (size_t)(batch * nn)), *vc = malloc(sizeof *vc * (size_t)(batch * nn));
	float complex *vg = malloc(sizeof *vg * (size_t)(batch * nn));
	float *lc = malloc(sizeof *lc * (size_t)(batch * n)), *lg = malloc(sizeof *lg * (size_t)(batch * n + 1));
	if (!a || !vc || !vg || !lc || !lg) {
		suite_fail("zheev_batched", shape, "allocation failed");
	} else {
		for (long b = 0; b < batch; b++)
			make_hermitian(n, a + b * nn, psd);
		if (!zheev_run(p, batch, n, a, vc, lc, vg, lg)) {
			suite_fail("zheev_batched", shape, r5_last_error());
		} else {
			struct eig_errors e = {0};
			for (long b = 0; b < batch; b++)
				eig_check_one(n, a + b * nn, vc + b * nn, lc + b * n, vg + b * nn, lg + b * n, &e);
			char note[64] = "";
			if (e.nan_count)
				snprintf(note, sizeof note, "%ld eigenvalues NaN/unwritten", e.nan_count);
			suite_row("zheev eigenvalues", shape, sqrt(e.eval_num / e.eval_den), e.eval_max, TOL_LOOSE,
				  e.nan_count == 0, note);
			suite_row("zheev residual (gpu)", shape, sqrt(e.resid_num / e.resid_den), e.ortho, TOL_LOOSE,
				  e.ortho <= TOL_LOOSE * n, "max abs = worst |V^H V - I|");
			suite_row("zheev vectors vs cpu", shape, e.vec_worst, e.vec_worst, TOL_LOOSE, 1,
				  "1 - |<v_cpu, v_gpu>|, separated eigenvalues");
			suite_row("zheev vectors direct", shape, e.vec_direct, e.vec_direct, TOL_LOOSE, 1,
				  "max |v_gpu - v_cpu|, separated, same phase convention");
			zheev_top_check(p, batch, n, a, vg, lg, shape);
		}
	}
	free(a), free(vc), free(vg), free(lc), free(lg);
}

/* --- ESPIRiT: the same calibration data through a CPU and a CUDA context --- */

#define ESPIRIT_MARGIN 1e-4 /* |eigenvalue - crop| below this: the mask may differ (FFT rounding) */
#define ESPIRIT_GAP 1e-2    /* eigenvalue 1 - eigenvalue 2 below this: the vector is ill-conditioned */

static r5_status espirit_on(r5_ctx *ctx, const r5_array *acs, const long img[3], r5_array **maps, r5_array **ev)
{
	r5_espirit_conf conf = r5_espirit_defaults;
	conf.n_maps = 2; /* the second eigenvalue gives the gap; map set 0 is compared */
	r5_array *maps_w = NULL, *ev_w = NULL;
	r5_status st = r5_espirit_maps(ctx, &conf, acs, img, &maps_w, &ev_w);
	if (st == R5_OK)
		st = r5_array_to_host(ctx, maps_w, maps);
	if (st == R5_OK)
		st = r5_array_to_host(ctx, ev_w, ev);
	r5_array_free(maps_w);
	r5_array_free(ev_w);
	return st;
}

/* Synthetic coil images (test_sense_synth.h, object inside the FOV), their k-space's centre
 * (24 wide) as ACS, ESPIRiT on both contexts; map set 0 and eigenvalue 1 compared. */
static void espirit_case(struct pair *p, long n, long nz, long coils)
{
	char shape[64];
	snprintf(shape, sizeof shape, "%ldx%ldx%ld x %ld coils", n, n, nz, coils);
	r5_array *coil_images = NULL, *truth = NULL, *object = NULL, *k = NULL, *acs = NULL;
	r5_array *mc = NULL, *ec = NULL, *mg = NULL, *eg = NULL;
	synth_make(n, nz, coils, &coil_images, &truth, &object);
	long dims[R5_DIMS], img[3] = {n, n, nz};
	r5_dims_copy(dims, coil_images->dims);
	for (int d = 0; d < 3; d++)
		dims[d] = dims[d] > 1 ? 24 : 1;
	r5_status st = r5_array_to_work(p->cpu, coil_images, &k);
	if (st == R5_OK)
		st = r5_fft(p->cpu, 7, k, k);
	if (st == R5_OK)
		st = r5_array_alloc_host(dims, &acs);
	if (st == R5_OK)
		st = r5_zresize_centered(p->cpu, acs, k);
	if (st == R5_OK)
		st = espirit_on(p->cpu, acs, img, &mc, &ec);
	if (st != R5_OK) {
		suite_fail("espirit maps", shape, r5_last_error());
	} else if ((st = espirit_on(p->gpu, acs, img, &mg, &eg)) != R5_OK) {
		suite_fail("espirit maps", shape, r5_last_error());
	} else {
		long npix = n * n * nz, in_margin = 0, ill = 0, mask_differ = 0, kept = 0;
		double ev_worst = 0, num = 0, den = 0, worst = 0, crop = r5_espirit_defaults.crop;
		for (long q = 0; q < npix; q++) {
			double lc = crealf(ec->data[q]), lg = crealf(eg->data[q]), lc2 = crealf(ec->data[q + npix]);
			ev_worst = fmax(ev_worst, isnan(lg) ? INFINITY : fabs(lg - lc));
			if (fabs(lc - crop) < ESPIRIT_MARGIN || fabs(lg - crop) < ESPIRIT_MARGIN) {
				in_margin++;
				continue;
			}
			int keep_c = lc >= crop, keep_g = lg >= crop;
			if (keep_c != keep_g)
				mask_differ++;
			if (!keep_c || !keep_g)
				continue;
			if (lc - lc2 < ESPIRIT_GAP) {
				ill++;
				continue;
			}
			double complex dot = 0;
			for (long c = 0; c < coils; c++)
				dot += conj((double complex)mg->data[q + npix * c]) * mc->data[q + npix * c];
			double complex align = cabs(dot) > 0 ? dot / cabs(dot) : 1;
			double e = 0, r = 0;
			for (long c = 0; c < coils; c++) {
				e += pow(cabs(mg->data[q + npix * c] * align - mc->data[q + npix * c]), 2);
				r += pow(cabsf(mc->data[q + npix * c]), 2);
			}
			num += e, den += r, kept++;
			worst = fmax(worst, isnan(e) ? INFINITY : sqrt(e / r));
		}
		char note[160];
		snprintf(note, sizeof note, "%ld kept px; %ld within %.0e of crop, %ld with gap < %.0e left out; %ld masks differ",
			 kept, in_margin, ESPIRIT_MARGIN, ill, ESPIRIT_GAP, mask_differ);
		suite_row("espirit eigenvalue 1", shape, ev_worst, ev_worst, TOL_LOOSE, 1, "max |l_gpu - l_cpu|");
		suite_row("espirit maps", shape, den > 0 ? sqrt(num / den) : INFINITY, worst, TOL_LOOSE,
			  mask_differ == 0 && worst <= TOL_LOOSE && kept > 0, note);
	}
	r5_array_free(coil_images), r5_array_free(truth), r5_array_free(object), r5_array_free(k);
	r5_array_free(acs), r5_array_free(mc), r5_array_free(ec), r5_array_free(mg), r5_array_free(eg);
}

void suite_linalg(struct pair *p)
{
	zgemm_case(p, 0, 37, 29, 23, 0, 1);
	zgemm_case(p, 0, 37, 29, 23, 5, 0);
	zgemm_case(p, 1, 37, 29, 23, 0, 0);
	zgemm_case(p, 1, 37, 29, 23, 3, 1);
	zgemm_case(p, 1, 32, 4096, 96, 0, 1); /* coil compression / ESPIRiT sizes */
	zgemm_case(p, 0, 1, 1, 1, 0, 0);
	zheev_case(p, 2000, 8, 1);
	zheev_case(p, 500, 8, 0);
	zheev_case(p, 150, 32, 1);
	zheev_case(p, 4, 64, 0);
	zheev_case(p, 3, 1, 0);
	espirit_case(p, 128, 1, 8);
	espirit_case(p, 32, 32, 4);
}
