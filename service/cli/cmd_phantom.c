/* recon5t phantom: writes a numerical phantom scan (phantoms/phantom.h) as ISMRMRD HDF5 with the
 * ground truth in the same file. Options are parsed into r5_phantom_params; unknown options and
 * bad values are usage errors (exit 2) naming the option. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../phantoms/phantom.h"
#include "../../phantoms/seq_phantom.h"
#include "cli.h"

static void phantom_usage(FILE *out)
{
	fprintf(out,
		"usage: recon5t phantom --out FILE.h5 [options]\n"
		"       recon5t phantom --seq FILE.seq --out FILE.h5 [--kind K --coils C --noise S ...]\n"
		"  --seq FILE.seq            sample the object along a Pulseq sequence's own trajectory (matrix,\n"
		"                            FOV, readouts, slices and timing from the sequence; phantoms/seq_phantom.h;\n"
		"                            --kind shepp-logan|vessel-wall|dynamic, dynamic with --frame-spokes S:\n"
		"                            frames of S readouts, a truth per frame; default one frame)\n"
		"  --kind shepp-logan|shepp-logan-3d|vessel-wall|dynamic   object (default shepp-logan)\n"
		"  --matrix N[,N[,N]]        recon matrix (default 256 in 2D, 128 in 3D, 128,128,64 vessel-wall)\n"
		"  --fov MM[,MM[,MM]]        FOV in mm (default 1 mm voxels, vessel-wall 0.5 mm; 2D third value =\n"
		"                            slice thickness, 5)\n"
		"  --coils C                 receive coils, 1..128 (default 8)\n"
		"  --coil-model loops|uniform  loops: coils around the object (default); uniform: one coil of\n"
		"                            sensitivity 1 (a body coil, --coils 1)\n"
		"  --sampling full|uniform|poisson   (default full)\n"
		"  --accel R[,Rz]            acceleration along ky[,kz] (poisson: product)\n"
		"  --calib W                 fully sampled centre width (default 24)\n"
		"  --noise SIGMA             complex noise std per k-space sample (default 0)\n"
		"  --noise-correlation RHO   neighbour-coil noise correlation (default 0.2)\n"
		"  --noise-samples N         noise scan samples per coil (default 8192)\n"
		"  --oblique DEG[,DEG2]      rotation about slice, then about read (degrees)\n"
		"  --position X,Y,Z          slice/volume centre, mm LPS (default 10,-20,30)\n"
		"  --oversampling N          readout oversampling (default 2)\n"
		"  --seed N                  random seed (default 42)\n"
		"dynamic (2D golden-angle radial, beating ring and contrast uptake; default 128^2, 2 mm, noise 0.01):\n"
		"  --frames F                frames of the truth (default 24)\n"
		"  --frame-spokes S          spokes per frame (default 21)\n"
		"  --tr MS                   time per spoke (default 4 ms)\n"
		"  --heart-period S          period of the beating ring (default 0.8 s)\n"
		"  --per-frame-motion 0|1    1: the object moves per frame, 0: per spoke (default 0)\n");
}

/* Parses up to max comma-separated numbers; returns how many, or -1 when malformed. */
static int parse_list(const char *text, double *values, int max)
{
	int count = 0;
	const char *s = text;
	while (*s) {
		char *end;
		errno = 0;
		double v = strtod(s, &end);
		if (end == s || errno || count == max)
			return -1;
		values[count++] = v;
		if (*end == ',' && end[1])
			s = end + 1;
		else if (*end == '\0')
			s = end;
		else
			return -1;
	}
	return count;
}

static int as_int(double v, int *out)
{
	if (v != (double)(int)v)
		return 0;
	*out = (int)v;
	return 1;
}

static int bad_value(const char *option, const char *value)
{
	fprintf(stderr, "recon5t phantom: bad value '%s' for %s\n", value, option);
	return 2;
}

/* Applies one option; returns 0 or the exit status of a usage error. */
/* What the command line said besides the parameters. */
typedef struct given {
	const char *out, *seq;
	int fov, frame_spokes;
	const char *grid_option; /* the first option that sets what a sequence sets (refused with --seq) */
} given;

static int apply_option(struct r5_phantom_params *p, const char *option, const char *value, given *g)
{
	static const char *const grid_options[] = {"--matrix", "--fov",	 "--sampling", "--accel",
						   "--calib",  "--oversampling", "--frames",   "--tr"};
	for (size_t k = 0; k < sizeof grid_options / sizeof *grid_options && !g->grid_option; k++)
		if (!strcmp(option, grid_options[k]))
			g->grid_option = grid_options[k];
	g->frame_spokes |= !strcmp(option, "--frame-spokes");
	double v[3];
	int n = parse_list(value, v, 3), three_d = r5_phantom_is_3d(p);
	if (!strcmp(option, "--out")) {
		g->out = value;
	} else if (!strcmp(option, "--seq")) {
		g->seq = value;
	} else if (!strcmp(option, "--kind")) {
		/* handled before defaults */
	} else if (!strcmp(option, "--coil-model")) {
		if (strcmp(value, "loops") && strcmp(value, "uniform"))
			return bad_value(option, value);
		p->uniform_coil = !strcmp(value, "uniform");
	} else if (!strcmp(option, "--sampling")) {
		if (r5_sampling_parse(value, &p->sampling) != R5_OK)
			return bad_value(option, value);
	} else if (!strcmp(option, "--matrix")) {
		if (n < 1 || n > (three_d ? 3 : 2))
			return bad_value(option, value);
		for (int d = 0; d < (three_d ? 3 : 2); d++)
			if (!as_int(v[d < n ? d : n - 1], &p->matrix[d]))
				return bad_value(option, value);
	} else if (!strcmp(option, "--fov")) {
		if (n < 1)
			return bad_value(option, value);
		for (int d = 0; d < (three_d ? 3 : 2); d++)
			p->fov_mm[d] = v[d < n ? d : (n < 3 ? n - 1 : 2)];
		if (!three_d && n == 3)
			p->fov_mm[2] = v[2];
		g->fov = 1;
	} else if (!strcmp(option, "--coils") || !strcmp(option, "--calib") || !strcmp(option, "--oversampling") ||
		   !strcmp(option, "--noise-samples") || !strcmp(option, "--frames") ||
		   !strcmp(option, "--frame-spokes") || !strcmp(option, "--per-frame-motion")) {
		int *field = !strcmp(option, "--coils") ? &p->n_coils
			     : !strcmp(option, "--calib") ? &p->calib
			     : !strcmp(option, "--oversampling") ? &p->readout_oversampling
			     : !strcmp(option, "--frames") ? &p->n_frames
			     : !strcmp(option, "--frame-spokes") ? &p->frame_spokes
			     : !strcmp(option, "--per-frame-motion") ? &p->per_frame_motion
							       : &p->n_noise_samples;
		if ((field == &p->n_frames || field == &p->frame_spokes || field == &p->per_frame_motion) &&
		    p->kind != R5_PHANTOM_DYNAMIC) {
			fprintf(stderr, "recon5t phantom: %s applies to --kind dynamic only\n", option);
			return 2;
		}
		if (n != 1 || !as_int(v[0], field))
			return bad_value(option, value);
	} else if (!strcmp(option, "--accel")) {
		if (n < 1 || n > 2 || !as_int(v[0], &p->accel[0]) || !as_int(n == 2 ? v[1] : 1, &p->accel[1]))
			return bad_value(option, value);
	} else if (!strcmp(option, "--tr") || !strcmp(option, "--heart-period")) {
		if (n != 1)
			return bad_value(option, value);
		*(!strcmp(option, "--tr") ? &p->tr_ms : &p->heart_period_s) = v[0];
	} else if (!strcmp(option, "--noise") || !strcmp(option, "--noise-correlation")) {
		if (n != 1)
			return bad_value(option, value);
		*(!strcmp(option, "--noise") ? &p->noise_sigma : &p->noise_correlation) = v[0];
	} else if (!strcmp(option, "--oblique")) {
		if (n < 1 || n > 2)
			return bad_value(option, value);
		p->oblique_count = n;
		p->oblique_deg[0] = v[0], p->oblique_deg[1] = n > 1 ? v[1] : 0;
	} else if (!strcmp(option, "--position")) {
		if (n != 3)
			return bad_value(option, value);
		memcpy(p->position_mm, v, sizeof v);
	} else if (!strcmp(option, "--seed")) {
		char *end;
		errno = 0;
		unsigned long long seed = strtoull(value, &end, 10);
		if (*end || end == value || errno)
			return bad_value(option, value);
		p->seed = seed;
	} else {
		fprintf(stderr, "recon5t phantom: unknown option '%s'\n", option);
		return 2;
	}
	return 0;
}

/* Splits "--opt=value" / "--opt value"; returns the index of the next argument or -1. */
static int next_option(int argc, char **argv, int i, char *option, size_t size, const char **value)
{
	const char *eq = strchr(argv[i], '=');
	if (eq) {
		size_t len = (size_t)(eq - argv[i]) < size - 1 ? (size_t)(eq - argv[i]) : size - 1;
		memcpy(option, argv[i], len);
		option[len] = '\0';
		*value = eq + 1;
		return i + 1;
	}
	snprintf(option, size, "%s", argv[i]);
	if (i + 1 >= argc)
		return -1;
	*value = argv[i + 1];
	return i + 2;
}

static int phantom_from_seq(const struct r5_phantom_params *p, const char *seq, const char *out)
{
	r5_seq_phantom_summary sum;
	if (r5_seq_phantom_write(p, seq, out, &sum) != R5_OK) {
		fprintf(stderr, "recon5t phantom: %s\n", r5_last_error());
		return 1;
	}
	const r5_seq_grid *g = &sum.grid;
	printf("phantom %s along %s: %s trajectory (grid error %.2g cycles, offsets %.4g %.4g %.4g), written as %s, "
	       "matrix %dx%dx%d, FOV %.4gx%.4gx%.4g mm, %ld readouts (%ld reversed), %ld samples, %ld slice(s)",
	       r5_phantom_kind_name(p->kind == R5_PHANTOM_SHEPP_LOGAN && !g->two_d ? R5_PHANTOM_SHEPP_LOGAN_3D : p->kind),
	       seq, r5_seq_kind_name(g->kind), g->max_grid_error, g->offset[0], g->offset[1], g->offset[2],
	       r5_seq_layout_name(sum.layout), sum.matrix[0], sum.matrix[1], sum.matrix[2], sum.fov_mm[0], sum.fov_mm[1],
	       sum.fov_mm[2], sum.n_readouts, sum.n_reversed, sum.n_samples, sum.n_slices);
	if (sum.n_grid_lines > 0)
		printf(", %ld/%ld lines%s", sum.n_lines, sum.n_grid_lines,
		       sum.wrapped[1] || sum.wrapped[2] ? " (line indices wrapped modulo the matrix)" : "");
	printf(", %d coils, noise %g, %ld noise acquisitions, coil rss^2 %.3f..%.3f, sequence %.4g s, %.2f s -> %s\n",
	       p->n_coils, p->noise_sigma, sum.n_noise_acquisitions, sum.rss_min, sum.rss_max, sum.duration_s, sum.seconds,
	       out);
	return 0;
}

int r5_cli_phantom(int argc, char **argv)
{
	r5_phantom_kind kind = R5_PHANTOM_SHEPP_LOGAN;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			phantom_usage(stdout);
			return 0;
		}
		const char *name = !strcmp(argv[i], "--kind") && i + 1 < argc ? argv[i + 1]
				   : !strncmp(argv[i], "--kind=", 7)       ? argv[i] + 7
									   : NULL;
		if (name && r5_phantom_kind_parse(name, &kind) != R5_OK)
			return bad_value("--kind", name);
	}
	struct r5_phantom_params p = kind == R5_PHANTOM_DYNAMIC	 ? r5_phantom_defaults_dynamic
				     : kind == R5_PHANTOM_VESSEL_WALL	 ? r5_phantom_defaults_vessel_wall
				     : kind == R5_PHANTOM_SHEPP_LOGAN_3D ? r5_phantom_defaults_3d
									 : r5_phantom_defaults_2d;
	given g = {0};
	for (int i = 1; i < argc;) {
		char option[64];
		const char *value = NULL;
		if (strncmp(argv[i], "--", 2)) {
			fprintf(stderr, "recon5t phantom: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
		int next = next_option(argc, argv, i, option, sizeof option, &value);
		if (next < 0) {
			fprintf(stderr, "recon5t phantom: option '%s' needs a value\n", argv[i]);
			return 2;
		}
		int rc = apply_option(&p, option, value, &g);
		if (rc)
			return rc;
		i = next;
	}
	const char *out = g.out;
	if (!out) {
		fprintf(stderr, "recon5t phantom: --out FILE.h5 is required\n");
		phantom_usage(stderr);
		return 2;
	}
	if (g.seq && g.grid_option) {
		fprintf(stderr, "recon5t phantom: %s does not apply with --seq (the sequence sets it)\n", g.grid_option);
		return 2;
	}
	if (g.seq) {
		if (!g.frame_spokes) /* the dynamic kind's frames: all the readouts unless --frame-spokes */
			p.frame_spokes = 0;
		return phantom_from_seq(&p, g.seq, out);
	}
	if (!g.fov) /* 1 mm voxels; the vessel-wall phantom's are 0.5 mm, the dynamic one's 2 mm */
		for (int d = 0; d < (r5_phantom_is_3d(&p) ? 3 : 2); d++)
			p.fov_mm[d] = p.matrix[d] * (kind == R5_PHANTOM_VESSEL_WALL ? 0.5 : kind == R5_PHANTOM_DYNAMIC ? 2.0 : 1.0);
	if (r5_phantom_check(&p) != R5_OK) {
		fprintf(stderr, "recon5t phantom: %s\n", r5_last_error());
		return 2;
	}
	struct r5_phantom_summary summary;
	if (r5_phantom_write(&p, out, &summary) != R5_OK) {
		fprintf(stderr, "recon5t phantom: %s\n", r5_last_error());
		return 1;
	}
	if (kind == R5_PHANTOM_DYNAMIC) {
		printf("phantom dynamic: matrix %dx%d (readout x%d), %d coils, golden-angle radial %d frames x %d spokes "
		       "(TR %.3g ms, motion per %s), noise %g, coil rss^2 %.3f..%.3f, %.2f s -> %s\n",
		       p.matrix[0], p.matrix[1], p.readout_oversampling, p.n_coils, p.n_frames, p.frame_spokes, p.tr_ms,
		       p.per_frame_motion ? "frame" : "spoke", p.noise_sigma, summary.rss_min, summary.rss_max,
		       summary.seconds, out);
		return 0;
	}
	printf("phantom %s: matrix %dx%dx%d (readout x%d), %d coils, %s R=%dx%d, sampled %.4f (%ld/%ld lines, "
	       "%ld calibration), %ld noise acquisitions, coil rss^2 %.3f..%.3f, %.2f s -> %s\n",
	       r5_phantom_kind_name(p.kind), p.matrix[0], p.matrix[1], p.matrix[2], p.readout_oversampling, p.n_coils,
	       r5_sampling_name(p.sampling), p.accel[0], p.accel[1], summary.sampled_fraction, summary.n_lines_sampled,
	       summary.n_lines_total, summary.n_calib_lines, summary.n_noise_acquisitions, summary.rss_min,
	       summary.rss_max, summary.seconds, out);
	return 0;
}
