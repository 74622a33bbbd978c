/* R5_HD marks per-element functions compiled by both the C compiler (CPU back end) and nvcc
 * (CUDA back end), so that both compute the same function. */
#ifndef R5_CORE_HD_H
#define R5_CORE_HD_H
#ifdef __CUDACC__
#define R5_HD __host__ __device__ static inline
#else
#define R5_HD static inline
#endif
/* M_PI is not in strict C11 */
#define R5_PI 3.14159265358979323846
#endif
