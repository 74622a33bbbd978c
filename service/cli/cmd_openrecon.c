/* recon5t openrecon-label [--name N] [--version V] [--out FILE] [--base64]
 *                         [--memory-mb M] [--gpu-memory-mb G] [--cpu-cores C]
 * The OpenRecon vendor metadata ("label") of a recon5t container: JSON with the general block
 * (name, version, vendor, information), the reconstruction block (transfer protocol ISMRMRD
 * over MRD port 9002, raw data in, images out, GPU and memory needs) and the UI parameters.
 * The parameters are generated from the pipeline parameter table (recon/pipeline/params.c,
 * r5_recon_params_describe): the rows with an OpenRecon id, in table order, with their label,
 * help, type, default and range or choices — so the label cannot offer a key, a value or a
 * range that the server refuses. The pipeline is offered as the choice `config`, the name
 * FIRE/OpenRecon consoles send. --base64 prints the base64 of the JSON (the image label's
 * value). Needs: 4096 MB of memory and of GPU memory, 2 cores unless the flags say otherwise
 * (the site sizes them for its scans: recon5td's memory estimate, memory_estimate.h); GPU use
 * is optional (the CPU back end runs every pipeline), so no GPU is required. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "recon/pipeline/pipeline.h"

#define OPENRECON_MAX_PARAMETERS 14 /* the OpenRecon label format's limit */

typedef struct text_buf {
	char *data;
	size_t len, cap;
	int failed;
} text_buf;

static void put(text_buf *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if (b->data && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
		char *grown = realloc(b->data, cap);
		if (!grown) {
			b->failed = 1;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_string(text_buf *b, const char *s)
{
	put(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			put(b, "\\%c", *p);
		else if (*p < 0x20)
			put(b, "\\u%04x", *p);
		else
			put(b, "%c", *p);
	}
	put(b, "\"");
}

static void put_localized(text_buf *b, const char *key, const char *text)
{
	put(b, "\"%s\": {\"en\": ", key);
	put_string(b, text);
	put(b, "}");
}

/* One parameter of the table as an OpenRecon parameter object. */
static void put_parameter(text_buf *b, const r5_param_info *info)
{
	put(b, "    {\"id\": ");
	put_string(b, info->openrecon_id);
	put(b, ", ");
	put_localized(b, "label", info->label);
	put(b, ", \"type\": \"%s\", ", info->type);
	char information[512];
	snprintf(information, sizeof information, "%s (recon5t key %s; pipelines: %s)", info->help, info->key,
		 info->pipelines);
	put_localized(b, "information", information);
	if (!strcmp(info->type, "choice")) {
		put(b, ", \"values\": [");
		for (int i = 0; info->choices[i]; i++) {
			put(b, "%s{\"id\": ", i ? ", " : "");
			put_string(b, info->choices[i]);
			put(b, ", ");
			put_localized(b, "name", info->choices[i]);
			put(b, "}");
		}
		put(b, "], \"default\": ");
		put_string(b, info->default_text);
	} else if (!strcmp(info->type, "string")) {
		put(b, ", \"default\": ");
		put_string(b, info->default_text);
	} else if (!strcmp(info->type, "boolean")) {
		put(b, ", \"default\": %s", info->default_text);
	} else { /* int, double: numbers as the table holds them */
		put(b, ", \"min\": %.17g, \"max\": %.17g, \"default\": %s", info->min, info->max, info->default_text);
	}
	put(b, "}");
}

typedef struct label_opts {
	const char *name, *version;
	long memory_mb, gpu_memory_mb, cpu_cores;
} label_opts;

static int make_label(const label_opts *o, text_buf *b)
{
	put(b, "{\n  \"general\": {\n    ");
	put_localized(b, "name", o->name);
	put(b, ",\n    \"version\": ");
	put_string(b, o->version);
	put(b, ",\n    \"vendor\": \"recon5t\",\n    ");
	put_localized(b, "information",
		      "MRI reconstruction (Cartesian, SENSE, GRAPPA, compressed sensing, non-Cartesian gridding, "
		      "GRASP) from raw data streamed over MRD; images back as MRD images");
	put(b, ",\n    \"id\": ");
	put_string(b, o->name);
	put(b, "\n  },\n  \"reconstruction\": {\n"
	       "    \"transfer_protocol\": {\"protocol\": \"ISMRMRD\", \"version\": \"1.4.1\"},\n"
	       "    \"port\": 9002,\n    \"emitter\": \"raw\",\n    \"injector\": \"image\",\n"
	       "    \"can_process_adjustment_data\": false,\n    \"can_use_gpu\": true,\n"
	       "    \"min_count_required_gpus\": 0,\n    \"min_required_gpu_memory\": %ld,\n"
	       "    \"min_required_memory\": %ld,\n    \"min_count_required_cpu_cores\": %ld,\n"
	       "    \"content_qualification_type\": \"RESEARCH\"\n  },\n  \"parameters\": [\n",
	    o->gpu_memory_mb, o->memory_mb, o->cpu_cores);
	int offered = 0;
	for (size_t row = 0; row < r5_recon_params_count(); row++) {
		r5_param_info info;
		if (r5_recon_params_describe(row, &info) != R5_OK)
			return r5_cli_fail(1, "openrecon-label: %s", r5_last_error());
		if (!info.openrecon_id)
			continue;
		if (++offered > OPENRECON_MAX_PARAMETERS)
			return r5_cli_fail(1, "openrecon-label: the parameter table offers more than %d parameters "
					      "(OpenRecon's limit)",
					   OPENRECON_MAX_PARAMETERS);
		if (offered > 1)
			put(b, ",\n");
		put_parameter(b, &info);
	}
	put(b, "\n  ]\n}\n");
	if (b->failed)
		return r5_cli_fail(1, "openrecon-label: out of memory");
	return 0;
}

static char *base64(const char *data, size_t n)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 2);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned long v = (unsigned long)(unsigned char)data[i] << 16;
		if (i + 1 < n)
			v |= (unsigned long)(unsigned char)data[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)data[i + 2];
		out[o++] = digits[v >> 18 & 63];
		out[o++] = digits[v >> 12 & 63];
		out[o++] = i + 1 < n ? digits[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? digits[v & 63] : '=';
	}
	out[o++] = '\n';
	out[o] = '\0';
	return out;
}

static int parse_count(const char *flag, const char *text, long *out)
{
	char *end = NULL;
	long v = strtol(text, &end, 10);
	if (!text[0] || *end || v < 0 || v > 1L << 30)
		return r5_cli_fail(2, "openrecon-label: %s '%s' is not a count", flag, text);
	*out = v;
	return 0;
}

int r5_cli_openrecon_label(int argc, char **argv)
{
	label_opts o = {.name = "recon5t", .version = R5_VERSION, .memory_mb = 4096, .gpu_memory_mb = 4096,
			.cpu_cores = 2};
	const char *out_path = NULL;
	int as_base64 = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("usage: recon5t openrecon-label [--name N] [--version V] [--out FILE] [--base64]\n"
			       "       [--memory-mb M] [--gpu-memory-mb G] [--cpu-cores C]\n"
			       "The OpenRecon label JSON (or its base64) from the pipeline parameter table.\n");
			return 0;
		}
		if (!strcmp(a, "--base64")) {
			as_base64 = 1;
			continue;
		}
		if (strcmp(a, "--name") && strcmp(a, "--version") && strcmp(a, "--out") && strcmp(a, "--memory-mb") &&
		    strcmp(a, "--gpu-memory-mb") && strcmp(a, "--cpu-cores"))
			return r5_cli_fail(2, "openrecon-label: unknown option %s (see --help)", a);
		if (!next)
			return r5_cli_fail(2, "openrecon-label: %s needs a value", a);
		int rc = 0;
		if (!strcmp(a, "--name"))
			o.name = next;
		else if (!strcmp(a, "--version"))
			o.version = next;
		else if (!strcmp(a, "--out"))
			out_path = next;
		else if (!strcmp(a, "--memory-mb"))
			rc = parse_count(a, next, &o.memory_mb);
		else if (!strcmp(a, "--gpu-memory-mb"))
			rc = parse_count(a, next, &o.gpu_memory_mb);
		else if (!strcmp(a, "--cpu-cores"))
			rc = parse_count(a, next, &o.cpu_cores);
		else
			return r5_cli_fail(2, "openrecon-label: unknown option %s (see --help)", a);
		if (rc)
			return rc;
		i++;
	}
	if (!o.name[0] || !o.version[0])
		return r5_cli_fail(2, "openrecon-label: --name and --version must not be empty");
	text_buf b = {0};
	int rc = make_label(&o, &b);
	char *text = NULL;
	if (!rc && as_base64 && !(text = base64(b.data, b.len)))
		rc = r5_cli_fail(1, "openrecon-label: out of memory");
	const char *shown = text ? text : b.data;
	if (!rc) {
		FILE *f = out_path ? fopen(out_path, "w") : stdout;
		if (!f)
			rc = r5_cli_fail(1, "openrecon-label: cannot write %s", out_path);
		else {
			if (fputs(shown, f) < 0)
				rc = r5_cli_fail(1, "openrecon-label: cannot write %s", out_path ? out_path : "stdout");
			if (out_path && fclose(f) != 0)
				rc = r5_cli_fail(1, "openrecon-label: cannot write %s", out_path);
		}
	}
	free(text);
	free(b.data);
	return rc;
}
