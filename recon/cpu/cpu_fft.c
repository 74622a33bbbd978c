/* CPU back end: FFTs with FFTW3 single precision, multithreaded. FFTW's planner is
 * process-wide and not thread-safe: every planner call (plan creation, fftwf_plan_with_nthreads,
 * plan destruction) goes through planner_lock, in this file only (see backend_cpu.c's header
 * for why fftwf_make_planner_thread_safe() is not relied on). */
#include <complex.h>
#include <fftw3.h>
#include <pthread.h>
#include <stdlib.h>

#include "../core/dims.h"
#include "cpu_backend.h"

static pthread_once_t fftw_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

static void fftw_setup(void)
{
	pthread_mutex_lock(&planner_lock);
	fftwf_init_threads();
	pthread_mutex_unlock(&planner_lock);
}

void r5_cpu_fft_init(void)
{
	pthread_once(&fftw_once, fftw_setup);
}

/* A plan object holds up to eight FFTW plans made lazily: forward/inverse x in/out of place x
 * SIMD-aligned or not, because FFTW's new-array execute requires the planned alignment and
 * placement. */

struct cpu_fft_plan {
	long dims[R5_DIMS];
	unsigned long flags;
	fftwf_plan plans[8]; /* index: inverse | in_place << 1 | unaligned << 2 */
	pthread_mutex_t lock;
};

r5_status r5_cpu_fft_plan_make(void *state, void **plan, const long dims[R5_DIMS], unsigned long flags)
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

r5_status r5_cpu_fft_exec(void *state, void *plan, float complex *out, const float complex *in, int inverse)
{
	struct cpu_fft_plan *p = plan;
	int any = 0;
	for (int d = 0; d < R5_DIMS; d++)
		if ((p->flags & (1UL << d)) && p->dims[d] > 1)
			any = 1;
	if (!any)
		return r5_cpu_copy(state, out, in, (size_t)r5_dims_size(p->dims) * sizeof *out);
	fftwf_plan fp = cpu_fft_plan_variant(state, p, out, in, !!inverse);
	if (!fp)
		return r5_set_error(R5_EINTERNAL, "FFTW could not plan the transform");
	fftwf_execute_dft(fp, (fftwf_complex *)in, (fftwf_complex *)out);
	return R5_OK;
}

void r5_cpu_fft_plan_destroy(void *state, void *plan)
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

