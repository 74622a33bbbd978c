# Shared by the benchmark scripts bench_cs.sh and bench_pi.sh (sourced, not run): both tools run
# with OMP_NUM_THREADS (default 1: on a shared 2-core machine wall time with 2 threads measures the
# other load more than the tools) and OMP_WAIT_POLICY (default passive: spinning threads bill CPU
# time for waiting); recon5t plans its FFTs into the wisdom file R5_FFT_WISDOM (default
# ~/.cache/recon5t/fftw-wisdom; none: FFTW_ESTIMATE), passed as "${wisdom_args[@]}" (empty for
# none). Sourcing prints the threads, the load average and the wisdom file, and defines field.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
wisdom=${R5_FFT_WISDOM:-${XDG_CACHE_HOME:-$HOME/.cache}/recon5t/fftw-wisdom}
wisdom_args=()
if [ "$wisdom" != none ]; then
	mkdir -p "$(dirname "$wisdom")"
	wisdom_args=(--fft-wisdom "$wisdom")
fi
echo "threads: $OMP_NUM_THREADS, load average: $(cut -d' ' -f1-3 /proc/loadavg), fft wisdom: $wisdom"

# value of key=... in a recon5t line (compare, timings)
field() { sed -n "s/.*$1=\([0-9.eE+-]*\).*/\1/p"; }
