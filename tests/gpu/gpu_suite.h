/* Shared by the files of the GPU parity suite (gpu_suite.c runs them): the CPU/GPU context pair,
 * the "job" that runs one back-end call on both sides, and the reporting helpers. */
#ifndef R5_TESTS_GPU_SUITE_H
#define R5_TESTS_GPU_SUITE_H

#include <complex.h>
#include <stdint.h>

#include "recon/core/backend.h"
#include "recon/core/ctx.h"

#define JOB_MAX_BUFS 4
#define TOL 1e-5       /* default relative tolerance */
#define TOL_LOOSE 1e-4 /* FFTs over more than 2^20 elements, eigen-decomposition */

enum { INIT_RANDOM = 0, INIT_NAN = 1 };

struct pair {
	r5_ctx *cpu, *gpu;
	const struct r5_backend *cb, *gb;
	void *cs, *gs;
};

struct suite {
	int passed, failed;
	int selftest; /* the "gpu" side is the CPU back end (R5_GPU_SUITE_SELFTEST) */
};
extern struct suite g_suite;

struct job;
/* Runs the operation on one back end with that back end's buffers (host or device). */
typedef r5_status (*job_run_fn)(const struct r5_backend *b, void *state, float complex **buf, const struct job *j,
				double complex *scalar);

struct job {
	const char *op;
	char shape[64];
	int n_bufs;
	long len[JOB_MAX_BUFS];
	int init[JOB_MAX_BUFS];
	int out;    /* buffer compared */
	int full;   /* every element of it must be written */
	int scalar; /* compare the scalar result instead */
	double tol;
	job_run_fn run;
	/* parameters, as the operation needs them */
	long n;
	float complex alpha, beta;
	float lambda;
	int code, flags, dim, inverse;
	long dims[R5_DIMS];
	long str[3][R5_DIMS];
	long offset[3]; /* element offset of each strided array inside its buffer */
	long m, cols, k, lda, ldb, ldc;
};

void suite_seed(uint64_t seed);
double suite_uniform(void);
float complex suite_crand(void);
void suite_row(const char *op, const char *shape, double rel, double max_abs, double tol, int ok, const char *note);
void suite_fail(const char *op, const char *shape, const char *why);
void suite_compare(const char *op, const char *shape, const float complex *cpu, const float complex *gpu, long n,
		   int full, double tol);
void suite_run_job(struct pair *p, const struct job *j);

float complex *dev_alloc(struct pair *p, long n);
void dev_free(struct pair *p, float complex *ptr);
r5_status dev_put(struct pair *p, float complex *dst, const float complex *src, long n);
r5_status dev_get(struct pair *p, float complex *dst, const float complex *src, long n);
float complex *host_fill(long n, int init);

/* "[33 17 1 5]" of the first `rank` dims */
void suite_shape(char *text, size_t size, const long *dims, int rank);

void suite_elementwise(struct pair *p); /* suite_ops.c */
void suite_strided(struct pair *p);     /* suite_ops.c */
void suite_linops(struct pair *p);      /* suite_ops.c: recon/linop's case table */
void suite_fft(struct pair *p);         /* suite_fft.c */
/* Replays gpu/fft_layout.h with a naive DFT on the host against FFTW; 1 when all agree. */
int suite_fft_layout_check(void);
void suite_linalg(struct pair *p);      /* suite_linalg.c */
void suite_generic(struct pair *p);     /* suite_generic.c: r5_fft/r5_ifft and the pipeline */
void suite_wavelet(struct pair *p);     /* suite_wavelet.c: recon/linop/wavelet.h */
void suite_nufft(struct pair *p);       /* suite_nufft.c: recon/linop/nufft.h (tile method) */

#endif
