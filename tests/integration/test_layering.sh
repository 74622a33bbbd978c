#!/usr/bin/env bash
# The layering of ../shared/DESIGN.md's folder table, checked on the sources: what each layer
# may include. A violation prints the file, the line and the rule, and fails.
#   recon/core                        core only (and libc)
#   recon/cpu, gpu                    core
#   recon/linop, recon/solve, calib   core and each other (never io, cpu, gpu, backends, ISMRMRD)
#   recon/io                          core (and recon/backends for a host context)
set -uo pipefail
src=${R5_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src" || exit 1
bad=0
# check DIR PATTERN RULE: no #include in DIR's files matches PATTERN
check() {
	local dir=$1 pattern=$2 rule=$3 hits
	hits=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($pattern)" \
		$(find "$dir" -name '*.[ch]' -o -name '*.cu' -o -name '*.cc' | sort) 2>/dev/null)
	if [ -n "$hits" ]; then
		echo "layering: $rule"
		echo "$hits" | sed 's/^/  /'
		bad=1
	fi
}
check recon/core '\.\./(io|cpu|linop|solve|calib|pipeline|backends)/|\.\./\.\./(gpu|service)/|ismrmrd|fftw|cuda|hdf5|libxml' \
	'recon/core includes core only'
check recon/cpu '\.\./(io|linop|solve|calib|pipeline|backends)/|ismrmrd|hdf5|libxml' 'recon/cpu includes core only'
check gpu '\.\./recon/(io|cpu|linop|solve|calib|pipeline|backends)/|ismrmrd|fftw' 'gpu/ includes core only'
for layer in recon/linop recon/solve recon/calib; do
	check $layer '\.\./(io|cpu|pipeline|backends)/|\.\./\.\./(gpu|service)/|ismrmrd|fftw|cuda|hdf5|libxml' \
		"$layer includes core, linop, solve and calib only"
done
check recon/io '\.\./(cpu|linop|solve|calib|pipeline)/|\.\./\.\./(gpu|service)/' 'recon/io includes core only'
if [ $bad = 0 ]; then
	echo "layering: every include follows the folder table"
fi
exit $bad
