#!/usr/bin/env bash
# End-to-end cases as data: every row of tests/cases/e2e.txt (its header explains the columns)
# is made (`recon5t phantom` or a real scan), reconstructed (`recon5t recon ... --backend B`) and
# compared (`recon5t compare REF IMG --scale`) against its reference and bounds, once per back
# end: cpu always, gpu when recon5t can open a CUDA device (probed once with a tiny scan: the
# error recon5t prints is the reason every gpu row is reported SKIP). Output, one line per bound:
#     case | backend | metric | value | bound | result | seconds
# A row whose input, recon, reference or metric is missing is FAIL, never a pass.
#
# With backend cpu-device (the device path on the CPU, R5_CPU_DEVICE=1: recon/cpu/
# backend_cpu_device.h) each row's image must also equal the cpu row's exactly (run cpu first).
#
# Usage: test_cases.sh [--backends cpu,gpu,cpu-device] [--cases REGEX] [--table FILE]
#   environment: R5_BIN (build folder) or R5_RECON5T (the recon5t program, e.g. a GPU bundle's),
#   R5_SHARED (data folder for `data` rows), R5_CASES_BACKENDS (default "cpu,gpu").
# Exit status: 0 all run bounds passed, 1 a bound failed, 77 nothing could run (all SKIP).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
table=${R5_CASES_TABLE:-$here/../cases/e2e.txt}
backends=${R5_CASES_BACKENDS:-cpu,gpu}
only=
while [ $# -gt 0 ]; do
	case $1 in
	--backends) backends=$2; shift 2 ;;
	--cases) only=$2; shift 2 ;;
	--table) table=$2; shift 2 ;;
	*) echo "test_cases.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ -f "$table" ] || { echo "test_cases.sh: no case table $table" >&2; exit 2; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
n_pass=0 n_fail=0 n_skip=0
declare -A image      # "backend/name" -> image file of a row that ran
declare -A skipped    # "backend/name" -> why the row was skipped
declare -A seen       # names already read (duplicates are a table error)

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }
row() { printf '%-22s | %-7s | %-6s | %-9s | %-9s | %-6s | %s\n' "$@"; }
result() { # name backend metric value bound PASS|FAIL|SKIP seconds [detail]
	row "$1" "$2" "$3" "$4" "$5" "$6" "$7"
	case $6 in PASS) n_pass=$((n_pass + 1)) ;; FAIL) n_fail=$((n_fail + 1)) ;; SKIP) n_skip=$((n_skip + 1)) ;; esac
	[ -n "${8:-}" ] && echo "    $6 $1 ($2): $8"
	return 0
}

# The input file of a row: a phantom made once per argument list, or a shared data file.
input_file() { # input-spec -> path on stdout; non-zero with the reason on stdout
	local kind=${1%% *} rest
	rest=$(trim "${1#"$kind"}")
	case $kind in
	phantom)
		local key f
		key=$(printf '%s' "$rest" | md5sum | cut -c1-16)
		f=$work/in/$key.h5
		if [ ! -f "$f" ]; then
			mkdir -p "$work/in"
			# shellcheck disable=SC2086  # the arguments are words by design
			"$R5" phantom $rest --out "$f" >"$work/in/$key.log" 2>&1 ||
				{ echo "phantom $rest: $(tail -1 "$work/in/$key.log")"; rm -f "$f"; return 1; }
		fi
		echo "$f" ;;
	data)
		local f=${R5_SHARED:-/nonexistent}/data/$rest
		[ -f "$f" ] || { echo "no $f"; return 2; }
		echo "$f" ;;
	*) echo "input must be 'phantom ARGS' or 'data PATH', got '$1'"; return 1 ;;
	esac
}

# One bound "metric<=x" / "metric>=x" against a compare line; prints the result row.
check_bound() { # name backend bound compare-line seconds
	local metric op limit value verdict=FAIL
	case $3 in
	*'<='*) metric=${3%%<=*} op='<=' limit=${3#*<=} ;;
	*'>='*) metric=${3%%>=*} op='>=' limit=${3#*>=} ;;
	*) result "$1" "$2" "?" "-" "$3" FAIL "$5" "bound must be METRIC<=X or METRIC>=X"; return ;;
	esac
	value=$(echo "$4" | field "$metric")
	if [ -z "$value" ]; then
		result "$1" "$2" "$metric" "-" "$op $limit" FAIL "$5" "no $metric in '$4'"
		return
	fi
	if [ "$op" = '<=' ]; then below "$value" "$limit" && verdict=PASS; else above "$value" "$limit" && verdict=PASS; fi
	result "$1" "$2" "$metric" "$value" "$op $limit" "$verdict" "$5"
}

# One row on one back end.
run_case() { # backend name input recon reference bounds needs
	local backend=$1 name=$2 ref=$5 bounds=$6 needs=$7 in out refimg line t0 reason rc
	t0=$(date +%s.%N)
	if [ "$needs" = gpu ] && [ "$backend" != gpu ]; then
		skipped[$backend/$name]="needs a GPU"
		result "$name" "$backend" "-" "-" "-" SKIP 0 "needs a GPU"
		return
	fi
	if [ -n "${gpu_missing:-}" ] && [ "$backend" = gpu ]; then
		skipped[$backend/$name]="no GPU"
		result "$name" "$backend" "-" "-" "-" SKIP 0
		return
	fi
	in=$(input_file "$3")
	rc=$?
	if [ $rc -eq 2 ]; then
		skipped[$backend/$name]=$in
		result "$name" "$backend" "-" "-" "-" SKIP 0 "$in"
		return
	elif [ $rc -ne 0 ]; then
		result "$name" "$backend" "-" "-" "-" FAIL 0 "$in"
		return
	fi
	refimg=
	case $ref in
	truth) refimg=$in ;;
	-) ;;
	case\ *)
		local other
		other=$(trim "${ref#case}")
		if [ -n "${skipped[$backend/$other]:-}" ]; then
			skipped[$backend/$name]="reference $other skipped"
			result "$name" "$backend" "-" "-" "-" SKIP 0 "reference $other skipped: ${skipped[$backend/$other]}"
			return
		fi
		refimg=${image[$backend/$other]:-}
		[ -n "$refimg" ] || { result "$name" "$backend" "-" "-" "-" FAIL 0 "reference case $other has no image"; return; } ;;
	*) result "$name" "$backend" "-" "-" "-" FAIL 0 "reference must be truth, 'case NAME' or -"; return ;;
	esac
	mkdir -p "$work/$backend"
	case $in in *.cfl) out=$work/$backend/$name.cfl ;; *) out=$work/$backend/$name.h5 ;; esac
	# shellcheck disable=SC2086
	if ! "$R5" recon "$in" --backend "$backend" --quiet --out "$out" $4 >"$work/$backend/$name.log" 2>&1; then
		result "$name" "$backend" "-" "-" "-" FAIL "$(seconds "$t0")" "recon: $(tail -1 "$work/$backend/$name.log")"
		return
	fi
	image[$backend/$name]=$out
	same_as_cpu "$backend" "$name" "$out" "$t0"
	if [ "$ref" = - ] || [ "$bounds" = - ]; then
		row "$name" "$backend" "-" "-" "-" "made" "$(seconds "$t0")"
		return
	fi
	line=$("$R5" compare "$refimg" "$out" --scale 2>&1) ||
		{ result "$name" "$backend" "-" "-" "-" FAIL "$(seconds "$t0")" "compare: $line"; return; }
	local b
	for b in $bounds; do check_bound "$name" "$backend" "$b" "$line" "$(seconds "$t0")"; done
}

# cpu-device computes the CPU back end's function on the same values: its image of a row is the
# cpu row's, bit for bit (psnr inf: no difference at all), wherever both ran.
same_as_cpu() { # backend name image t0
	[ "$1" = cpu-device ] && [ -n "${image[cpu/$2]:-}" ] || return 0
	local line psnr
	line=$("$R5" compare "${image[cpu/$2]}" "$3" 2>&1)
	psnr=$(echo "$line" | sed -n 's/.*psnr=\([^ ]*\).*/\1/p')
	if [ "$psnr" = inf ]; then
		result "$2" "$1" "=cpu" "psnr inf" "identical" PASS "$(seconds "$4")"
	else
		result "$2" "$1" "=cpu" "${psnr:--}" "identical" FAIL "$(seconds "$4")" "differs from the cpu image: $line"
	fi
}

seconds() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Can recon5t open a CUDA device? A 32x32 scan through --backend gpu says so (or why not).
probe_gpu() {
	"$R5" phantom --matrix 32 --coils 2 --out "$work/probe.h5" >/dev/null 2>&1 &&
		"$R5" recon "$work/probe.h5" --backend gpu --quiet --out "$work/probe-r.h5" >"$work/probe.log" 2>&1
}

start=$(date +%s.%N)
row case backend metric value bound result seconds
for backend in ${backends//,/ }; do
	gpu_missing=
	if [ "$backend" = gpu ] && ! probe_gpu; then
		gpu_missing=$(grep -v " INFO " "$work/probe.log" | tail -1)
		echo "gpu rows SKIP: ${gpu_missing:-recon5t --backend gpu failed} (R5_HAVE_CUDA=${R5_HAVE_CUDA:-unset})"
		gpu_missing=${gpu_missing:-no GPU}
	fi
	unset seen
	declare -A seen
	while IFS= read -r text || [ -n "$text" ]; do
		case $(trim "$text") in '' | '#'*) continue ;; esac
		IFS='|' read -r name input recon ref bounds needs extra <<<"$text"
		name=$(trim "$name") input=$(trim "$input") recon=$(trim "$recon") ref=$(trim "$ref")
		bounds=$(trim "$bounds") needs=$(trim "$needs")
		if [ -n "${extra:-}" ] || [ -z "$needs" ] || { [ "$needs" != cpu ] && [ "$needs" != gpu ]; }; then
			result "${name:-?}" "$backend" "-" "-" "-" FAIL 0 "malformed row (6 columns, needs cpu|gpu): $text"
			continue
		fi
		[ -n "${seen[$name]:-}" ] && { result "$name" "$backend" "-" "-" "-" FAIL 0 "duplicate case name"; continue; }
		seen[$name]=1
		[ -n "$only" ] && ! [[ $name =~ $only ]] && continue
		run_case "$backend" "$name" "$input" "$recon" "$ref" "$bounds" "$needs"
	done <"$table"
done
echo "cases: $n_pass passed, $n_fail failed, $n_skip skipped in $(seconds "$start") s ($(basename "$table"))"
[ "$n_fail" -eq 0 ] || exit 1
[ "$n_pass" -gt 0 ] || exit 77
exit 0
