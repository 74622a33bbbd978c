/* Receiver noise for the phantoms: a reproducible random stream (xoshiro256**, seeded through
 * splitmix64 so that each acquisition line has its own stream and parallel generation gives the
 * same file), complex Gaussian samples, a correlated coil covariance model and its Cholesky
 * factor. Noise = L z with z ~ CN(0, I) (E|z|² = 1), so E[n nᴴ] = L Lᴴ = Psi. */
#ifndef R5_PHANTOMS_NOISE_H
#define R5_PHANTOMS_NOISE_H

#include <complex.h>
#include <stdint.h>

#include "../recon/core/status.h"

typedef struct r5_rng {
	uint64_t s[4];
} r5_rng;

/* Stream `stream` of generator `seed` (independent streams for different stream numbers). */
void r5_rng_seed(r5_rng *rng, uint64_t seed, uint64_t stream);
uint64_t r5_rng_next(r5_rng *rng);
double r5_rng_uniform(r5_rng *rng); /* [0, 1) */
/* Circular complex Gaussian with E|z|² = 1 (real and imaginary parts of variance 1/2). */
double complex r5_rng_cgauss(r5_rng *rng);

/* Coil noise covariance model (n x n Hermitian, row major): coil c has standard deviation
 * sigma·level_c with level_c spread over [0.8, 1.2] (deterministic, varies along the array);
 * coils a < b have correlation (correlation·e^{0.3i})^(b-a): neighbours `correlation`, decaying
 * with distance (AR(1), positive definite for correlation in [0, 0.9)). */
r5_status r5_noise_covariance(int n_coils, double sigma, double correlation, double complex *psi);

/* Lower Cholesky factor L of a Hermitian positive definite matrix (row major, n x n):
 * psi = L Lᴴ. Fails with R5_EINVAL naming the failing pivot when psi is not positive definite. */
r5_status r5_cholesky(int n, const double complex *psi, double complex *lower);
/* Solves (L Lᴴ) x = b in place for a Cholesky factor L (n x n) and m right-hand sides stored as
 * columns of b (n x m, row major). */
void r5_cholesky_solve(int n, const double complex *lower, int m, double complex *b);

/* *lower := the Cholesky factor of r5_noise_covariance(n_coils, sigma, correlation) (malloc'd,
 * caller frees), or NULL when sigma <= 0 (no noise). */
r5_status r5_noise_factor(int n_coils, double sigma, double correlation, double complex **lower);

/* out[c] = Σ_j L[c][j] z_j for one sample of n_coils (adds correlated noise to out). */
void r5_noise_add(int n_coils, const double complex *lower, r5_rng *rng, float complex *out, long stride);

#endif
