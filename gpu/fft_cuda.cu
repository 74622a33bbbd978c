/* cuFFT plans for the back-end FFT slots: unnormalised, uncentred transforms over any subset of
 * the 16 dimensions of a contiguous array, batched over the others (centring and 1/sqrt(N) are
 * added by recon/core/fft.c).
 *
 * The cutting into cuFFT advanced-layout passes is gpu/fft_layout.h (checked on the host by the
 * GPU suite): one plan per group of up to three flagged dimensions, batched over the largest run
 * of the others, so most transforms are one cufftExec per pass. Passes run in place on `out`
 * (after one device copy when out != in), which leaves `in` untouched whatever cuFFT does with
 * out-of-place inputs. Plans are bound to the context's stream and made without a work area of
 * their own: every plan of a context shares the state's one work area (stream order makes that
 * safe), grown to the largest plan's need from the context's memory pool, so sixteen cached
 * vessel-wall shapes do not hold sixteen work areas. A plan is destroyed only after its stream
 * has drained. */
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"
#include "fft_layout.h"

struct fft_pass {
	cufftHandle handle;
	struct r5_fft_pass_layout layout;
};

struct cuda_fft_plan {
	long dims[R5_DIMS];
	unsigned long flags;
	long total;
	size_t work_bytes; /* the largest work area of its passes */
	int n_passes;
	struct fft_pass passes[R5_DIMS];
};

r5_status r5_cuda_fft_work_reserve(struct r5_cuda_state *s, size_t bytes)
{
	if (bytes <= s->fft_work_bytes)
		return R5_OK;
	/* the old area may still be in use by queued transforms: its free is stream-ordered */
	r5_cuda_mem_free(s, s->fft_work);
	s->fft_work = NULL;
	s->fft_work_bytes = 0;
	R5_TRY(r5_cuda_mem_alloc(s, &s->fft_work, bytes, "the cuFFT work area"));
	s->fft_work_bytes = bytes;
	return R5_OK;
}

/* Makes the cuFFT plan of one pass; counts it in the plan once its handle exists. */
static r5_status plan_pass(struct r5_cuda_state *s, struct cuda_fft_plan *plan, const struct r5_fft_pass_layout *layout)
{
	struct fft_pass *pass = &plan->passes[plan->n_passes];
	pass->layout = *layout;
	size_t work = 0;
	long long n[3], inembed[3];
	memcpy(n, layout->n, sizeof n);
	memcpy(inembed, layout->inembed, sizeof inembed);
	R5_TRY(r5_cufft_check(cufftCreate(&pass->handle), "cufftCreate"));
	plan->n_passes++; /* from here on, destroying the plan releases this handle */
	R5_TRY(r5_cufft_check(cufftSetStream(pass->handle, s->stream), "cufftSetStream"));
	R5_TRY(r5_cufft_check(cufftSetAutoAllocation(pass->handle, 0), "cufftSetAutoAllocation"));
	R5_TRY(r5_cufft_check(cufftMakePlanMany64(pass->handle, layout->rank, n, inembed, layout->istride,
						  layout->idist, inembed, layout->istride, layout->idist, CUFFT_C2C,
						  layout->batch, &work),
			      "cufftMakePlanMany64"));
	if (work > plan->work_bytes)
		plan->work_bytes = work;
	return R5_OK;
}

void r5_cuda_fft_plan_destroy(void *state, void *plan_ptr)
{
	struct cuda_fft_plan *plan = (struct cuda_fft_plan *)plan_ptr;
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	if (!plan)
		return;
	/* cuFFT frees the plan's device data at once: nothing queued may still read it */
	if (s && !s->retired) {
		r5_status st = r5_cuda_activate(s);
		if (st == R5_OK)
			st = r5_cuda_check(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (fft plan destroy)");
		if (st != R5_OK)
			r5_warn("cuda fft plan destroyed after a failed sync: %s", r5_last_error());
	}
	for (int p = 0; p < plan->n_passes; p++) {
		cufftResult res = cufftDestroy(plan->passes[p].handle);
		if (res != CUFFT_SUCCESS && !(s && s->retired))
			r5_warn("cuda cufftDestroy: cufftResult %d", (int)res);
	}
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
	if (st == R5_OK)
		st = r5_cuda_fft_work_reserve(s, plan->work_bytes);
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
	/* another plan may have grown the shared work area since this one was made */
	R5_TRY(r5_cuda_fft_work_reserve(s, plan->work_bytes));
	int direction = inverse ? CUFFT_INVERSE : CUFFT_FORWARD;
	for (int p = 0; p < plan->n_passes; p++) {
		const struct fft_pass *pass = &plan->passes[p];
		if (plan->work_bytes)
			R5_TRY(r5_cufft_check(cufftSetWorkArea(pass->handle, s->fft_work), "cufftSetWorkArea"));
		for (long l = 0; l < pass->layout.loops; l++) {
			cufftComplex *data = (cufftComplex *)(out + r5_fft_pass_offset(&pass->layout, l));
			R5_TRY(r5_cufft_check(cufftExecC2C(pass->handle, data, data, direction), "cufftExecC2C"));
		}
	}
	return R5_OK;
}
