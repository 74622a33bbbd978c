/* recon5td configuration (see config.h). One table lists every key once with its type, so the
 * file, the environment and the flags cannot drift apart. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon/core/log.h"
#include "service/common/addr_allow.h"

const r5_server_config r5_server_config_defaults = {
	.listen = "127.0.0.1:50051",
	.health_listen = "",
	.metrics_listen = "",
	.workers = 0,
	.cpu_workers = 1,
	.backend = "auto",
	.cq_threads = 2,
	.max_queue = 32,
	.max_streams = 64,
	.max_streams_per_peer = 32,
	.ingest_threads = 2,
	.ingest_idle_s = 30.0,
	.max_header_kb = 1024,
	.keepalive_s = 30.0,
	.memory_budget_mb = 4096,
	.max_message_mb = 64,
	.grace_s = 30.0,
	.log_level = "info",
	.pacs_host = "",
	.pacs_port = 104,
	.pacs_called_ae = "",
	.pacs_calling_ae = "RECON5T",
	.pacs_timeout_s = 10,
	.pacs_retry_s = 2.0,
	.spool_dir = "/var/tmp/recon5t-spool",
	.fft_wisdom = "",
	.early_calibration = 1,
	.realtime_threads = 0,
	.mrd_listen = "",
	.mrd_role = "console",
};

enum key_type { KEY_STRING, KEY_INT, KEY_LONG, KEY_DOUBLE };

static const struct config_key {
	const char *name;
	enum key_type type;
	size_t offset, size;
	double min, max;
	const char *help;
} keys[] = {
#define STR(n, h) {#n, KEY_STRING, offsetof(r5_server_config, n), sizeof(((r5_server_config *)0)->n), 0, 0, h}
#define NUM(n, t, lo, hi, h) {#n, t, offsetof(r5_server_config, n), 0, lo, hi, h}
	STR(listen, "HOST:PORT of the gRPC service (default 127.0.0.1:50051)"),
	STR(health_listen, "HOST:PORT of a separate plaintext health port (default none)"),
	STR(mrd_listen, "HOST:PORT of the MRD v1 (FIRE) listener, plaintext (default none)"),
	NUM(mrd_insecure, KEY_INT, 0, 1, "1: allow mrd_listen off loopback, with mrd_allow (default 0)"),
	STR(mrd_allow, "peer addresses or CIDR prefixes (IPv4/IPv6) allowed on the MRD listener (default any on loopback)"),
	STR(mrd_role, "role of MRD connections: console | research (default console)"),
	NUM(mrd_pacs, KEY_INT, 0, 1, "1: MRD jobs are pushed to the PACS too (default 0)"),
	STR(metrics_listen, "HOST:PORT of the Prometheus endpoint GET /metrics, port 0: any (default none)"),
	NUM(workers, KEY_INT, 0, 256, "worker threads (0: one per GPU, else cpu_workers)"),
	NUM(cpu_workers, KEY_INT, 1, 256, "CPU workers when no GPU is used (default 1)"),
	STR(backend, "auto | cpu | gpu (default auto)"),
	NUM(cq_threads, KEY_INT, 1, 64, "completion-queue threads (default 2)"),
	NUM(max_queue, KEY_INT, 1, 100000, "jobs waiting for a worker (default 32)"),
	NUM(max_streams, KEY_INT, 1, 100000, "concurrent Reconstruct streams (default 64)"),
	NUM(max_streams_per_peer, KEY_INT, 1, 100000, "concurrent streams from one client address (default 32)"),
	NUM(ingest_threads, KEY_INT, 1, 64, "threads sorting acquisitions into k-space (default 2)"),
	NUM(ingest_idle_s, KEY_DOUBLE, 0.1, 86400, "end a stream with no message for this many s (default 30)"),
	NUM(max_header_kb, KEY_LONG, 1, 65536, "largest ISMRMRD XML header, KiB (default 1024)"),
	NUM(keepalive_s, KEY_DOUBLE, 1, 86400, "HTTP/2 ping interval s to detect vanished clients (default 30)"),
	NUM(memory_budget_mb, KEY_LONG, 1, 1e9, "k-space MiB across jobs in flight (default 4096)"),
	NUM(max_message_mb, KEY_LONG, 1, 2047, "largest message MiB (default 64)"),
	NUM(grace_s, KEY_DOUBLE, 0, 86400, "seconds in-flight jobs may finish after SIGTERM (default 30)"),
	STR(log_level, "debug | info | warn | error (default info)"),
	STR(pacs_host, "PACS host for DICOM C-STORE of every job (default none: no push)"),
	NUM(pacs_port, KEY_INT, 1, 65535, "PACS DICOM port (default 104)"),
	STR(pacs_called_ae, "the PACS's AE title (required with pacs_host)"),
	STR(pacs_calling_ae, "our AE title (default RECON5T)"),
	NUM(pacs_timeout_s, KEY_INT, 1, 600, "PACS connect/association/DIMSE timeout s (default 10)"),
	NUM(pacs_retry_s, KEY_DOUBLE, 0.1, 3600, "how often the spooler retries due instances, s (default 2)"),
	STR(spool_dir, "DICOM files per job and the PACS spool (default /var/tmp/recon5t-spool)"),
	STR(fft_wisdom, "FFTW wisdom file: CPU FFTs measured once, kept there (default none: ESTIMATE)"),
	NUM(early_calibration, KEY_INT, 0, 1, "1: sense/cs coil maps computed while the scan streams in (default 1)"),
	NUM(deidentify_research, KEY_INT, 0, 1,
	    "1: DICOM of research-priority jobs without patient data, PS3.15 Annex E basic profile (default 0)"),
	NUM(realtime_threads, KEY_INT, 0, 256,
	    "OpenMP threads of each real-time frame thread (default 0: all, as the workers; 1 can be steadier on a "
	    "loaded machine)"),
	STR(tls_cert, "PEM server certificate: TLS on the main port, re-read when it changes (default none: plaintext)"),
	STR(tls_key, "PEM private key of tls_cert"),
	STR(tls_client_ca, "PEM CA of client certificates: mutual TLS required (default none)"),
	STR(tokens_file, "roles, salted hashes of bearer tokens, certificate names (default none)"),
	NUM(insecure, KEY_INT, 0, 1, "1: allow plaintext off loopback / TLS without client credentials (default 0)"),
	STR(audit_log, "JSON lines file, one per authorization decision (default none)"),
#undef STR
#undef NUM
};
#define N_KEYS (sizeof keys / sizeof keys[0])

static const struct config_key *find_key(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static r5_status parse_number(const struct config_key *k, const char *value, const char *origin, double *out)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(value, &end);
	if (errno || end == value || *end != '\0' || !isfinite(v))
		return r5_set_error(R5_EINVAL, "%s: %s = \"%s\" is not a finite number", origin, k->name, value);
	if (k->type != KEY_DOUBLE && v != trunc(v)) /* no cast: (long)1e42 is undefined (fuzz_config) */
		return r5_set_error(R5_EINVAL, "%s: %s = \"%s\" is not an integer", origin, k->name, value);
	if (v < k->min || v > k->max)
		return r5_set_error(R5_EINVAL, "%s: %s = %s is outside [%g, %g]", origin, k->name, value, k->min, k->max);
	*out = v;
	return R5_OK;
}

/* PS3.5 AE VR: up to 16 characters of the default repertoire, no backslash or control codes
 * ("" is allowed here: an unset called AE is reported when the PACS is checked). */
static int ae_title_ok(const char *value)
{
	size_t n = strlen(value);
	for (size_t i = 0; i < n; i++)
		if (value[i] == '\\' || !isprint((unsigned char)value[i]))
			return 0;
	return n <= 16;
}

/* 1 when listen's host is a loopback address (127.0.0.0/8, ::1, localhost) */
int r5_server_config_loopback(const char *listen)
{
	if (strncmp(listen, "127.", 4) == 0 || strncmp(listen, "localhost:", 10) == 0 ||
	    strncmp(listen, "[::1]:", 6) == 0 || strncmp(listen, "ipv4:127.", 9) == 0)
		return 1;
	return 0;
}

/* transport security: plaintext only on loopback or with insecure = 1; TLS off loopback needs
 * a way to know the client (tokens_file or tls_client_ca) unless insecure = 1 */
static r5_status check_security(const r5_server_config *c)
{
	if (!c->tls_cert[0] != !c->tls_key[0])
		return r5_set_error(R5_EINVAL, "tls_cert and tls_key: set both (TLS) or neither (plaintext)");
	if (c->tls_client_ca[0] && !c->tls_cert[0])
		return r5_set_error(R5_EINVAL, "tls_client_ca = %s needs tls_cert and tls_key", c->tls_client_ca);
	if (c->insecure || r5_server_config_loopback(c->listen))
		return R5_OK;
	if (!c->tls_cert[0])
		return r5_set_error(R5_EINVAL,
				    "listen = %s is not a loopback address: set tls_cert and tls_key (TLS), or "
				    "insecure = 1 to serve plaintext anyway",
				    c->listen);
	if (!c->tokens_file[0] && !c->tls_client_ca[0])
		return r5_set_error(R5_EINVAL,
				    "listen = %s with TLS: set tokens_file or tls_client_ca so clients are identified, "
				    "or insecure = 1 to accept every client as console",
				    c->listen);
	return R5_OK;
}

/* Whole-configuration checks that no single key can make. */
r5_status r5_server_config_check(const r5_server_config *c)
{
	R5_TRY(check_security(c));
	if (!c->pacs_host[0])
		return R5_OK;
	if (!c->pacs_called_ae[0])
		return r5_set_error(R5_EINVAL, "pacs_host = %s needs pacs_called_ae (the PACS's AE title)", c->pacs_host);
	if (!c->spool_dir[0])
		return r5_set_error(R5_EINVAL, "pacs_host = %s needs a spool_dir", c->pacs_host);
	return R5_OK;
}

static r5_status check_string(r5_server_config *c, const struct config_key *k, const char *value, const char *origin)
{
	if (strcmp(k->name, "backend") == 0 && strcmp(value, "auto") && strcmp(value, "cpu") && strcmp(value, "gpu") &&
	    strcmp(value, "cuda") && strcmp(value, "cpu-fault") && strcmp(value, "cpu-device"))
		return r5_set_error(R5_EINVAL, "%s: backend = \"%s\": expected auto, cpu or gpu", origin, value);
	if (strcmp(k->name, "log_level") == 0 && r5_log_level_parse(value) < 0)
		return r5_set_error(R5_EINVAL, "%s: log_level = \"%s\": expected debug, info, warn or error", origin, value);
	if ((strcmp(k->name, "listen") == 0 || ((strcmp(k->name, "health_listen") == 0 || strcmp(k->name, "metrics_listen") == 0 || strcmp(k->name, "mrd_listen") == 0) && *value)) && !strchr(value, ':'))
		return r5_set_error(R5_EINVAL, "%s: %s = \"%s\": expected HOST:PORT", origin, k->name, value);
	if ((strcmp(k->name, "pacs_called_ae") == 0 || strcmp(k->name, "pacs_calling_ae") == 0) && !ae_title_ok(value))
		return r5_set_error(R5_EINVAL, "%s: %s = \"%s\": an AE title is 1-16 printable characters, no backslash",
				    origin, k->name, value);
	if (strcmp(k->name, "mrd_allow") == 0 && r5_addr_list_check(value) != R5_OK) {
		char why[300];
		snprintf(why, sizeof why, "%s", r5_last_error());
		return r5_set_error(R5_EINVAL, "%s: mrd_allow: %s", origin, why);
	}
	if (strcmp(k->name, "mrd_role") == 0 && strcmp(value, "console") && strcmp(value, "research"))
		return r5_set_error(R5_EINVAL, "%s: mrd_role = \"%s\": expected console or research", origin, value);
	if (strlen(value) >= k->size)
		return r5_set_error(R5_EINVAL, "%s: %s is longer than %zu characters", origin, k->name, k->size - 1);
	(void)c;
	return R5_OK;
}

r5_status r5_server_config_set(r5_server_config *c, const char *key, const char *value, const char *origin)
{
	const struct config_key *k = find_key(key);
	if (!k)
		return r5_set_error(R5_EINVAL, "%s: unknown key \"%s\"", origin, key);
	char *field = (char *)c + k->offset;
	if (k->type == KEY_STRING) {
		R5_TRY(check_string(c, k, value, origin));
		snprintf(field, k->size, "%s", value);
		return R5_OK;
	}
	double v = 0;
	R5_TRY(parse_number(k, value, origin, &v));
	if (k->type == KEY_INT)
		*(int *)(void *)field = (int)v;
	else if (k->type == KEY_LONG)
		*(long *)(void *)field = (long)v;
	else
		*(double *)(void *)field = v;
	return R5_OK;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

r5_status r5_server_config_load_file(r5_server_config *c, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return r5_set_error(R5_EIO, "config %s: cannot open (%s)", path, strerror(errno));
	char line[1024], origin[1200];
	int number = 0;
	r5_status status = R5_OK;
	while (status == R5_OK && fgets(line, sizeof line, f)) {
		number++;
		char *text = trim(line);
		char *hash = strchr(text, '#');
		if (hash)
			*hash = '\0';
		text = trim(text);
		if (!*text || *text == '[' || *text == ';')
			continue;
		snprintf(origin, sizeof origin, "config %s line %d", path, number);
		char *eq = strchr(text, '=');
		if (!eq) {
			status = r5_set_error(R5_EINVAL, "%s: expected key = value", origin);
			break;
		}
		*eq = '\0';
		status = r5_server_config_set(c, trim(text), trim(eq + 1), origin);
	}
	fclose(f);
	return status;
}

r5_status r5_server_config_load_env(r5_server_config *c)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		char name[64] = "R5_";
		size_t n = 3;
		for (const char *p = keys[i].name; *p && n + 1 < sizeof name; p++)
			name[n++] = (char)toupper((unsigned char)*p);
		name[n] = '\0';
		const char *value = getenv(name);
		if (value) {
			char origin[80];
			snprintf(origin, sizeof origin, "environment %s", name);
			R5_TRY(r5_server_config_set(c, keys[i].name, value, origin));
		}
	}
	return R5_OK;
}

/* "--max-queue" → "max_queue"; the short forms of the issue map onto config keys. */
static void flag_to_key(const char *flag, char *key, size_t size)
{
	size_t n = 0;
	for (const char *p = flag + 2; *p && n + 1 < size; p++)
		key[n++] = *p == '-' ? '_' : *p;
	key[n] = '\0';
}

r5_status r5_server_config_from_args(r5_server_config *c, int argc, char **argv, int *show_help)
{
	*c = r5_server_config_defaults;
	*show_help = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc)
				return r5_set_error(R5_EINVAL, "--config needs a FILE");
			R5_TRY(r5_server_config_load_file(c, argv[++i]));
		}
	}
	R5_TRY(r5_server_config_load_env(c));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			*show_help = 1;
			return R5_OK;
		}
		if (strncmp(arg, "--", 2) != 0)
			return r5_set_error(R5_EINVAL, "unexpected argument \"%s\" (see --help)", arg);
		if (strcmp(arg, "--config") == 0) {
			i++;
			continue;
		}
		char key[64], origin[80];
		const char *eq = strchr(arg, '='), *value;
		if (eq) {
			char flag[64];
			snprintf(flag, sizeof flag, "%.*s", (int)(eq - arg), arg);
			flag_to_key(flag, key, sizeof key);
			value = eq + 1;
		} else {
			flag_to_key(arg, key, sizeof key);
			if (i + 1 >= argc)
				return r5_set_error(R5_EINVAL, "%s needs a value", arg);
			value = argv[++i];
		}
		snprintf(origin, sizeof origin, "flag --%s", arg + 2);
		if (!find_key(key))
			return r5_set_error(R5_EINVAL, "unknown flag %s (see --help)", arg);
		R5_TRY(r5_server_config_set(c, key, value, origin));
	}
	return r5_server_config_check(c);
}

void r5_server_config_usage(void)
{
	fprintf(stderr, "usage: recon5td [--config FILE] [--KEY VALUE]...\n"
			"Keys (also in the config file as key = value, or env R5_KEY):\n");
	for (size_t i = 0; i < N_KEYS; i++) {
		char flag[64];
		size_t n = 0;
		for (const char *p = keys[i].name; *p && n + 1 < sizeof flag; p++)
			flag[n++] = *p == '_' ? '-' : *p;
		flag[n] = '\0';
		fprintf(stderr, "  --%-18s %s\n", flag, keys[i].help);
	}
}
