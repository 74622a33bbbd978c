/* r5_header: the fields of the ISMRMRD XML header that reconstruction, the service and the
 * DICOM writer need, read with libxml2 XPath (libismrmrd's XML parser is C++ only). Strings are
 * empty when the header does not carry them; numbers are 0 (limits: present = 0). Only the
 * first encoding space is read. The original XML text is kept for re-emission. */
#ifndef R5_IO_HEADER_H
#define R5_IO_HEADER_H

#include <stddef.h>

#include "../core/status.h"

typedef struct r5_limit {
	int present;
	int min, max, center;
} r5_limit;

#define R5_HEADER_TRAJ_PARAMS 16

typedef struct r5_header {
	char *xml; /* owned, NUL-terminated */

	/* subject and study (subjectInformation, studyInformation, measurementInformation) */
	char patient_name[128], patient_id[64], patient_birthdate[16], patient_sex[8];
	float patient_weight_kg, patient_height_m;
	char study_uid[128], study_id[64], study_date[16], study_time[16], study_description[128];
	char accession_number[64], referring_physician[128];
	char measurement_id[128], series_uid[128], frame_of_reference_uid[128], series_description[128];
	char series_date[16], series_time[16];
	char protocol_name[128], sequence_name[128];
	char patient_position[8]; /* HFS, FFS, ... */
	int series_number;

	/* system (acquisitionSystemInformation, experimentalConditions) */
	char vendor[64], model[64], institution[128], station[64], device_serial[64];
	float field_T;
	long larmor_hz;
	int n_channels;
	float relative_noise_bw;

	/* sequenceParameters (first value of each list) */
	float tr_ms, te_ms, ti_ms, flip_deg, echo_spacing_ms;
	char sequence_type[64];

	/* encoding[0] */
	char trajectory[32]; /* cartesian, radial, spiral, ... */
	long enc_matrix[3], recon_matrix[3];
	float enc_fov_mm[3], recon_fov_mm[3];
	r5_limit k1, k2, average, slice, contrast, phase, repetition, set, segment;
	int accel[2];            /* parallelImaging accelerationFactor (1 when absent) */
	char calib_mode[32];     /* embedded, interleaved, separate, external, other, "" */
	char interleaving_dim[32];
	/* trajectoryDescription: identifier ("" when absent) and its first R5_HEADER_TRAJ_PARAMS
	 * userParameterLong / userParameterDouble in document order (recon/io/scan.h uses them) */
	char traj_identifier[64];
	int n_traj_long, n_traj_double;
	char traj_long_name[R5_HEADER_TRAJ_PARAMS][48], traj_double_name[R5_HEADER_TRAJ_PARAMS][48];
	long traj_long[R5_HEADER_TRAJ_PARAMS];
	double traj_double[R5_HEADER_TRAJ_PARAMS];
} r5_header;

/* The largest header r5_header_parse accepts, in bytes. */
#define R5_HEADER_MAX_BYTES_DEFAULT (1 << 20)

/* Parses ISMRMRD XML of at most R5_HEADER_MAX_BYTES_DEFAULT bytes. Refused (R5_EINVAL): a
 * larger header, any DOCTYPE (so no entity is declared, expanded or loaded), malformed XML.
 * Errors name the element path, the line and column, or the size and the limit, and never
 * quote the header's text (it may hold patient data); the result is cleared on failure. */
r5_status r5_header_parse(const char *xml, size_t length, r5_header *out);
/* The same with the caller's size limit in bytes (0: R5_HEADER_MAX_BYTES_DEFAULT; at most
 * INT_MAX, libxml2's limit). */
r5_status r5_header_parse_limited(const char *xml, size_t length, size_t max_bytes, r5_header *out);
/* Deep copy (duplicates xml). */
r5_status r5_header_copy(r5_header *dst, const r5_header *src);
void r5_header_clear(r5_header *h); /* frees xml, zeroes fields */

#endif
