/* GPU suite: zgemm (cuBLAS vs the CPU loops) and zheev_batched (the shared Jacobi routine, one
 * GPU thread per matrix, vs one OpenMP iteration per matrix). Eigenvectors are only defined up
 * to a phase (and within degenerate eigenspaces), so the eigen check compares eigenvalues with
 * the CPU, the GPU result's own residual ||A V - V diag(l)|| / ||A|| and orthonormality, and the
 * vectors with the CPU's as |<v_cpu, v_gpu>| where the eigenvalue is well separated. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_suite.h"

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
	double eval_num, eval_den, eval_max, resid_num, resid_den, ortho, vec_worst;
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
					double miss = 1.0 - cabs(cross);
					e->vec_worst = miss > e->vec_worst ? miss : e->vec_worst;
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
		}
	}
	free(a), free(vc), free(vg), free(lc), free(lg);
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
}
