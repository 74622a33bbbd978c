/* CPU back end: one level of the orthogonal periodic wavelet transform along one dimension
 * (the zwavelet_step slot), an OpenMP loop running the per-element filter math shared with the
 * CUDA back end (recon/core/wavelet_math.h). Each output element gathers its inputs, so the
 * loops have no write conflicts. Along the innermost dimension a line is one run of memory;
 * along another one, the lines that differ only in the innermost nest dimension are done
 * together, sample by sample, so the inner loop walks memory in order. */
#include <complex.h>

#include "../core/wavelet_math.h"
#include "cpu_backend.h"

r5_status r5_cpu_zwavelet_step(void *state, int kind, int inverse, int dim, const long dims[R5_DIMS],
			       const long str[R5_DIMS], float complex *out, const float complex *in)
{
	(void)state;
	struct r5_wavelet_step w;
	long total = r5_wavelet_step_make(&w, kind, inverse, dim, dims, str);
	long n = w.n, step = w.step;
	if (w.p_inner) {
		long n_lines = w.n_lines;
#pragma omp parallel for schedule(static) if (total > 32768)
		for (long l = 0; l < n_lines; l++) {
			long off = r5_wavelet_line_offset(&w, l);
			for (long p = 0; p < n; p++)
				out[off + p * step] = r5_wavelet_value(&w, p, in + off);
		}
		return R5_OK;
	}
	long run = w.lines.dims[0], run_str = w.lines.str[0][0], n_groups = w.n_lines / run;
#pragma omp parallel for collapse(2) schedule(static) if (total > 32768)
	for (long g = 0; g < n_groups; g++)
		for (long p = 0; p < n; p++) {
			long off = r5_wavelet_line_offset(&w, g * run);
			for (long i = 0; i < run; i++)
				out[off + i * run_str + p * step] = r5_wavelet_value(&w, p, in + off + i * run_str);
		}
	return R5_OK;
}
