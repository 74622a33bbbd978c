/* Pulseq sequence files (.seq, versions 1.4.x and 1.3.x) read into tables, and the k-space
 * trajectory they play at every ADC sample.
 *
 * The format is the open Pulseq specification (Layton et al., MRM 2017; "Pulseq file format
 * specification" 1.4): a text file of sections. [VERSION] (major/minor/revision), [DEFINITIONS]
 * (key and value; every key is kept, the rasters are parsed), [BLOCKS] (one line per block: id,
 * duration in BlockDurationRaster units, then the ids of its RF, Gx, Gy, Gz, ADC and extension
 * events; in 1.3 the duration column names a [DELAYS] event instead), [RF], [GRADIENTS]
 * (arbitrary, shaped), [TRAP], [ADC], [DELAYS] (1.3), [EXTENSIONS] (the per-block lists and the
 * "extension NAME ID" tables), [SHAPES] (run-length compressed derivatives, below) and
 * [SIGNATURE].
 *
 * Units as read are converted to SI: seconds, Hz, Hz/m (gradients), radians. Event ids are
 * positive; 0 in a block means "none".
 *
 * Shapes: when num_samples equals the number of values written, the values are the shape;
 * otherwise they are Pulseq's compression of the shape's first difference: a value written
 * twice in a row is followed by a count c and stands for c + 2 copies; the shape is the running
 * sum. The decompressed length must equal num_samples exactly.
 *
 * Signature: Pulseq writes the md5 of the file as it was before the signature was appended,
 * which is every byte up to, not including, the newline right before "[SIGNATURE]" (the file
 * ends "...last value\n" + "\n[SIGNATURE]..." and the second "\n" belongs to the signature).
 * `md5sum` of the three signed files in ../shared/data/pulseq cut there gives their hashes. A
 * file without a hash (bart seq writes "# TODO") is read with a warning; a wrong hash is an
 * error.
 *
 * Errors (R5_EINVAL; R5_ENOTSUP for a version other than 1.3/1.4) name the line and the event:
 * "line 17: block 5 names ADC event 3, which [ADC] does not define". */
#ifndef R5_IO_PULSEQ_H
#define R5_IO_PULSEQ_H

#include <stddef.h>

#include "../core/status.h"

/* Caps applied before anything is allocated from a count in the file. */
#define R5_SEQ_MAX_FILE_BYTES (1L << 30)
#define R5_SEQ_MAX_SHAPE_SAMPLES (1L << 24)
#define R5_SEQ_MAX_LINE 4096

typedef struct r5_seq_definition {
	char *key;
	char *value; /* the rest of the line, trimmed */
} r5_seq_definition;

typedef struct r5_seq_shape {
	long id;
	long n;         /* decompressed samples */
	double *values; /* n values */
	long line;      /* of its shape_id line */
} r5_seq_shape;

typedef struct r5_seq_rf {
	long id;
	double amplitude_hz;
	long mag_shape, phase_shape, time_shape; /* time_shape 0: samples on the RF raster */
	double delay_s, freq_hz, phase_rad;
	long line;
} r5_seq_rf;

typedef enum r5_seq_grad_kind { R5_SEQ_GRAD_TRAP = 0, R5_SEQ_GRAD_SHAPED = 1 } r5_seq_grad_kind;

/* One id space for [GRADIENTS] and [TRAP], as in Pulseq. */
typedef struct r5_seq_grad {
	long id;
	r5_seq_grad_kind kind;
	double amplitude_hz_m;
	double rise_s, flat_s, fall_s;       /* trapezoids */
	long amp_shape, time_shape;          /* shaped; time_shape 0: samples on the gradient raster */
	double delay_s;
	long line;
} r5_seq_grad;

typedef struct r5_seq_adc {
	long id;
	long n_samples;
	double dwell_s, delay_s, freq_hz, phase_rad;
	long line;
} r5_seq_adc;

typedef struct r5_seq_delay { /* 1.3 only */
	long id;
	double delay_s;
	long line;
} r5_seq_delay;

/* A row of [EXTENSIONS]' list: extension `type` (an id of a spec), its row `ref` in that spec's
 * table, then the next list row (0: end). */
typedef struct r5_seq_ext_list {
	long id, type, ref, next;
	long line;
} r5_seq_ext_list;

typedef struct r5_seq_ext_row {
	long id;
	char *text; /* the rest of the line ("288 LIN" for LABELSET) */
	long line;
} r5_seq_ext_row;

/* "extension NAME ID" and the rows after it. */
typedef struct r5_seq_ext_spec {
	char *name;
	long type;
	r5_seq_ext_row *rows;
	long n_rows, cap_rows;
	long line;
} r5_seq_ext_spec;

typedef struct r5_seq_block {
	long id;
	double duration_s; /* 1.4: from the file; 1.3: the longest event or the delay */
	long duration_raster; /* 1.4: as written; 1.3: the [DELAYS] id */
	long rf, gx, gy, gz, adc, ext;
	long line;
} r5_seq_block;

typedef enum r5_seq_signature_state {
	R5_SEQ_SIGNATURE_NONE = 0,     /* no [SIGNATURE] or no hash in it */
	R5_SEQ_SIGNATURE_VERIFIED = 1, /* md5 matches */
} r5_seq_signature_state;

typedef struct r5_seq {
	int major, minor;
	char revision[32];
	r5_seq_definition *definitions;
	long n_definitions, cap_definitions;
	double grad_raster_s, rf_raster_s, adc_raster_s, block_raster_s;
	r5_seq_block *blocks; /* in file order */
	long n_blocks, cap_blocks;
	r5_seq_rf *rf; /* the event tables, sorted by id */
	long n_rf, cap_rf;
	r5_seq_grad *grads;
	long n_grads, cap_grads;
	r5_seq_adc *adc;
	long n_adc, cap_adc;
	r5_seq_delay *delays;
	long n_delays, cap_delays;
	r5_seq_ext_list *ext_list;
	long n_ext_list, cap_ext_list;
	r5_seq_ext_spec *ext_specs;
	long n_ext_specs, cap_ext_specs;
	r5_seq_shape *shapes;
	long n_shapes, cap_shapes;
	r5_seq_signature_state signature;
	char md5_hex[33]; /* of the signed part; "" when the file has no [SIGNATURE] */
} r5_seq;

/* Parses text[0..len) (need not be NUL terminated). `name` is used in messages. */
r5_status r5_seq_parse(const char *text, size_t len, const char *name, r5_seq **out);
r5_status r5_seq_read(const char *path, r5_seq **out);
void r5_seq_free(r5_seq *seq);

/* The md5 (lower-case hex) of what Pulseq signs: text up to the newline before "\n[SIGNATURE]"
 * at a line start, or the whole text when there is none. *signed_len (may be NULL) gets the
 * number of bytes hashed. */
r5_status r5_seq_md5(const char *text, size_t len, char hex[33], size_t *signed_len);

/* NULL when absent. */
const char *r5_seq_definition_get(const r5_seq *seq, const char *key);
/* Parses up to max numbers from a definition ("FOV 0.22 0.22 0.004"); returns how many, 0 if
 * absent or not numeric. */
int r5_seq_definition_numbers(const r5_seq *seq, const char *key, double *values, int max);

const r5_seq_rf *r5_seq_find_rf(const r5_seq *seq, long id);
const r5_seq_grad *r5_seq_find_grad(const r5_seq *seq, long id);
const r5_seq_adc *r5_seq_find_adc(const r5_seq *seq, long id);
const r5_seq_shape *r5_seq_find_shape(const r5_seq *seq, long id);
const r5_seq_ext_spec *r5_seq_find_ext_spec(const r5_seq *seq, long type);
const r5_seq_ext_list *r5_seq_find_ext_list(const r5_seq *seq, long id);

/* Total duration (s): the sum of the block durations. */
double r5_seq_duration(const r5_seq *seq);

#endif
