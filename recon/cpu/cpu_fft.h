/* How the CPU back end plans its FFTs (cpu_fft.c). FFTW's planner and its wisdom are
 * process-wide, so this setting is too; it sits behind the back end's one planner lock.
 *   no wisdom path (the default)  FFTW_ESTIMATE: planning is instant and touches no array.
 *   a wisdom path                 FFTW_MEASURE: a shape is timed once, on scratch arrays of the
 *                                 caller's size and alignment (measuring overwrites its arrays,
 *                                 so never on live data), and the result kept as FFTW wisdom in
 *                                 the file. A later plan of the same shape, in this process or
 *                                 another sharing the file, comes from the wisdom and measures
 *                                 nothing. The file is read at the first plan after
 *                                 configuration and rewritten after each newly measured plan:
 *                                 merged with what other processes wrote meanwhile, under a lock
 *                                 file (PATH.lock), written to a temporary file in the same
 *                                 folder and renamed over PATH, so a reader never sees half a
 *                                 file. An unreadable or corrupt file is logged and ignored
 *                                 (then replaced); a failed write is logged and planning goes on.
 * The recon5t CLI sets it from --fft-wisdom PATH or R5_FFT_WISDOM, recon5td from fft_wisdom. */
#ifndef R5_CPU_CPU_FFT_H
#define R5_CPU_CPU_FFT_H

#include "../core/status.h"

/* wisdom_path NULL or "" = FFTW_ESTIMATE. R5_EINVAL when the path is too long, R5_EIO when its
 * folder does not exist or is not writable (the message names path and folder). Plans already
 * made keep the mode they were made with. */
r5_status r5_cpu_fft_configure(const char *wisdom_path);

/* Counts since the process started, for tests and logs. */
typedef struct r5_cpu_fft_stats {
	long plans_estimate;        /* FFTW_ESTIMATE plans (no wisdom path, or no scratch memory) */
	long plans_from_wisdom;     /* FFTW_MEASURE plans found in the wisdom: nothing measured */
	long plans_measured;        /* FFTW_MEASURE plans timed on scratch arrays */
	long wisdom_reads_failed;   /* wisdom files present but unreadable or corrupt */
	long wisdom_writes;         /* wisdom files written */
	long wisdom_writes_failed;  /* writes that failed (logged) */
} r5_cpu_fft_stats;

void r5_cpu_fft_get_stats(r5_cpu_fft_stats *stats);

#endif
