/* cuFFT plans for the back-end FFT slots: unnormalised, uncentred transforms over any subset of
 * the 16 dimensions of a contiguous array, batched over the others (centring and 1/sqrt(N) are
 * added by recon/core/fft.c).
 *
 * Dimensions of size 1 are dropped. The flagged dimensions then form runs of neighbours; each
 * run, cut into pieces of at most three dimensions (cuFFT's largest rank), is one pass. A pass
 * over dimensions with `inner` elements below them (stride inner) and `outer` blocks above is
 * one cufftPlanMany64 layout:
 *   inner == 1: idist = N, batch = outer                     (one execution)
 *   otherwise : istride = inner and the larger of inner/outer is the batch (idist 1 or
 *               inner*N); the smaller one is a host loop of executions at pointer offsets.
 * Passes run in place on `out` (after one device copy when out != in), which leaves `in`
 * untouched whatever cuFFT does with out-of-place inputs. Plans are bound to the context's
 * stream; cuFFT allocates each plan's work area. */
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"

struct fft_pass {
	cufftHandle handle;
	long loops;     /* executions per pass */
	long loop_step; /* elements between consecutive executions */
};

struct cuda_fft_plan {
	long dims[R5_DIMS];
	unsigned long flags;
	long total;
	int n_passes;
	struct fft_pass passes[R5_DIMS];
};

/* Plans one pass over the squeezed dims [first, first + rank) of sizes[] (fastest first). */
static r5_status plan_pass(struct r5_cuda_state *s, struct cuda_fft_plan *plan, const long *sizes, int n_sizes,
			   int first, int rank)
{
	struct fft_pass *pass = &plan->passes[plan->n_passes];
	long long n[3], inner = 1, fft_n = 1, outer = 1;
	for (int i = 0; i < first; i++)
		inner *= sizes[i];
	for (int j = 0; j < rank; j++) {
		n[j] = sizes[first + rank - 1 - j]; /* cuFFT wants the slowest dimension first */
		fft_n *= sizes[first + j];
	}
	for (int i = first + rank; i < n_sizes; i++)
		outer *= sizes[i];
	long long istride, idist, batch;
	if (inner == 1) {
		istride = 1, idist = fft_n, batch = outer;
		pass->loops = 1, pass->loop_step = 0;
	} else if (inner >= outer) {
		istride = inner, idist = 1, batch = inner;
		pass->loops = (long)outer, pass->loop_step = (long)(inner * fft_n);
	} else {
		istride = inner, idist = inner * fft_n, batch = outer;
		pass->loops = (long)inner, pass->loop_step = 1;
	}
	size_t work = 0;
	R5_TRY(r5_cufft_check(cufftCreate(&pass->handle), "cufftCreate"));
	plan->n_passes++; /* from here on, destroying the plan releases this handle */
	R5_TRY(r5_cufft_check(cufftSetStream(pass->handle, s->stream), "cufftSetStream"));
	R5_TRY(r5_cufft_check(cufftMakePlanMany64(pass->handle, rank, n, n, istride, idist, n, istride, idist,
						  CUFFT_C2C, batch, &work),
			      "cufftMakePlanMany64"));
	return R5_OK;
}

void r5_cuda_fft_plan_destroy(void *state, void *plan_ptr)
{
	struct cuda_fft_plan *plan = (struct cuda_fft_plan *)plan_ptr;
	if (!plan)
		return;
	if (state)
		cudaSetDevice(((struct r5_cuda_state *)state)->device);
	for (int p = 0; p < plan->n_passes; p++)
		cufftDestroy(plan->passes[p].handle);
	free(plan);
}

static r5_status plan_passes(struct r5_cuda_state *s, struct cuda_fft_plan *plan)
{
	long sizes[R5_DIMS];
	int flagged[R5_DIMS], n_sizes = 0;
	for (int d = 0; d < R5_DIMS; d++) {
		if (plan->dims[d] == 1)
			continue;
		sizes[n_sizes] = plan->dims[d];
		flagged[n_sizes] = (plan->flags >> d) & 1UL;
		n_sizes++;
	}
	for (int i = 0; i < n_sizes;) {
		if (!flagged[i]) {
			i++;
			continue;
		}
		int run = 0;
		while (i + run < n_sizes && flagged[i + run] && run < 3)
			run++;
		R5_TRY(plan_pass(s, plan, sizes, n_sizes, i, run));
		i += run;
	}
	return R5_OK;
}

r5_status r5_cuda_fft_plan_make(void *state, void **plan_out, const long dims[R5_DIMS], unsigned long flags)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	*plan_out = NULL;
	if (flags >> R5_DIMS)
		return r5_set_error(R5_EINVAL, "cuda fft plan: flags 0x%lx name dimensions beyond %d", flags, R5_DIMS);
	struct cuda_fft_plan *plan = (struct cuda_fft_plan *)calloc(1, sizeof *plan);
	if (!plan)
		return r5_set_error(R5_ENOMEM, "cuda fft plan");
	plan->total = 1;
	for (int d = 0; d < R5_DIMS; d++) {
		if (dims[d] <= 0) {
			free(plan);
			return r5_set_error(R5_EINVAL, "cuda fft plan: dimension %d has size %ld", d, dims[d]);
		}
		plan->dims[d] = dims[d];
		plan->total *= dims[d];
	}
	plan->flags = flags;
	r5_status st = r5_cuda_activate(s);
	if (st == R5_OK)
		st = plan_passes(s, plan);
	if (st != R5_OK) {
		r5_cuda_fft_plan_destroy(state, plan);
		return r5_error_context(st, "cuda fft plan");
	}
	*plan_out = plan;
	return R5_OK;
}

r5_status r5_cuda_fft_exec(void *state, void *plan_ptr, r5_cf *out, const r5_cf *in, int inverse)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	struct cuda_fft_plan *plan = (struct cuda_fft_plan *)plan_ptr;
	R5_TRY(r5_cuda_activate(s));
	if (out != in)
		R5_CU("cudaMemcpyAsync (fft input)", cudaMemcpyAsync(out, in, sizeof(r5_cf) * (size_t)plan->total,
								      cudaMemcpyDeviceToDevice, s->stream));
	int direction = inverse ? CUFFT_INVERSE : CUFFT_FORWARD;
	for (int p = 0; p < plan->n_passes; p++) {
		const struct fft_pass *pass = &plan->passes[p];
		for (long l = 0; l < pass->loops; l++) {
			cufftComplex *data = (cufftComplex *)(out + l * pass->loop_step);
			R5_TRY(r5_cufft_check(cufftExecC2C(pass->handle, data, data, direction), "cufftExecC2C"));
		}
	}
	return R5_OK;
}
