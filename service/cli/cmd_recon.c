/* recon5t recon: offline reconstruction of an ISMRMRD HDF5 or BART .cfl scan.
 *   recon5t recon IN(.h5|.cfl) --out OUT(.h5|.cfl) [--png DIR] [--dicom DIR] [--dicom-enhanced DIR]
 *                 [--nifti DIR] [--bids DIR --subject S [--session T]]
 *                 [--backend cpu|gpu|auto] [--traj TRAJ.cfl]
 *                 [--pipeline auto|cartesian|sense|grappa|cs|grid] [--coils-virtual N] [--maps 1|2]
 *                 [--iters N] [--lambda L] [--reg l1|tv|l1+tv] [--combine rss|adaptive]
 *                 [--gfactor OUT] [--param k=v] [--memory-report] [--fft-wisdom PATH] [--mask MASK.cfl]
 * --reg sets the parameter reg (cs's regulariser) as --maps sets maps; cs's weights are
 * --param lambda_l1=W and lambda_tv=W (--lambda stays the Tikhonov weight of sense and grappa).
 * --traj TRAJ.cfl makes a .cfl k-space [1, n_read, n_spokes, coils] a non-Cartesian scan with
 * that BART trajectory [3, n_read, n_spokes] (r5_scan_from_cfl_traj: the image matrix from the
 * trajectory's extent); --frame-spokes N, --frame-step N and --dcf D set grid's keys.
 * --mask MASK.cfl (BART [1, Y, Z], 0/1, as `recon5t mask` writes it) undersamples fully sampled
 * .cfl k-space before the reconstruction (recon/io/scan_mask.h): the pipeline sees only the
 * lines the mask keeps, and their pattern. A mask that leaves sense or cs (asked for, or what
 * auto picks) no calibration region ESPIRiT can use is refused at once, naming the mask.
 * Exit status: 0 done, 2 bad input (options, parameters, or a scan or mask they do not fit:
 * R5_EINVAL), 1 any other failure.
 * --fft-wisdom PATH (or the environment's R5_FFT_WISDOM; the option wins) plans the CPU FFTs
 * with FFTW_MEASURE and keeps the measurements in PATH (recon/cpu/cpu_fft.h); without either,
 * FFTW_ESTIMATE.
 * Prints what ran (pipeline, back end, stage timings) and, when IN holds a phantom's ground
 * truth, the image quality against it.
 *
 * --memory-report checks r5_recon_memory_estimate against what the process really held: it
 * prints "memory: estimate_mib=E peak_rss_delta_mib=D" with E the estimate for the scan and
 * parameters, and D = VmHWM - VmRSS (/proc/self/status) in MiB:
 *   VmRSS  read just before the scan is read, after a warm-up read of the same file that is
 *          freed at once: the libraries are mapped from exec (this is the process after main's
 *          OpenMP re-exec, and VmHWM starts afresh at exec) and the reader's code pages and
 *          HDF5's free lists are resident by then, so they are not counted as the job's;
 *   VmHWM  read as soon as r5_recon_run returns, before any output is written.
 * D is thus the resident peak of reading the scan, creating the context and reconstructing,
 * the images out included, plus code pages first touched by the reconstruction (FFTW, OpenMP)
 * and OpenMP's thread stacks. So that D counts what was held rather than what glibc kept for
 * reuse, the report fixes glibc's mmap threshold at its default 128 KiB (glibc otherwise raises
 * it as big blocks are freed, and FFTW's per-thread buffers then pile up in per-thread arenas,
 * ~2 MiB a thread), and hands freed heap back (malloc_trim) before the baseline and again
 * before the reconstruction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli.h"
#include "cli_util.h"
#include "recon/core/log.h"
#include "recon/cpu/cpu_fft.h"
#include "recon/io/bids.h"
#include "recon/io/cfl.h"
#include "recon/io/dicom.h"
#include "recon/io/ismrmrd_images.h"
#include "recon/io/png.h"
#include "recon/io/scan_mask.h"
#include "recon/pipeline/memory_estimate.h"
#include "recon/pipeline/pipeline.h"
#include "recon/pipeline/quality.h"
#include "recon/pipeline/sampling_pattern.h"

struct recon_args {
	const char *in, *out, *png, *dicom, *dicom_enhanced, *gfactor, *backend, *group, *fft_wisdom, *mask, *traj;
	const char *nifti, *bids, *subject, *session;
	int device, quiet, memory_report, deidentify;
	r5_recon_params params;
};

static void recon_usage(FILE *f)
{
	fprintf(f, "usage: recon5t recon IN(.h5|.cfl) --out OUT(.h5|.cfl) [options]\n"
		   "  --png DIR              PNG previews, one per image\n"
		   "  --dicom DIR            DICOM MR Image Storage series (magnitude, phase, g-factor)\n"
		   "  --dicom-enhanced DIR   DICOM Enhanced MR series: one multi-frame file per volume\n"
		   "  --nifti DIR            NIfTI-1 (.nii.gz) + JSON sidecar of the magnitude series\n"
		   "  --bids DIR             a BIDS dataset: DIR/sub-S[/ses-T]/anat/..., no patient data\n"
		   "  --subject S --session T  BIDS labels (letters and digits; --session optional)\n"
		   "  --deidentify           DICOM without patient data (PS3.15 Annex E Basic Profile)\n"
		   "  --backend B            cpu | gpu | auto (default auto)\n"
		   "  --device N             CUDA device index\n"
		   "  --group G              ISMRMRD dataset group (default dataset)\n"
		   "  --pipeline P           auto | cartesian | sense | grappa | cs | grid | grasp\n"
		   "                         (non-Cartesian scans: grid | sense | cs | grasp)\n"
		   "  --traj TRAJ.cfl        BART trajectory [3, n_read, n_spokes] of a .cfl k-space\n"
		   "                         [1, n_read, n_spokes, coils]: a non-Cartesian scan\n"
		   "  --frame-spokes N       grid, non-Cartesian sense and cs: frames of N consecutive spokes\n"
		   "                         (0: one frame); grasp: 0 = 21\n"
		   "  --frame-step N         grid: spokes between frames (default frame-spokes)\n"
		   "  --dcf D                grid density compensation: auto | ramp | pipe | none\n"
		   "  --combine C            rss | adaptive (cartesian, grappa, grid)\n"
		   "  --coils-virtual N      coil compression to N virtual coils\n"
		   "  --maps 1|2             ESPIRiT map sets (sense)\n"
		   "  --iters N              CG-SENSE iterations; cs: FISTA / ADMM iterations\n"
		   "  --lambda L             Tikhonov weight (sense, grappa)\n"
		   "  --reg R                cs regulariser: l1 (wavelets) | tv | l1+tv (default l1)\n"
		   "                         cs weights: --param lambda_l1=W --param lambda_tv=W, W >= 0\n"
		   "                         relative to max |E^H y|, or auto (default: from the noise)\n"
		   "  --gfactor OUT          g-factor map (.h5 or .cfl)\n"
		   "  --param KEY=VALUE      any reconstruction parameter (grappa.kernel=7: one pipeline's);\n"
		   "                         one the pipeline that runs does not use is an error\n"
		   "  --memory-report        estimated vs measured peak memory of the reconstruction\n"
		   "  --fft-wisdom PATH      CPU FFTs planned with FFTW_MEASURE, measurements kept in PATH\n"
		   "                         (default: R5_FFT_WISDOM; neither: FFTW_ESTIMATE)\n"
		   "  --mask MASK.cfl        undersample a .cfl k-space with a [1, Y, Z] 0/1 mask first\n"
		   "                         (recon5t mask writes one)\n"
		   "  --quiet                no summary\n");
}

static int parse_recon_args(int argc, char **argv, struct recon_args *a)
{
	memset(a, 0, sizeof *a);
	a->params = r5_recon_defaults;
	a->backend = "auto";
	a->fft_wisdom = getenv("R5_FFT_WISDOM");
	static const char *const param_flags[][2] = {
		{"--pipeline", "pipeline"}, {"--combine", "combine"}, {"--coils-virtual", "coils_virtual"},
		{"--maps", "maps"}, {"--iters", "iters"}, {"--lambda", "lambda"}, {"--calib", "calib"},
		{"--kernel", "kernel"}, {"--coil-energy", "coil_energy"}, {"--reg", "reg"},
		{"--frame-spokes", "frame_spokes"}, {"--frame-step", "frame_step"}, {"--dcf", "dcf"},
	};
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			recon_usage(stdout);
			return 1;
		}
		if (arg[0] != '-') {
			if (a->in)
				return r5_cli_fail(2, "recon: more than one input ('%s' and '%s')", a->in, arg);
			a->in = arg;
			continue;
		}
		if (!strcmp(arg, "--quiet")) {
			a->quiet = 1;
			continue;
		}
		if (!strcmp(arg, "--deidentify")) {
			a->deidentify = 1;
			continue;
		}
		if (!strcmp(arg, "--memory-report")) {
			a->memory_report = 1;
			continue;
		}
		if (i + 1 >= argc)
			return r5_cli_fail(2, "recon: %s needs a value", arg);
		const char *value = argv[++i];
		int done = 0;
		for (size_t k = 0; k < sizeof param_flags / sizeof param_flags[0] && !done; k++)
			if (!strcmp(arg, param_flags[k][0])) {
				if (r5_recon_params_set(&a->params, param_flags[k][1], value) != R5_OK)
					return r5_cli_fail(2, "recon: %s", r5_last_error());
				done = 1;
			}
		if (done)
			continue;
		if (!strcmp(arg, "--out"))
			a->out = value;
		else if (!strcmp(arg, "--png"))
			a->png = value;
		else if (!strcmp(arg, "--dicom"))
			a->dicom = value;
		else if (!strcmp(arg, "--dicom-enhanced"))
			a->dicom_enhanced = value;
		else if (!strcmp(arg, "--nifti"))
			a->nifti = value;
		else if (!strcmp(arg, "--bids"))
			a->bids = value;
		else if (!strcmp(arg, "--subject"))
			a->subject = value;
		else if (!strcmp(arg, "--session"))
			a->session = value;
		else if (!strcmp(arg, "--gfactor"))
			a->gfactor = value, a->params.gfactor = 1;
		else if (!strcmp(arg, "--backend"))
			a->backend = value;
		else if (!strcmp(arg, "--group"))
			a->group = value;
		else if (!strcmp(arg, "--fft-wisdom"))
			a->fft_wisdom = value;
		else if (!strcmp(arg, "--mask"))
			a->mask = value;
		else if (!strcmp(arg, "--traj"))
			a->traj = value;
		else if (!strcmp(arg, "--device"))
			a->device = atoi(value);
		else if (!strcmp(arg, "--param")) {
			char key[64];
			const char *eq = strchr(value, '=');
			if (!eq || eq == value || (size_t)(eq - value) >= sizeof key)
				return r5_cli_fail(2, "recon: --param wants KEY=VALUE, got '%s'", value);
			memcpy(key, value, (size_t)(eq - value));
			key[eq - value] = '\0';
			if (r5_recon_params_set(&a->params, key, eq + 1) != R5_OK)
				return r5_cli_fail(2, "recon: %s", r5_last_error());
		} else
			return r5_cli_fail(2, "recon: unknown option '%s' (see recon5t recon --help)", arg);
	}
	if (!a->in)
		return r5_cli_fail(2, "recon: no input file (see recon5t recon --help)");
	if (a->mask && !r5_cli_has_suffix(a->in, ".cfl") && !r5_cli_has_suffix(a->in, ".hdr"))
		return r5_cli_fail(2, "recon: --mask applies to BART .cfl k-space; '%s' is not one", a->in);
	if (a->traj && !r5_cli_has_suffix(a->in, ".cfl") && !r5_cli_has_suffix(a->in, ".hdr"))
		return r5_cli_fail(2, "recon: --traj goes with a BART .cfl k-space; '%s' is not one (an ISMRMRD file "
				      "carries its trajectory in the acquisitions)", a->in);
	if (a->traj && a->mask)
		return r5_cli_fail(2, "recon: --mask undersamples Cartesian k-space; it does not go with --traj");
	if (!a->out && !a->png && !a->dicom && !a->dicom_enhanced && !a->nifti && !a->bids)
		return r5_cli_fail(2, "recon: nothing to write: give --out, --png, --dicom, --dicom-enhanced, --nifti or --bids");
	if (a->bids && !a->subject)
		return r5_cli_fail(2, "recon: --bids needs --subject S");
	if ((a->subject || a->session) && !a->bids)
		return r5_cli_fail(2, "recon: --subject and --session go with --bids");
	if (r5_cpu_fft_configure(a->fft_wisdom) != R5_OK)
		return r5_cli_fail(2, "recon: --fft-wisdom: %s", r5_last_error());
	return 0;
}

/* NIfTI + sidecar, BIDS dataset: provenance names the input by its SHA-256 (never its path,
 * which may carry a patient's name). */
static r5_status write_research_outputs(const struct recon_args *a, const r5_image_set *set)
{
	if (!a->nifti && !a->bids)
		return R5_OK;
	char sha[65] = "";
	R5_TRY(r5_sha256_file(a->in, sha));
	if (a->nifti) {
		r5_bids_options opt = {sha, a->deidentify, NULL};
		R5_TRY(r5_nifti_write_series(set, &opt, a->nifti, "magnitude"));
		if (!a->quiet)
			printf("nifti: %s/magnitude.nii.gz + .json\n", a->nifti);
	}
	if (a->bids) {
		R5_TRY(r5_bids_write_dataset(set, sha, a->bids, a->subject, a->session));
		if (!a->quiet)
			printf("bids: dataset in %s (sub-%s)\n", a->bids, a->subject);
	}
	return R5_OK;
}

static r5_status write_outputs(const struct recon_args *a, const r5_image_set *set)
{
	if (a->out) {
		if (r5_cli_has_suffix(a->out, ".cfl"))
			R5_TRY(r5_cfl_write(a->out, set->images));
		else
			R5_TRY(r5_ismrmrd_write_image_set(a->out, a->group, set));
	}
	if (a->gfactor) {
		if (!set->gfactor)
			return r5_set_error(R5_ENOTSUP, "pipeline %s computed no g-factor map", set->pipeline);
		if (r5_cli_has_suffix(a->gfactor, ".cfl"))
			R5_TRY(r5_cfl_write(a->gfactor, set->gfactor));
		else
			R5_TRY(r5_ismrmrd_write_array_images(a->gfactor, NULL, "gfactor", set->gfactor, set));
	}
	if (a->png)
		R5_TRY(r5_png_write_set(a->png, set));
	unsigned kinds = 0;
	if (a->dicom || a->dicom_enhanced) {
		kinds = R5_DICOM_KIND_FLAG(R5_DICOM_MAGNITUDE) | R5_DICOM_KIND_FLAG(R5_DICOM_PHASE) |
			(set->gfactor ? R5_DICOM_KIND_FLAG(R5_DICOM_GFACTOR) : 0);
		/* a root-sum-of-squares image has no phase worth a series */
		if ((!strcmp(set->pipeline, "cartesian") || !strcmp(set->pipeline, "grid")) &&
		    !strstr(set->parameters, "combine=adaptive"))
			kinds &= ~R5_DICOM_KIND_FLAG(R5_DICOM_PHASE);
	}
	/* one study for both forms: the header's study UID, else one made here for both writers */
	r5_dicom_request req = {0};
	req.deidentify = a->deidentify;
	char study_uid[65] = "";
	if (!set->header.study_uid[0] && a->dicom && a->dicom_enhanced) {
		R5_TRY(r5_dicom_uid_generate(study_uid));
		req.study_uid = study_uid;
	}
	if (a->dicom) {
		long n = 0;
		R5_TRY(r5_dicom_write_set(set, &req, kinds, a->dicom, &n));
		if (!a->quiet)
			printf("dicom: %ld files in %s\n", n, a->dicom);
	}
	if (a->dicom_enhanced) {
		long n = 0;
		R5_TRY(r5_dicom_write_enhanced(set, &req, kinds, a->dicom_enhanced, &n));
		if (!a->quiet)
			printf("dicom enhanced: %ld files in %s\n", n, a->dicom_enhanced);
	}
	return write_research_outputs(a, set);
}

static void print_summary(const struct recon_args *a, const r5_image_set *set)
{
	char dims[128];
	printf("recon: %s -> pipeline %s on %s, images %s\n", a->in, set->pipeline, set->backend,
	       r5_dims_format(dims, sizeof dims, set->images->dims));
	printf("timings:");
	for (int i = 0; i < set->n_stages; i++)
		printf(" %s=%.3fs", set->stages[i].name, set->stages[i].seconds);
	printf("\n");
	if (r5_cli_has_suffix(a->in, ".cfl"))
		return;
	r5_array *truth = NULL;
	if (r5_ismrmrd_read_images(a->in, a->group, "ground_truth", &truth) != R5_OK)
		return; /* not a phantom: nothing to compare against */
	r5_quality_series series; /* frame by frame for a dynamic truth (quality.h) */
	if (r5_quality_compare_series(truth, set->images, NULL, 1, 0, &series) == R5_OK) {
		const r5_quality *q = &series.mean;
		printf("quality vs ground truth: nrmse=%.4f psnr=%.2f ssim=%.4f", q->nrmse, q->psnr, q->ssim);
		if (series.n_frames > 1)
			printf(" (mean over %ld frames)", series.n_frames);
		else if (series.truth_averaged)
			printf(" (against the time average of %ld frames)", truth->dims[R5_DIM_TIME]);
		printf("\n");
		r5_quality_series_free(&series);
	}
	r5_array_free(truth);
}

/* A "Key:   N kB" line of /proc/self/status in bytes; -1 when it cannot be read. */
static double proc_status_bytes(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	double bytes = -1;
	size_t n = strlen(key);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			bytes = 1024.0 * strtod(line + n + 1, NULL);
			break;
		}
	fclose(f);
	return bytes;
}

static void print_memory_report(const r5_scan *scan, const r5_recon_params *params, double rss_before)
{
	double peak = proc_status_bytes("VmHWM"), estimate = 0;
	if (r5_recon_memory_estimate(scan, params, &estimate) != R5_OK) {
		fprintf(stderr, "recon5t recon: memory estimate: %s\n", r5_last_error());
		return;
	}
	if (peak < 0 || rss_before < 0) {
		fprintf(stderr, "recon5t recon: memory report: /proc/self/status is not readable\n");
		return;
	}
	printf("memory: estimate_mib=%.1f peak_rss_delta_mib=%.1f\n", estimate / 1048576.0,
	       (peak - rss_before) / 1048576.0);
}

/* The pipeline that will run (auto resolved as r5_recon_run resolves it) must find a calibration
 * region in what the mask left; the error names the mask. */
static r5_status check_mask_calibration(const struct recon_args *a, const r5_scan *scan)
{
	const r5_recon_params *p = &a->params;
	const char *pipeline = strcmp(p->pipeline, "auto") ? p->pipeline : r5_sampling_pattern_auto_choice(scan, NULL, 0);
	r5_status s = r5_sampling_pattern_check_calib(scan, pipeline, p->sense.kernel_size, p->calib_size);
	if (s != R5_OK) {
		char reason[512];
		snprintf(reason, sizeof reason, "%s", r5_last_error());
		s = r5_set_error(s, "--mask %s: %s", a->mask, reason);
	}
	return s;
}

static r5_status read_scan(const struct recon_args *a, r5_scan **scan)
{
	if (!r5_cli_has_suffix(a->in, ".cfl") && !r5_cli_has_suffix(a->in, ".hdr"))
		return r5_scan_read_ismrmrd(a->in, a->group, NULL, scan);
	if (a->traj)
		return r5_scan_from_cfl_traj(a->in, a->traj, scan);
	R5_TRY(r5_scan_from_cfl(a->in, scan));
	if (!a->mask)
		return R5_OK;
	r5_array *mask = NULL;
	r5_status s = r5_cfl_read(a->mask, &mask);
	if (s != R5_OK) { /* say it is the mask that could not be read, not the scan */
		char reason[512];
		snprintf(reason, sizeof reason, "%s", r5_last_error());
		s = r5_set_error(s, "--mask: %s", reason);
	} else
		s = r5_scan_apply_mask(*scan, mask, a->mask);
	if (s == R5_OK)
		s = check_mask_calibration(a, *scan);
	r5_array_free(mask);
	if (s != R5_OK) {
		r5_scan_free(*scan);
		*scan = NULL;
	}
	return s;
}

static void return_freed_heap(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/* VmRSS before the scan is read, the reader warmed up (see the top of this file). */
static double memory_baseline(const struct recon_args *a)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
	r5_scan *warm_up = NULL;
	if (read_scan(a, &warm_up) == R5_OK)
		r5_scan_free(warm_up);
	r5_clear_error();
	return_freed_heap();
	return proc_status_bytes("VmRSS");
}

int r5_cli_recon(int argc, char **argv)
{
	struct recon_args a;
	int rc = parse_recon_args(argc, argv, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	r5_scan *scan = NULL;
	r5_ctx *ctx = NULL;
	r5_image_set *set = NULL;
	r5_status s;
	double rss_before = a.memory_report ? memory_baseline(&a) : -1;
	s = read_scan(&a, &scan);
	if (a.memory_report)
		return_freed_heap();
	if (s == R5_OK)
		s = r5_ctx_create(&ctx, a.backend, a.device);
	if (s == R5_OK)
		r5_info("back end: %s", r5_ctx_describe(ctx));
	if (s == R5_OK)
		s = r5_recon_run(ctx, scan, &a.params, NULL, &set);
	if (s == R5_OK && a.memory_report)
		print_memory_report(scan, &a.params, rss_before);
	if (s == R5_OK)
		s = write_outputs(&a, set);
	if (s == R5_OK && !a.quiet)
		print_summary(&a, set);
	if (s != R5_OK) /* name the input unless the message already does */
		fprintf(stderr, "recon5t recon: %s%s%s\n", strstr(r5_last_error(), a.in) ? "" : a.in,
			strstr(r5_last_error(), a.in) ? "" : ": ", r5_last_error());
	r5_image_set_free(set);
	r5_ctx_destroy(ctx);
	r5_scan_free(scan);
	return s == R5_OK ? 0 : s == R5_EINVAL ? 2 : 1;
}
