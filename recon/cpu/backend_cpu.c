/* The CPU back end: OpenMP loops over the shared per-element math (complex_math.h, eig_math.h)
 * and FFTW3 single precision, multithreaded. Fills every slot of struct r5_backend.
 *
 * FFTW's planner is process-wide and not thread-safe: every planner call (plan creation,
 * fftwf_plan_with_nthreads, which sets the planner's process-global thread count, and plan
 * destruction) goes through planner_lock below, in this file only. fftwf_make_planner_thread_safe()
 * cannot be relied on: in the OpenMP build we link (libfftw3f_omp 3.3.10, Debian 12) the hook
 * it installs, fftwf_threads_register_planner_hooks, is an empty function, so two threads
 * planning at once (recon5td's completion-queue threads and workers) corrupted the heap
 * (tests/unit/test_fft_threads.c). Execution with the new-array interface is thread-safe.
 * A plan object holds up to eight FFTW plans made lazily: forward/inverse x in/out of place x
 * SIMD-aligned or not, because FFTW's new-array execute requires the planned alignment and
 * placement. */
#include <complex.h>
#include <fftw3.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend.h"
#include "../core/complex_math.h"
#include "../core/eig_math.h"
#include "../core/dims.h"
#include "../core/loop_nest.h"

struct cpu_state {
	int threads;
};

static pthread_once_t fftw_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

static void fftw_setup(void)
{
	pthread_mutex_lock(&planner_lock);
	fftwf_init_threads();
	pthread_mutex_unlock(&planner_lock);
}

static r5_status cpu_state_create(void **state, int device)
{
	pthread_once(&fftw_once, fftw_setup);
	struct cpu_state *s = calloc(1, sizeof *s);
	if (!s)
		return r5_set_error(R5_ENOMEM, "cpu back end state");
	s->threads = omp_get_max_threads();
	*state = s;
	return R5_OK;
}

static void cpu_state_destroy(void *state) { free(state); }

static r5_status cpu_describe(void *state, char *text, size_t size)
{
	struct cpu_state *s = state;
	snprintf(text, size, "cpu: FFTW %s, %d OpenMP threads", fftwf_version, s->threads);
	return R5_OK;
}

/* --- memory (the CPU computes on host memory) --- */

static r5_status cpu_alloc(void *state, void **ptr, size_t bytes)
{
	*ptr = aligned_alloc(64, (bytes + 63) / 64 * 64);
	if (!*ptr)
		return r5_set_error(R5_ENOMEM, "host allocation of %.1f MiB failed", bytes / 1048576.0);
	return R5_OK;
}

static void cpu_free(void *state, void *ptr) { free(ptr); }

static r5_status cpu_copy(void *state, void *dst, const void *src, size_t bytes)
{
	if (dst != src)
		memmove(dst, src, bytes);
	return R5_OK;
}

static r5_status cpu_sync(void *state) { return R5_OK; }

/* --- element-wise --- */

#define PAR_FOR _Pragma("omp parallel for schedule(static) if (n > 32768)")

static r5_status cpu_zfill(void *state, long n, float complex *x, float complex value)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		x[i] = value;
	return R5_OK;
}

static r5_status cpu_zscale(void *state, long n, float complex *x, float complex alpha)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		x[i] = r5_cf_mul(alpha, x[i]);
	return R5_OK;
}

static r5_status cpu_zaxpby(void *state, long n, float complex alpha, const float complex *x, float complex beta,
			    float complex *y)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		y[i] = r5_cf_axpby(alpha, x[i], beta, y[i]);
	return R5_OK;
}

static r5_status cpu_zunary(void *state, r5_unary_op op, long n, float complex *out, const float complex *in)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		out[i] = r5_cf_unary((int)op, in[i]);
	return R5_OK;
}

static r5_status cpu_zsoftthresh(void *state, long n, float lambda, float complex *out, const float complex *in)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		out[i] = r5_cf_softthresh(in[i], lambda);
	return R5_OK;
}

static r5_status cpu_zdot(void *state, long n, const float complex *x, const float complex *y, double complex *result)
{
	double re = 0, im = 0;
#pragma omp parallel for reduction(+ : re, im) schedule(static) if (n > 32768)
	for (long i = 0; i < n; i++) {
		r5_cf p = r5_cf_mulc(y[i], x[i]); /* conj(x) y */
		re += r5_cf_re(p);
		im += r5_cf_im(p);
	}
	*result = re + I * im;
	return R5_OK;
}

static r5_status cpu_znorm2sq(void *state, long n, const float complex *x, double *result)
{
	double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 32768)
	for (long i = 0; i < n; i++)
		s += (double)r5_cf_abs2(x[i]);
	*result = s;
	return R5_OK;
}

/* --- strided loops --- */

static long loop_nest_outer(const struct r5_loop_nest *nest)
{
	long n = 1;
	for (int r = 1; r < nest->rank; r++)
		n *= nest->dims[r];
	return n;
}

static r5_status cpu_zmul_md(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], float complex *out,
			     const long in1_str[R5_DIMS], const float complex *in1, const long in2_str[R5_DIMS],
			     const float complex *in2, int flags)
{
	struct r5_loop_nest nest;
	const long *const strides[3] = {out_str, in1_str, in2_str};
	r5_loop_nest_make(&nest, dims, 3, strides);
	long outer = loop_nest_outer(&nest), inner = nest.dims[0];
	long so = nest.str[0][0], s1 = nest.str[1][0], s2 = nest.str[2][0];
	int conj = flags & R5_ZMUL_CONJ2, accum = flags & R5_ZMUL_ACCUM;
#pragma omp parallel for schedule(static) if (outer * inner > 32768)
	for (long o = 0; o < outer; o++) {
		long off[3];
		r5_loop_nest_outer_offsets(&nest, 3, o, off);
		float complex *po = out + off[0];
		const float complex *p1 = in1 + off[1], *p2 = in2 + off[2];
		for (long i = 0; i < inner; i++) {
			r5_cf v = conj ? r5_cf_mulc(p1[i * s1], p2[i * s2]) : r5_cf_mul(p1[i * s1], p2[i * s2]);
			po[i * so] = accum ? r5_cf_add(po[i * so], v) : v;
		}
	}
	return R5_OK;
}

static r5_status cpu_zcopy_md(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], float complex *out,
			      const long in_str[R5_DIMS], const float complex *in)
{
	struct r5_loop_nest nest;
	const long *const strides[3] = {out_str, in_str, NULL};
	r5_loop_nest_make(&nest, dims, 2, strides);
	long outer = loop_nest_outer(&nest), inner = nest.dims[0];
	long so = nest.str[0][0], si = nest.str[1][0];
#pragma omp parallel for schedule(static) if (outer * inner > 32768)
	for (long o = 0; o < outer; o++) {
		long off[3];
		r5_loop_nest_outer_offsets(&nest, 2, o, off);
		float complex *po = out + off[0];
		const float complex *pi = in + off[1];
		if (so == 1 && si == 1)
			memcpy(po, pi, (size_t)inner * sizeof *po);
		else
			for (long i = 0; i < inner; i++)
				po[i * so] = pi[i * si];
	}
	return R5_OK;
}

static r5_status cpu_zsum_dim(void *state, const long dims[R5_DIMS], int dim, float complex *out,
			      const float complex *in)
{
	long inner = 1, outer = 1, n = dims[dim];
	for (int d = 0; d < dim; d++)
		inner *= dims[d];
	for (int d = dim + 1; d < R5_DIMS; d++)
		outer *= dims[d];
#pragma omp parallel for collapse(2) schedule(static) if (inner * outer * n > 32768)
	for (long o = 0; o < outer; o++) {
		for (long i = 0; i < inner; i++) {
			float re = 0, im = 0;
			for (long k = 0; k < n; k++) {
				r5_cf v = in[(o * n + k) * inner + i];
				re += r5_cf_re(v);
				im += r5_cf_im(v);
			}
			out[o * inner + i] = r5_cf_make(re, im);
		}
	}
	return R5_OK;
}

/* --- FFT --- */

struct cpu_fft_plan {
	long dims[R5_DIMS];
	unsigned long flags;
	fftwf_plan plans[8]; /* index: inverse | in_place << 1 | unaligned << 2 */
	pthread_mutex_t lock;
};

static r5_status cpu_fft_plan_make(void *state, void **plan, const long dims[R5_DIMS], unsigned long flags)
{
	struct cpu_fft_plan *p = calloc(1, sizeof *p);
	if (!p)
		return r5_set_error(R5_ENOMEM, "FFT plan");
	r5_dims_copy(p->dims, dims);
	p->flags = flags;
	pthread_mutex_init(&p->lock, NULL);
	*plan = p;
	return R5_OK;
}

static fftwf_plan cpu_fft_plan_variant(struct cpu_state *s, struct cpu_fft_plan *p, float complex *out,
				       const float complex *in, int inverse)
{
	int in_place = out == in;
	int unaligned = fftwf_alignment_of((float *)out) != 0 || fftwf_alignment_of((float *)in) != 0;
	int v = inverse | in_place << 1 | unaligned << 2;
	pthread_mutex_lock(&p->lock);
	if (!p->plans[v]) {
		fftw_iodim64 fdims[R5_DIMS], bdims[R5_DIMS];
		int nf = 0, nb = 0;
		long str[R5_DIMS];
		r5_dims_strides(str, p->dims);
		/* FFTW wants the slowest dimension first */
		for (int d = R5_DIMS - 1; d >= 0; d--) {
			if (p->dims[d] == 1)
				continue;
			fftw_iodim64 io = {.n = p->dims[d], .is = str[d], .os = str[d]};
			if (p->flags & (1UL << d))
				fdims[nf++] = io;
			else
				bdims[nb++] = io;
		}
		long n = r5_dims_size(p->dims);
		unsigned fl = FFTW_ESTIMATE | (unaligned ? FFTW_UNALIGNED : 0);
		/* FFTW_ESTIMATE does not touch the arrays, so planning on the caller's arrays is safe */
		pthread_mutex_lock(&planner_lock);
		fftwf_plan_with_nthreads(n > 16384 ? s->threads : 1);
		p->plans[v] = fftwf_plan_guru64_dft(nf, fdims, nb, bdims, (fftwf_complex *)in, (fftwf_complex *)out,
						    inverse ? FFTW_BACKWARD : FFTW_FORWARD, fl);
		pthread_mutex_unlock(&planner_lock);
	}
	fftwf_plan plan = p->plans[v];
	pthread_mutex_unlock(&p->lock);
	return plan;
}

static r5_status cpu_fft_exec(void *state, void *plan, float complex *out, const float complex *in, int inverse)
{
	struct cpu_fft_plan *p = plan;
	int any = 0;
	for (int d = 0; d < R5_DIMS; d++)
		if ((p->flags & (1UL << d)) && p->dims[d] > 1)
			any = 1;
	if (!any)
		return cpu_copy(state, out, in, (size_t)r5_dims_size(p->dims) * sizeof *out);
	fftwf_plan fp = cpu_fft_plan_variant(state, p, out, in, !!inverse);
	if (!fp)
		return r5_set_error(R5_EINTERNAL, "FFTW could not plan the transform");
	fftwf_execute_dft(fp, (fftwf_complex *)in, (fftwf_complex *)out);
	return R5_OK;
}

static void cpu_fft_plan_destroy(void *state, void *plan)
{
	struct cpu_fft_plan *p = plan;
	if (!p)
		return;
	pthread_mutex_lock(&planner_lock);
	for (int v = 0; v < 8; v++)
		if (p->plans[v])
			fftwf_destroy_plan(p->plans[v]);
	pthread_mutex_unlock(&planner_lock);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* --- dense linear algebra --- */

static r5_status cpu_zgemm(void *state, int trans_a, long m, long n, long k, float complex alpha,
			   const float complex *a, long lda, const float complex *b, long ldb, float complex beta,
			   float complex *c, long ldc)
{
	if (m < 0 || n < 0 || k < 0)
		return r5_set_error(R5_EINVAL, "zgemm: negative size");
#pragma omp parallel for schedule(static) if (m * n * k > 65536)
	for (long j = 0; j < n; j++) {
		float complex *cj = c + j * ldc;
		if (!trans_a) {
			/* C(:,j) = beta C(:,j) + alpha sum_l A(:,l) B(l,j): unit-stride inner loop over i */
			for (long i = 0; i < m; i++)
				cj[i] = beta == 0 ? 0 : r5_cf_mul(beta, cj[i]);
			for (long l = 0; l < k; l++) {
				r5_cf w = r5_cf_mul(alpha, b[l + j * ldb]);
				const float complex *al = a + l * lda;
				for (long i = 0; i < m; i++)
					cj[i] = r5_cf_axpy(cj[i], w, al[i]);
			}
		} else {
			/* C(i,j) = beta C(i,j) + alpha sum_l conj(A(l,i)) B(l,j) */
			for (long i = 0; i < m; i++) {
				const float complex *ai = a + i * lda;
				double re = 0, im = 0;
				for (long l = 0; l < k; l++) {
					r5_cf p = r5_cf_mulc(b[l + j * ldb], ai[l]);
					re += r5_cf_re(p);
					im += r5_cf_im(p);
				}
				r5_cf sum = r5_cf_mul(alpha, r5_cf_make((float)re, (float)im));
				cj[i] = beta == 0 ? sum : r5_cf_add(sum, r5_cf_mul(beta, cj[i]));
			}
		}
	}
	return R5_OK;
}

static r5_status cpu_zheev_batched(void *state, long batch, int n, float complex *matrices, float *eigenvalues)
{
	if (n < 1 || n > R5_EIG_MAX_N)
		return r5_set_error(R5_EINVAL, "eigen-decomposition: matrix size %d outside 1..%d", n, R5_EIG_MAX_N);
	int failed = 0;
#pragma omp parallel
	{
		r5_cf *scratch = malloc(sizeof(r5_cf) * R5_EIG_SCRATCH(n));
		if (!scratch) {
#pragma omp atomic write
			failed = 1;
		}
#pragma omp for schedule(dynamic, 64)
		for (long b = 0; b < batch; b++)
			if (scratch)
				r5_eig_herm_jacobi(n, (r5_cf *)matrices + b * n * n, eigenvalues + b * n, scratch);
		free(scratch);
	}
	if (failed)
		return r5_set_error(R5_ENOMEM, "eigen-decomposition scratch");
	return R5_OK;
}

/* The table, generated from the slot list (backend.h): every slot is cpu_<slot>. Host memory is
 * where the CPU computes, so moving data in or out is a copy. */
#define cpu_upload cpu_copy
#define cpu_download cpu_copy
#define R5_CPU_SLOT(ret, slot, params) .slot = cpu_##slot,
static const struct r5_backend cpu_backend = {
	.name = "cpu",
	.residency = R5_HOST,
	R5_BACKEND_SLOTS(R5_CPU_SLOT)
};
#undef R5_CPU_SLOT

const struct r5_backend *r5_backend_cpu(void)
{
	return &cpu_backend;
}
