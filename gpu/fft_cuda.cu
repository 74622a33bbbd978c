/* cuFFT plans for the back-end FFT slots: unnormalised, uncentred transforms over any subset of
 * the 16 dimensions of a contiguous array, batched over the others (centring and 1/sqrt(N) are
 * added by recon/core/fft.c).
 *
 * The cutting into cuFFT advanced-layout passes is gpu/fft_layout.h (checked on the host by the
 * GPU suite). Passes run in place on `out` (after one device copy when out != in), which leaves `in`
 * untouched whatever cuFFT does with out-of-place inputs. Plans are bound to the context's
 * stream; cuFFT allocates each plan's work area. */
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"
#include "fft_layout.h"

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

/* Makes the cuFFT plan of one pass; counts it in the plan once its handle exists. */
static r5_status plan_pass(struct r5_cuda_state *s, struct cuda_fft_plan *plan, struct r5_fft_pass_layout *layout)
{
	struct fft_pass *pass = &plan->passes[plan->n_passes];
	pass->loops = layout->loops;
	pass->loop_step = layout->loop_step;
	size_t work = 0;
	R5_TRY(r5_cufft_check(cufftCreate(&pass->handle), "cufftCreate"));
	plan->n_passes++; /* from here on, destroying the plan releases this handle */
	R5_TRY(r5_cufft_check(cufftSetStream(pass->handle, s->stream), "cufftSetStream"));
	R5_TRY(r5_cufft_check(cufftMakePlanMany64(pass->handle, layout->rank, layout->n, layout->n, layout->istride,
						  layout->idist, layout->n, layout->istride, layout->idist, CUFFT_C2C,
						  layout->batch, &work),
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
	struct r5_fft_pass_layout layouts[R5_FFT_LAYOUT_DIMS];
	int n_layouts = r5_fft_layout(plan->dims, plan->flags, layouts);
	for (int p = 0; p < n_layouts; p++)
		R5_TRY(plan_pass(s, plan, &layouts[p]));
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
