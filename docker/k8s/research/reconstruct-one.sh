#!/bin/sh
# One index of the research Job: line JOB_COMPLETION_INDEX (0-based) of the file list names an
# ISMRMRD file under R5_DATA; it is reconstructed offline with `recon5t recon` (R5_PIPELINE,
# default auto) into DICOM under R5_RESULTS/dicom/NNNNN/ and one results row is written to
# R5_RESULTS/results/NNNNN.tsv (file, pipeline, status, seconds, images), one file per index so
# that parallel pods never append to the same file; `cat results/*.tsv` is the table.
# Output names are the index, never the input's name (which may carry patient data).
# Exit status: 0 when the file reconstructed, 1 when it failed (the Job retries it up to
# backoffLimit), 2 for a bad index or list.
set -u
list=${R5_FILE_LIST:-/etc/recon5t/research/files.txt}
data=${R5_DATA:-/data}
results=${R5_RESULTS:-/data/results}
pipeline=${R5_PIPELINE:-auto}
recon5t=${R5_RECON5T:-recon5t}
index=${JOB_COMPLETION_INDEX:-}

case "$index" in
'' | *[!0-9]*) echo "reconstruct-one: JOB_COMPLETION_INDEX '$index' is not an index" >&2; exit 2 ;;
esac
[ -r "$list" ] || { echo "reconstruct-one: file list $list is not readable" >&2; exit 2; }
# the list: one path per line, relative to R5_DATA; blank lines and # comments are skipped
file=$(grep -v -e '^[[:space:]]*$' -e '^[[:space:]]*#' "$list" | sed -n "$((index + 1))p")
[ -n "$file" ] || { echo "reconstruct-one: index $index is past the end of $list" >&2; exit 2; }

tag=$(printf '%05d' "$index")
dicom="$results/dicom/$tag"
rm -rf "$dicom"
mkdir -p "$results/results" "$dicom" || exit 2
start=$(date +%s.%N)
"$recon5t" recon "$data/$file" --pipeline "$pipeline" --dicom "$dicom" > "$results/results/$tag.log" 2>&1
rc=$?
end=$(date +%s.%N)
images=$(find "$dicom" -type f | wc -l)
if [ "$rc" -eq 0 ] && [ "$images" -gt 0 ]; then status=ok; else status="failed($rc)"; fi
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
printf '%s\t%s\t%s\t%s\t%s\n' "$file" "$pipeline" "$status" "$seconds" "$images" > "$results/results/$tag.tsv.part"
mv "$results/results/$tag.tsv.part" "$results/results/$tag.tsv"
echo "reconstruct-one: $tag $status in ${seconds} s, $images images"
[ "$status" = ok ]
