/* BIDS output around the NIfTI writer (nifti.h): a JSON sidecar per series (BIDS units:
 * seconds for RepetitionTime/EchoTime/InversionTime where ISMRMRD has ms, degrees for
 * FlipAngle, tesla, mm) with the reconstruction's provenance (pipeline, parameters, back end,
 * software version, SHA-256 of the input), and a BIDS raw dataset layout
 * (dataset_description.json, README, participants.tsv, sub-S/ses-T/anat/sub-S_ses-T_<suffix>).
 * BIDS output never carries patient name, ID, birth date, institution, station, serial number
 * or protocol/series text (free text may name the patient): the subject label stands in. */
#ifndef R5_IO_BIDS_H
#define R5_IO_BIDS_H

#include "../core/status.h"
#include "images.h"

typedef struct r5_bids_options {
	const char *input_sha256; /* hex, or NULL: "InputHash": "sha256:..." (the input file's bytes) */
	int deidentified;         /* 1: BIDS (no institution or other site text) */
	/* hex, or NULL: "InputStreamHash": "sha256:..." — a stream has no file: the server hashes the
	 * ISMRMRD XML header, then every imaging or noise acquisition as it was added: its
	 * ISMRMRD_AcquisitionHeader (340 bytes), its trajectory floats, its data floats, in arrival
	 * order (service/API.md) */
	const char *input_stream_sha256;
} r5_bids_options;

/* The sidecar JSON text (NUL-terminated, caller frees). */
r5_status r5_bids_sidecar(const r5_image_set *set, const r5_bids_options *opt, char **json);
/* SHA-256 of a file's bytes as 64 hex digits. */
r5_status r5_sha256_file(const char *path, char hex[65]);
/* SHA-256 over bytes given in pieces: begin, update any number of times, end (writes the hex and
 * frees; *h NULL after). r5_sha256_free drops one not ended (NULL harmless). */
typedef struct r5_sha256 r5_sha256;
r5_status r5_sha256_begin(r5_sha256 **h);
r5_status r5_sha256_update(r5_sha256 *h, const void *data, size_t length);
r5_status r5_sha256_end(r5_sha256 **h, char hex[65]);
void r5_sha256_free(r5_sha256 *h);
/* dir/stem.nii.gz and dir/stem.json (dir created). */
r5_status r5_nifti_write_series(const r5_image_set *set, const r5_bids_options *opt, const char *dir,
				const char *stem);
/* BIDS suffix from the sequence parameters: T2w (TE >= 60 ms, TR >= 1500 ms), PDw (TR >= 1500 ms),
 * else T1w. */
const char *r5_bids_suffix(const r5_header *h);
/* The dataset under root for subject/session labels (alphanumeric, else R5_EINVAL). Runs add to
 * one dataset: dataset_description.json and README are written only when absent (a researcher's
 * edits stay), participants.tsv keeps its rows and gains the subject's once. */
r5_status r5_bids_write_dataset(const r5_image_set *set, const char *input_sha256, const char *root,
				const char *subject, const char *session);

#endif
