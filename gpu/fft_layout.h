/* How the CUDA back end cuts an FFT over any subset of the 16 dimensions of a contiguous array
 * into cuFFT "advanced layout" passes (plain C, included by gpu/fft_cuda.cu and by the GPU suite,
 * which replays the layout with a naive DFT on the host — no device needed — and compares it with
 * FFTW, so the cutting is checked on every CUDA build).
 *
 * Dimensions of size 1 are dropped; the flagged ones form runs of neighbours; each run, cut into
 * pieces of at most three dimensions (cuFFT's largest rank), is one pass. For a pass over
 * dimensions with `inner` elements below them and `outer` blocks above:
 *   inner == 1: istride 1, idist N, batch outer                           (one execution)
 *   otherwise : istride inner, and the larger of inner / outer is the batch (idist 1 or
 *               inner*N); the smaller is a loop of executions at pointer offsets loop_step.
 * cuFFT addresses element (k_0, .., k_{rank-1}) of batch b (k_0 slowest, sizes n[]) at
 *   b*idist + ((k_0*n[1] + k_1)*n[2] + k_2)*istride   (inembed = n). */
#ifndef R5_GPU_FFT_LAYOUT_H
#define R5_GPU_FFT_LAYOUT_H

#define R5_FFT_LAYOUT_DIMS 16

struct r5_fft_pass_layout {
	int rank;
	long long n[3]; /* slowest first, as cuFFT wants */
	long long istride, idist, batch;
	long loops;     /* executions of the pass */
	long loop_step; /* elements between consecutive executions */
};

static inline void r5_fft_pass_layout_make(struct r5_fft_pass_layout *pass, const long *sizes, int n_sizes, int first,
					   int rank)
{
	long long inner = 1, fft_n = 1, outer = 1;
	for (int i = 0; i < first; i++)
		inner *= sizes[i];
	for (int j = 0; j < rank; j++) {
		pass->n[j] = sizes[first + rank - 1 - j];
		fft_n *= sizes[first + j];
	}
	for (int i = first + rank; i < n_sizes; i++)
		outer *= sizes[i];
	pass->rank = rank;
	if (inner == 1) {
		pass->istride = 1, pass->idist = fft_n, pass->batch = outer;
		pass->loops = 1, pass->loop_step = 0;
	} else if (inner >= outer) {
		pass->istride = inner, pass->idist = 1, pass->batch = inner;
		pass->loops = (long)outer, pass->loop_step = (long)(inner * fft_n);
	} else {
		pass->istride = inner, pass->idist = inner * fft_n, pass->batch = outer;
		pass->loops = (long)inner, pass->loop_step = 1;
	}
}

/* Fills passes[] (at most 16) for a contiguous array `dims` and returns how many; 0 means the
 * transform is the identity (nothing flagged with size > 1). */
static inline int r5_fft_layout(const long dims[R5_FFT_LAYOUT_DIMS], unsigned long flags,
				struct r5_fft_pass_layout passes[R5_FFT_LAYOUT_DIMS])
{
	long sizes[R5_FFT_LAYOUT_DIMS];
	int flagged[R5_FFT_LAYOUT_DIMS], n_sizes = 0, n_passes = 0;
	for (int d = 0; d < R5_FFT_LAYOUT_DIMS; d++) {
		if (dims[d] == 1)
			continue;
		sizes[n_sizes] = dims[d];
		flagged[n_sizes] = (int)((flags >> d) & 1UL);
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
		r5_fft_pass_layout_make(&passes[n_passes++], sizes, n_sizes, i, run);
		i += run;
	}
	return n_passes;
}

#endif
