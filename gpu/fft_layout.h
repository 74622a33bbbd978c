/* How the CUDA back end cuts an FFT over any subset of the 16 dimensions of a contiguous array
 * into cuFFT "advanced layout" plans (plain C, included by gpu/fft_cuda.cu and by the GPU suite,
 * which replays the layout with a naive DFT on the host — no device needed — and compares it with
 * FFTW, so the cutting is checked on every CUDA build).
 *
 * Dimensions of size 1 are dropped. The flagged dimensions, in order, are cut into groups of at
 * most three (cuFFT's largest rank); each group is one pass, whether its dimensions are
 * neighbours or not: cuFFT's storage sizes (inembed) give each transformed dimension its own
 * stride, so {x, z} is one rank-2 plan whose batch runs over y. The dimensions a pass does not
 * transform form runs of neighbours (each run is one linear index, neighbours being contiguous
 * across each other); the largest run is the plan's batch (idist = its stride), and only the
 * other runs, if any, are looped over as separate executions at pointer offsets. Before, every
 * run of flagged neighbours was a pass of its own and anything between was looped: {1, 3, 4} of
 * 8x6x5x4x3 took 2 passes and 9 executions, now 1 pass and 5.
 *
 * cuFFT addresses element (k_0, .., k_{rank-1}) of batch b (k_0 slowest, sizes n[]) at
 *   b*idist + ((k_0*inembed[1] + k_1)*inembed[2] + k_2)*istride
 * (inembed[0] is not used in the address), so transformed dimension j has the stride
 * istride * inembed[j+1] * ... * inembed[rank-1]. */
#ifndef R5_GPU_FFT_LAYOUT_H
#define R5_GPU_FFT_LAYOUT_H

#define R5_FFT_LAYOUT_DIMS 16

struct r5_fft_pass_layout {
	int rank;
	long long n[3];       /* transformed sizes, slowest first, as cuFFT wants */
	long long inembed[3]; /* storage sizes (see above); inembed[0] = n[0] */
	long long istride, idist, batch;
	int n_loops;                          /* dimensions looped over outside cuFFT */
	long loop_size[R5_FFT_LAYOUT_DIMS];   /* their sizes */
	long loop_stride[R5_FFT_LAYOUT_DIMS]; /* and strides (elements) */
	long loops;                           /* executions of the pass: the product of loop_size */
};

/* Element offset of execution `l` (0 <= l < loops) of a pass. */
static inline long r5_fft_pass_offset(const struct r5_fft_pass_layout *pass, long l)
{
	long offset = 0;
	for (int i = 0; i < pass->n_loops; i++) {
		offset += (l % pass->loop_size[i]) * pass->loop_stride[i];
		l /= pass->loop_size[i];
	}
	return offset;
}

/* One pass transforming sizes[t[0]] < .. < sizes[t[rank-1]] (indices into the dropped-size-1
 * list; strides[] their element strides). */
static inline void r5_fft_pass_layout_make(struct r5_fft_pass_layout *pass, const long *sizes, const long *strides,
					   int n_sizes, const int *t, int rank)
{
	pass->rank = rank;
	for (int j = 0; j < rank; j++)
		pass->n[j] = sizes[t[rank - 1 - j]];
	pass->inembed[0] = pass->n[0];
	for (int j = 1; j < rank; j++)
		pass->inembed[j] = strides[t[rank - j]] / strides[t[rank - 1 - j]];
	pass->istride = strides[t[0]];
	/* runs of untransformed neighbours: the largest is the batch, the others loops */
	long run_size[R5_FFT_LAYOUT_DIMS], run_stride[R5_FFT_LAYOUT_DIMS];
	int n_runs = 0, next = 0, largest = -1;
	for (int i = 0; i < n_sizes; i++) {
		if (next < rank && t[next] == i) {
			next++;
			continue;
		}
		int starts_run = i == 0 || (next > 0 && t[next - 1] == i - 1);
		if (starts_run) {
			run_size[n_runs] = sizes[i];
			run_stride[n_runs++] = strides[i];
		} else {
			run_size[n_runs - 1] *= sizes[i];
		}
	}
	for (int r = 0; r < n_runs; r++)
		if (largest < 0 || run_size[r] > run_size[largest])
			largest = r;
	pass->batch = largest < 0 ? 1 : run_size[largest];
	pass->idist = largest < 0 ? 1 : run_stride[largest];
	pass->n_loops = 0;
	pass->loops = 1;
	for (int r = 0; r < n_runs; r++) {
		if (r == largest)
			continue;
		pass->loop_size[pass->n_loops] = run_size[r];
		pass->loop_stride[pass->n_loops++] = run_stride[r];
		pass->loops *= run_size[r];
	}
}

/* Fills passes[] (at most 16) for a contiguous array `dims` and returns how many; 0 means the
 * transform is the identity (nothing flagged with size > 1). */
static inline int r5_fft_layout(const long dims[R5_FFT_LAYOUT_DIMS], unsigned long flags,
				struct r5_fft_pass_layout passes[R5_FFT_LAYOUT_DIMS])
{
	long sizes[R5_FFT_LAYOUT_DIMS], strides[R5_FFT_LAYOUT_DIMS], stride = 1;
	int flagged[R5_FFT_LAYOUT_DIMS], n_sizes = 0, n_flagged = 0, n_passes = 0;
	for (int d = 0; d < R5_FFT_LAYOUT_DIMS; d++) {
		if (dims[d] != 1) {
			if ((flags >> d) & 1UL)
				flagged[n_flagged++] = n_sizes;
			sizes[n_sizes] = dims[d];
			strides[n_sizes++] = stride;
		}
		stride *= dims[d];
	}
	for (int first = 0; first < n_flagged; first += 3) {
		int rank = n_flagged - first < 3 ? n_flagged - first : 3;
		r5_fft_pass_layout_make(&passes[n_passes++], sizes, strides, n_sizes, flagged + first, rank);
	}
	return n_passes;
}

#endif
