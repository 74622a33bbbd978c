/* recon5t seq-report: what a physicist asks first about a Pulseq sequence (issue 18) — timing,
 * events, FOV, k-space extent and resolution, trajectory kind, sampling and undersampling, and the
 * reconstruction recon5t would run — as text or one JSON object, with a PNG of the trajectory.
 *   recon5t seq-report FILE.seq [--json] [--png FILE.png] [--png-size N] [--coils C]
 *                      [--check-auto] [--ignore-signature]
 * The numbers are recon/io/pulseq_report.h's. What `auto` picks is recon/pipeline's own rule
 * (r5_pipeline_auto_choice_for) applied to the scan a phantom of this sequence gives: the lines'
 * sampling mask (or a non-Cartesian trajectory) and C coils (8 unless --coils); --check-auto
 * simulates that phantom (phantoms/seq_phantom.h, a temporary file) and reads it back through the
 * scan builder to confirm (seconds: 9 s for the 377-spoke radial file on 2 cores).
 * A phantom the scan builder refuses is reported (auto.phantom_error), not a failure of the command.
 * A wrong md5 signature is an error unless --ignore-signature, which reports it as "wrong".
 * Exit status: 0 ok, 1 the file could not be read or reported, 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../phantoms/seq_phantom.h"
#include "cli.h"
#include "cli_util.h"
#include "recon/core/log.h"
#include "recon/io/pulseq_report.h"
#include "recon/io/scan.h"
#include "recon/pipeline/pipelines.h"
#include "recon/pipeline/sampling_pattern.h"

struct seq_report_args {
	const char *file, *png;
	int json, png_size, coils, check_auto, ignore_signature;
};

static void seq_report_usage(FILE *f)
{
	fprintf(f, "usage: recon5t seq-report FILE.seq [options]\n"
		   "  --json              one JSON object with the same fields, for scripts\n"
		   "  --png FILE.png      the trajectory: kx-ky (and ky-kz for 3D), samples coloured by time\n"
		   "  --png-size N        panel size in pixels, 64..8192 (default 512)\n"
		   "  --coils C           coils of the scan `auto` is asked about (default 8)\n"
		   "  --check-auto        simulate a phantom of the sequence and ask auto about that scan too\n"
		   "  --ignore-signature  report a file whose md5 signature does not match (signature: wrong)\n");
}

static int parse_count(const char *text, long lo, long hi, int *out)
{
	long v;
	if (!r5_cli_parse_long(text, lo, hi, &v))
		return 0;
	*out = (int)v;
	return 1;
}

/* 0: parsed; 1: --help printed; 2: usage error (printed). */
static int parse_seq_report_args(int argc, char **argv, struct seq_report_args *a)
{
	memset(a, 0, sizeof *a);
	a->png_size = 512, a->coils = 8;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			seq_report_usage(stdout);
			return 1;
		}
		if (!strcmp(o, "--json") || !strcmp(o, "--check-auto") || !strcmp(o, "--ignore-signature")) {
			*(!strcmp(o, "--json") ? &a->json : !strcmp(o, "--check-auto") ? &a->check_auto : &a->ignore_signature) = 1;
			continue;
		}
		if (o[0] != '-') {
			if (a->file)
				return r5_cli_fail(2, "seq-report: one sequence at a time (got '%s' and '%s')", a->file, o);
			a->file = o;
			continue;
		}
		if (strcmp(o, "--png") && strcmp(o, "--png-size") && strcmp(o, "--coils"))
			return r5_cli_fail(2, "seq-report: unknown option '%s' (see recon5t seq-report --help)", o);
		if (i + 1 >= argc)
			return r5_cli_fail(2, "seq-report: no value after '%s' (see recon5t seq-report --help)", o);
		const char *v = argv[++i];
		if (!strcmp(o, "--png"))
			a->png = v;
		else if (!strcmp(o, "--png-size") && !parse_count(v, 64, 8192, &a->png_size))
			return r5_cli_fail(2, "seq-report: --png-size wants an integer in 64..8192, got '%s'", v);
		else if (!strcmp(o, "--coils") && !parse_count(v, 1, 128, &a->coils))
			return r5_cli_fail(2, "seq-report: --coils wants an integer in 1..128, got '%s'", v);
	}
	if (!a->file)
		return r5_cli_fail(2, "seq-report: which sequence? (recon5t seq-report FILE.seq)");
	return 0;
}

/* The whole file, for a second parse without its signature; NULL (message set) when unreadable. */
static char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	long size = -1;
	if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= R5_SEQ_MAX_FILE_BYTES &&
	    fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1)) != NULL &&
	    fread(text, 1, (size_t)size, f) == (size_t)size) {
		fclose(f);
		*len = (size_t)size;
		return text;
	}
	r5_set_error(R5_EIO, "%s: %s", path, f ? "unreadable or too large" : strerror(errno));
	if (f)
		fclose(f);
	free(text);
	return NULL;
}

/* Reads the sequence, verifying its signature. When the signed part alone parses but the whole
 * file does not, the signature was what failed: "wrong", an error unless ignore_signature. */
static r5_status read_sequence(const char *path, int ignore_signature, r5_seq **seq, r5_seq_report_signature *sig)
{
	r5_status s = r5_seq_read(path, seq);
	if (s == R5_OK) {
		*sig = (*seq)->signature == R5_SEQ_SIGNATURE_VERIFIED ? R5_SEQ_REPORT_SIGNATURE_VERIFIED
								     : R5_SEQ_REPORT_SIGNATURE_MISSING;
		return R5_OK;
	}
	char first[1024];
	r5_text_escape(first, sizeof first, r5_last_error());
	size_t len = 0, signed_len = 0;
	char hex[33], *text = read_whole(path, &len);
	r5_seq *unsigned_seq = NULL;
	/* the signed part has no [SIGNATURE]: quiet the parser's "read unverified" warning, which would
	 * say the opposite of what is wrong (this command is single-threaded; the level is global) */
	r5_log_level level = r5_log_get_level();
	r5_log_set_level(R5_LOG_ERROR);
	int only_signature = text && r5_seq_md5(text, len, hex, &signed_len) == R5_OK && signed_len < len &&
			     r5_seq_parse(text, signed_len, path, &unsigned_seq) == R5_OK;
	r5_log_set_level(level);
	free(text);
	if (only_signature && ignore_signature) {
		fprintf(stderr, "recon5t seq-report: %s; reported anyway (--ignore-signature)\n", first); /* escaped */
		*seq = unsigned_seq;
		*sig = R5_SEQ_REPORT_SIGNATURE_WRONG;
		return R5_OK;
	}
	r5_seq_free(unsigned_seq);
	return r5_set_error(s, "%s%s", first,
			    only_signature ? " (the file was changed after it was signed; --ignore-signature reports it anyway)"
					   : "");
}

/* recon/pipeline's auto rule on the scan a phantom of this sequence gives: Cartesian lines as
 * the builder's sampling mask (header acceleration 1, as seq_phantom.h writes it), anything else
 * as a non-Cartesian scan of `coils` coils. */
static r5_status auto_by_rule(const r5_seq_kspace *ks, r5_seq_report *r, int coils)
{
	r5_scan scan;
	memset(&scan, 0, sizeof scan);
	long dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = scan.mask_dims[d] = 1;
	dims[R5_DIM_COIL] = coils;
	unsigned char *mask = NULL;
	r5_array *kspace = NULL, *traj = NULL;
	r5_status s = r5_array_alloc_host(dims, &kspace); /* one sample per coil: the rule reads the dims */
	scan.kspace = kspace;
	if (s == R5_OK && r->grid.kind == R5_SEQ_NONCARTESIAN) {
		long tdims[R5_DIMS];
		for (int d = 0; d < R5_DIMS; d++)
			tdims[d] = 1;
		tdims[0] = 3;
		s = r5_array_alloc_host(tdims, &traj);
		scan.traj = traj;
	} else if (s == R5_OK) {
		scan.mask_dims[R5_DIM_Y] = r->grid.matrix[1], scan.mask_dims[R5_DIM_Z] = r->grid.matrix[2];
		mask = malloc((size_t)r->grid.matrix[1] * (size_t)r->grid.matrix[2]);
		s = mask ? r5_seq_report_line_mask(ks, &r->grid, mask) : r5_set_error(R5_ENOMEM, "seq-report: mask");
		scan.sampled = mask;
	}
	if (s == R5_OK) {
		const char *name = r5_pipeline_auto_choice_for(&scan, NULL);
		snprintf(r->auto_pipeline, sizeof r->auto_pipeline, "%s", name);
		if (scan.traj)
			snprintf(r->auto_reason, sizeof r->auto_reason, "non-Cartesian, %s", strcmp(name, "sense")
				 ? "frames or one coil" : "one frame of several coils");
		else
			r5_sampling_pattern_auto_choice(&scan, r->auto_reason, sizeof r->auto_reason);
		r->auto_coils = coils;
	}
	free(mask);
	r5_array_free(kspace);
	r5_array_free(traj);
	return s;
}

/* auto's choice for an actual noise-free phantom scan of the sequence, through the scan builder. */
static r5_status auto_by_phantom(const char *seq_path, r5_seq_report *r, int coils)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096], scan_path[4200];
	snprintf(dir, sizeof dir, "%s/recon5t-seq-report-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return r5_set_error(R5_EIO, "seq-report --check-auto: temporary directory in %s: %s", tmp ? tmp : "/tmp",
				    strerror(errno));
	snprintf(scan_path, sizeof scan_path, "%s/phantom.h5", dir);
	struct r5_phantom_params p = r->two_d ? r5_phantom_defaults_2d : r5_phantom_defaults_3d;
	p.n_coils = coils, p.noise_sigma = 0;
	r5_seq_phantom_summary summary;
	r5_scan *scan = NULL;
	r5_status s = r5_seq_phantom_write(&p, seq_path, scan_path, &summary);
	if (s == R5_OK)
		s = r5_scan_read_ismrmrd(scan_path, NULL, NULL, &scan);
	if (s == R5_OK)
		snprintf(r->auto_phantom, sizeof r->auto_phantom, "%s", r5_pipeline_auto_choice_for(scan, NULL));
	r5_scan_free(scan);
	unlink(scan_path);
	rmdir(dir);
	return s == R5_OK ? s : r5_error_context(s, "seq-report --check-auto: phantom of %s", seq_path);
}

int r5_cli_seq_report(int argc, char **argv)
{
	struct seq_report_args a;
	int rc = parse_seq_report_args(argc, argv, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	r5_seq *seq = NULL;
	r5_seq_kspace ks;
	memset(&ks, 0, sizeof ks);
	r5_seq_report_signature sig = R5_SEQ_REPORT_SIGNATURE_MISSING;
	r5_seq_report *report = malloc(sizeof *report);
	r5_status s = report ? read_sequence(a.file, a.ignore_signature, &seq, &sig)
			     : r5_set_error(R5_ENOMEM, "seq-report");
	if (s == R5_OK)
		s = r5_seq_kspace_compute(seq, &ks);
	if (s == R5_OK && ks.n_samples == 0)
		s = r5_set_error(R5_EINVAL, "%s: the sequence has no ADC samples: no trajectory to report", a.file);
	if (s == R5_OK)
		s = r5_seq_report_compute(a.file, seq, &ks, sig, report);
	if (s == R5_OK)
		s = auto_by_rule(&ks, report, a.coils);
	/* a phantom the scan builder refuses is a finding about recon5t, not a failure of the report */
	if (s == R5_OK && a.check_auto && auto_by_phantom(a.file, report, a.coils) != R5_OK)
		r5_text_escape(report->auto_phantom_error, sizeof report->auto_phantom_error, r5_last_error());
	if (s == R5_OK && a.png)
		s = r5_seq_report_png(a.png, &ks, &report->grid, a.png_size);
	if (s == R5_OK)
		s = a.json ? r5_seq_report_write_json(stdout, report) : r5_seq_report_write_text(stdout, report);
	if (s == R5_OK && a.png && !a.json)
		printf("png          %s (%d x %d)\n", a.png, a.png_size * (report->two_d ? 1 : 2), a.png_size);
	if (s != R5_OK) { /* escaped: a binary file's first line is in the message */
		char message[1024];
		r5_text_escape(message, sizeof message, r5_last_error());
		fprintf(stderr, "recon5t seq-report: %s\n", message);
	}
	r5_seq_kspace_free(&ks);
	r5_seq_free(seq);
	free(report);
	return s == R5_OK ? 0 : 1;
}
