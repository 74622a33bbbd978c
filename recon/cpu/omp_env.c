/* Passive OpenMP waiting for recon5t's programs (omp_env.h). */
#include "omp_env.h"

#include <stdlib.h>
#include <unistd.h>

void r5_cpu_passive_wait_reexec(char **argv)
{
	if (getenv("OMP_WAIT_POLICY") || getenv("R5_OMP_REEXEC"))
		return;
	if (setenv("OMP_WAIT_POLICY", "passive", 1) || setenv("R5_OMP_REEXEC", "1", 1))
		return;
	execv("/proc/self/exe", argv);
	/* exec failed: carry on with libgomp's default policy */
}
