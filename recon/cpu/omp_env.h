/* Process-wide OpenMP settings for recon5t's programs.
 *
 * libgomp spin-waits between parallel regions by default (OMP_WAIT_POLICY unset = active for a
 * while). A reconstruction makes many short parallel regions, and on a shared or small machine
 * the spinning threads take the cores the next region needs: measured 10x slower GRAPPA
 * application on 2 cores (1.39 s vs 0.115 s on und2x2). libgomp reads the policy once, when it
 * is loaded, so a program that wants passive waiting must have it in its environment from the
 * start: r5_cpu_passive_wait_reexec sets OMP_WAIT_POLICY=passive and re-executes the program
 * (once) unless the user set the variable. Call it first thing in main. */
#ifndef R5_CPU_OMP_ENV_H
#define R5_CPU_OMP_ENV_H

/* Returns only when no re-execution happened (already set, or exec failed: then it runs on
 * with the default policy). */
void r5_cpu_passive_wait_reexec(char **argv);

#endif
