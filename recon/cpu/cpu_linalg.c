/* CPU back end: dense linear algebra (zgemm) and the batched Hermitian eigensolvers over
 * eig_math.h (the per-pixel problems of ESPIRiT and Walsh). */
#include <complex.h>
#include <stdlib.h>
#include <string.h>

#include "../core/complex_math.h"
#include "../core/dims.h"
#include "cpu_backend.h"
#include "../core/eig_math.h"

/* --- dense linear algebra ---
 *
 * zgemm, cache-blocked (Goto & van de Geijn, "Anatomy of high-performance matrix
 * multiplication", ACM TOMS 34(3), 2008, in its simplest form): C is cut into tiles of
 * GEMM_MC x GEMM_NC, and k into blocks of GEMM_KB. For each tile and k block, op(A) and B are
 * packed into split real/imaginary panels (GEMM_MR rows of op(A), GEMM_NR columns of B, zero
 * padded, conj/transpose done while packing) and a GEMM_MR x GEMM_NR register tile is
 * accumulated over the block by a loop the compiler vectorises (omp simd). Sums over a k block
 * are float (at most GEMM_KB terms), across blocks double (the tile's accumulator): for the
 * tall-skinny A^H A of calibration (k = 10^4 .. 10^6) that keeps the error near the float
 * rounding of the result. OpenMP over tiles; when C has fewer tiles than threads and k is long
 * (covariances, Gram matrices), k is also cut into a fixed number of chunks that depends on
 * k only, whose double partial sums are added in chunk order: the result does not depend on
 * the thread count. */

#define GEMM_MR 4
#define GEMM_NR 4
#define GEMM_KB 256
#define GEMM_MC 64
#define GEMM_NC 64
#define GEMM_KCHUNK 8192 /* least k per chunk when k is split */

struct gemm_job {
	int trans_a;
	long m, n, k, lda, ldb;
	const float complex *a, *b;
};

/* op(A)(i0 .. i0+mc, l0 .. l0+kb) into panels of GEMM_MR rows: panel p, step l holds
 * GEMM_MR real parts then GEMM_MR imaginary parts. */
static void gemm_pack_a(const struct gemm_job *g, long i0, long mc, long l0, long kb, float *ap)
{
	for (long p = 0; p < mc; p += GEMM_MR)
		for (long l = 0; l < kb; l++) {
			float *dst = ap + (p * kb + l * GEMM_MR) * 2;
			for (int ii = 0; ii < GEMM_MR; ii++) {
				long i = i0 + p + ii;
				r5_cf v = r5_cf_make(0.0f, 0.0f);
				if (p + ii < mc)
					v = g->trans_a ? r5_cf_conj(g->a[(l0 + l) + i * g->lda]) : g->a[i + (l0 + l) * g->lda];
				dst[ii] = r5_cf_re(v), dst[GEMM_MR + ii] = r5_cf_im(v);
			}
		}
}

/* B(l0 .. l0+kb, j0 .. j0+nc) into panels of GEMM_NR columns: panel q, step l holds each
 * column's real part GEMM_MR times, then the imaginary parts likewise (pre-broadcast, so that
 * the kernel multiplies by aligned vectors instead of shuffling scalars). */
static void gemm_pack_b(const struct gemm_job *g, long j0, long nc, long l0, long kb, float *bp)
{
	for (long q = 0; q < nc; q += GEMM_NR)
		for (long l = 0; l < kb; l++) {
			float *dst = bp + (q * kb + l * GEMM_NR) * 2 * GEMM_MR;
			for (int jj = 0; jj < GEMM_NR; jj++) {
				r5_cf v = q + jj < nc ? g->b[(l0 + l) + (j0 + q + jj) * g->ldb] : r5_cf_make(0.0f, 0.0f);
				for (int ii = 0; ii < GEMM_MR; ii++)
					dst[jj * GEMM_MR + ii] = r5_cf_re(v), dst[(GEMM_NR + jj) * GEMM_MR + ii] = r5_cf_im(v);
			}
		}
}

/* acc (column-major, leading dimension ld, rows < rows, columns < cols) += the product of one
 * packed A panel and one packed B panel over kb steps. The four columns are written out so that
 * the sixteen partial sums stay in vector registers (a loop over them kept them in memory). */
static void gemm_micro(long kb, const float *ap, const float *bp, double *acc_re, double *acc_im, long ld, long rows,
		       long cols)
{
	float r0[GEMM_MR] = {0}, r1[GEMM_MR] = {0}, r2[GEMM_MR] = {0}, r3[GEMM_MR] = {0};
	float i0[GEMM_MR] = {0}, i1[GEMM_MR] = {0}, i2[GEMM_MR] = {0}, i3[GEMM_MR] = {0};
	for (long l = 0; l < kb; l++) {
		const float *ar = ap + l * 2 * GEMM_MR, *ai = ar + GEMM_MR, *b = bp + l * 2 * GEMM_NR * GEMM_MR;
		const float *b0 = b, *b1 = b + GEMM_MR, *b2 = b + 2 * GEMM_MR, *b3 = b + 3 * GEMM_MR;
		const float *c0 = b + 4 * GEMM_MR, *c1 = b + 5 * GEMM_MR, *c2 = b + 6 * GEMM_MR, *c3 = b + 7 * GEMM_MR;
#pragma omp simd
		for (int ii = 0; ii < GEMM_MR; ii++) {
			float xr = ar[ii], xi = ai[ii];
			r0[ii] += xr * b0[ii] - xi * c0[ii], i0[ii] += xr * c0[ii] + xi * b0[ii];
			r1[ii] += xr * b1[ii] - xi * c1[ii], i1[ii] += xr * c1[ii] + xi * b1[ii];
			r2[ii] += xr * b2[ii] - xi * c2[ii], i2[ii] += xr * c2[ii] + xi * b2[ii];
			r3[ii] += xr * b3[ii] - xi * c3[ii], i3[ii] += xr * c3[ii] + xi * b3[ii];
		}
	}
	const float *re[GEMM_NR] = {r0, r1, r2, r3}, *im[GEMM_NR] = {i0, i1, i2, i3};
	for (long jj = 0; jj < cols && jj < GEMM_NR; jj++)
		for (long ii = 0; ii < rows && ii < GEMM_MR; ii++)
			acc_re[ii + jj * ld] += re[jj][ii], acc_im[ii + jj * ld] += im[jj][ii];
}

/* One tile of C (rows i0.., columns j0..) over k steps l0 .. l1-1 into acc (re, im: GEMM_MC x
 * GEMM_NC doubles each, the tile's columns zeroed here); ap, bp: packing buffers. */
static void gemm_tile(const struct gemm_job *g, long i0, long j0, long l0, long l1, double *acc_re, double *acc_im,
		      float *ap, float *bp)
{
	long mc = g->m - i0 < GEMM_MC ? g->m - i0 : GEMM_MC, nc = g->n - j0 < GEMM_NC ? g->n - j0 : GEMM_NC;
	memset(acc_re, 0, sizeof *acc_re * GEMM_MC * nc); /* the columns this tile has */
	memset(acc_im, 0, sizeof *acc_im * GEMM_MC * nc);
	for (long lb = l0; lb < l1; lb += GEMM_KB) {
		long kb = l1 - lb < GEMM_KB ? l1 - lb : GEMM_KB;
		gemm_pack_a(g, i0, mc, lb, kb, ap);
		gemm_pack_b(g, j0, nc, lb, kb, bp);
		for (long q = 0; q < nc; q += GEMM_NR)
			for (long p = 0; p < mc; p += GEMM_MR)
				gemm_micro(kb, ap + p * kb * 2, bp + q * kb * 2 * GEMM_MR, acc_re + p + q * GEMM_MC,
					   acc_im + p + q * GEMM_MC, GEMM_MC, mc - p, nc - q);
	}
}

/* C(tile) = alpha acc + beta C(tile) (beta 0: C is not read). */
static void gemm_store(long m, long n, long i0, long j0, const double *acc_re, const double *acc_im,
		       r5_cf alpha, r5_cf beta, float complex *c, long ldc)
{
	double ar = r5_cf_re(alpha), ai = r5_cf_im(alpha);
	int keep = r5_cf_re(beta) != 0.0f || r5_cf_im(beta) != 0.0f;
	for (long j = j0; j < n && j < j0 + GEMM_NC; j++)
		for (long i = i0; i < m && i < i0 + GEMM_MC; i++) {
			double xr = acc_re[(i - i0) + (j - j0) * GEMM_MC], xi = acc_im[(i - i0) + (j - j0) * GEMM_MC];
			r5_cf v = r5_cf_make((float)(ar * xr - ai * xi), (float)(ar * xi + ai * xr));
			c[i + j * ldc] = keep ? r5_cf_add(v, r5_cf_mul(beta, c[i + j * ldc])) : v;
		}
}

/* Fixed k chunks when C has few tiles and k is long: the count depends on the shape only. */
static long gemm_k_chunks(long tiles, long k)
{
	if (tiles >= 8 || k < 2 * GEMM_KCHUNK)
		return 1;
	long chunks = k / GEMM_KCHUNK;
	return chunks > 64 ? 64 : chunks;
}

r5_status r5_cpu_zgemm(void *state, int trans_a, long m, long n, long k, float complex alpha,
			   const float complex *a, long lda, const float complex *b, long ldb, float complex beta,
			   float complex *c, long ldc)
{
	if (m < 0 || n < 0 || k < 0)
		return r5_set_error(R5_EINVAL, "zgemm: negative size");
	if (m == 0 || n == 0)
		return R5_OK; /* C is empty */
	struct gemm_job g = {trans_a, m, n, k, lda, ldb, a, b};
	long tm = (m + GEMM_MC - 1) / GEMM_MC, tn = (n + GEMM_NC - 1) / GEMM_NC, tiles = tm * tn;
	long chunks = gemm_k_chunks(tiles, k), per_chunk = (k + chunks - 1) / chunks;
	long tile_doubles = 2L * GEMM_MC * GEMM_NC;
	/* chunked: one double partial tile per (tile, chunk), added in chunk order afterwards */
	double *partial = chunks > 1 ? malloc(sizeof *partial * tile_doubles * tiles * chunks) : NULL;
	if (chunks > 1 && !partial)
		return r5_set_error(R5_ENOMEM, "zgemm %ld x %ld x %ld: partial sums", m, n, k);
	int failed = 0;
#pragma omp parallel if ((double)m * n * k > 65536.0) reduction(| : failed)
	{
		double *acc = malloc(sizeof *acc * tile_doubles);
		float *ap = malloc(sizeof *ap * 2 * GEMM_MC * GEMM_KB), *bp = malloc(sizeof *bp * 2 * GEMM_MR * GEMM_NC * GEMM_KB);
		failed = !acc || !ap || !bp;
#pragma omp for schedule(dynamic)
		for (long t = 0; t < tiles * chunks; t++) {
			long tile = t / chunks, chunk = t % chunks, i0 = (tile % tm) * GEMM_MC, j0 = (tile / tm) * GEMM_NC;
			long l0 = chunk * per_chunk, l1 = l0 + per_chunk < k ? l0 + per_chunk : k;
			if (failed)
				continue;
			double *out = chunks > 1 ? partial + t * tile_doubles : acc;
			gemm_tile(&g, i0, j0, l0 > k ? k : l0, l1, out, out + GEMM_MC * GEMM_NC, ap, bp);
			if (chunks == 1)
				gemm_store(m, n, i0, j0, out, out + GEMM_MC * GEMM_NC, alpha, beta, c, ldc);
		}
		free(acc), free(ap), free(bp);
	}
	if (failed) {
		free(partial);
		return r5_set_error(R5_ENOMEM, "zgemm %ld x %ld x %ld: packing buffers", m, n, k);
	}
	for (long tile = 0; tile < tiles && chunks > 1; tile++) {
		double *sum = partial + tile * chunks * tile_doubles;
		long j0 = (tile / tm) * GEMM_NC, used = GEMM_MC * (n - j0 < GEMM_NC ? n - j0 : GEMM_NC);
		for (long ch = 1; ch < chunks; ch++)
			for (long i = 0; i < used; i++) { /* real parts, then imaginary parts */
				sum[i] += sum[ch * tile_doubles + i];
				sum[GEMM_MC * GEMM_NC + i] += sum[ch * tile_doubles + GEMM_MC * GEMM_NC + i];
			}
		gemm_store(m, n, (tile % tm) * GEMM_MC, (tile / tm) * GEMM_NC, sum, sum + GEMM_MC * GEMM_NC, alpha, beta, c,
			   ldc);
	}
	free(partial);
	return R5_OK;
}

/* One matrix per OpenMP iteration through eig_math.h (the CUDA back end runs the same
 * routine, one matrix per thread); per-thread scratch. */
r5_status r5_cpu_zheev_top_batched(void *state, long batch, int n, int k, float complex *matrices, float *eigenvalues)
{
	if (n < 1 || n > R5_EIG_MAX_N || k < 1 || k > n)
		return r5_set_error(R5_EINVAL, "eigen-decomposition: matrix size %d outside 1..%d or %d vectors", n,
				    R5_EIG_MAX_N, k);
	int no_memory = 0, not_converged = 0;
#pragma omp parallel if (batch > 16) reduction(| : no_memory, not_converged)
	{
		double *scratch = malloc(sizeof *scratch * R5_EIG_SCRATCH(n));
		no_memory = !scratch;
#pragma omp for schedule(static)
		for (long b = 0; b < batch; b++)
			if (scratch)
				not_converged |= r5_eig_herm_top(n, k, (r5_cf *)matrices + b * n * n, eigenvalues + b * n,
								 scratch, 1);
		free(scratch);
	}
	if (no_memory)
		return r5_set_error(R5_ENOMEM, "eigen-decomposition scratch (%ld doubles per thread)", R5_EIG_SCRATCH(n));
	if (not_converged)
		return r5_set_error(R5_EINTERNAL, "eigen-decomposition of %ld matrices %d x %d: QL did not converge",
				    batch, n, n);
	return R5_OK;
}

r5_status r5_cpu_zheev_batched(void *state, long batch, int n, float complex *matrices, float *eigenvalues)
{
	return r5_cpu_zheev_top_batched(state, batch, n, n, matrices, eigenvalues);
}
