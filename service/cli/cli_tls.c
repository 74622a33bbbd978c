/* Client credentials and `recon5t token` (cli_tls.h). */
#include "cli_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/server/auth.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *text = malloc(cap + 1);
	if (text)
		n = fread(text, 1, cap, f);
	fclose(f);
	if (!text || n == cap) { /* a PEM file or token longer than 64 KiB is not one */
		free(text);
		return NULL;
	}
	text[n] = 0;
	return text;
}

int r5_cli_security_option(r5_cli_security *s, const char *option, const char *value)
{
	if (!strcmp(option, "--ca"))
		s->ca = value;
	else if (!strcmp(option, "--cert"))
		s->cert = value;
	else if (!strcmp(option, "--key"))
		s->key = value;
	else if (!strcmp(option, "--token-file"))
		s->token_file = value;
	else
		return 0;
	return 1;
}

int r5_cli_security_load(r5_cli_security *s, const char *command)
{
	s->authorization[0] = 0;
	if (!s->token_file)
		return 1;
	char *text = slurp(s->token_file);
	if (!text)
		return fprintf(stderr, "recon5t %s: --token-file %s: cannot read\n", command, s->token_file), 0;
	size_t n = strcspn(text, "\r\n");
	text[n] = 0;
	if (n == 0 || n > 100 || strpbrk(text, " \t")) {
		free(text);
		return fprintf(stderr, "recon5t %s: --token-file %s: expected one token on the first line\n", command,
			       s->token_file), 0;
	}
	snprintf(s->authorization, sizeof s->authorization, "Bearer %s", text);
	free(text);
	return 1;
}

grpc_channel_credentials *r5_cli_channel_credentials(const r5_cli_security *s, const char *command)
{
	if (!s->ca) {
		if (s->cert || s->key)
			return fprintf(stderr, "recon5t %s: --cert/--key need --ca (the server's CA)\n", command), NULL;
		return grpc_insecure_credentials_create();
	}
	if (!s->cert != !s->key)
		return fprintf(stderr, "recon5t %s: give both --cert and --key, or neither\n", command), NULL;
	char *ca = slurp(s->ca), *cert = s->cert ? slurp(s->cert) : NULL, *key = s->key ? slurp(s->key) : NULL;
	grpc_channel_credentials *creds = NULL;
	if (!ca || (s->cert && (!cert || !key))) {
		fprintf(stderr, "recon5t %s: cannot read %s\n", command,
			!ca ? s->ca : !cert ? s->cert : s->key);
	} else {
		grpc_ssl_pem_key_cert_pair pair = {key, cert};
		creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
	}
	free(ca);
	free(cert);
	free(key);
	return creds;
}

size_t r5_cli_security_metadata(const r5_cli_security *s, grpc_metadata md[1])
{
	if (!s->authorization[0])
		return 0;
	memset(md, 0, sizeof md[0]);
	md[0].key = grpc_slice_from_static_string("authorization");
	md[0].value = grpc_slice_from_static_string(s->authorization);
	return 1;
}

int r5_cli_token(int argc, char **argv)
{
	const char *role = NULL, *name = NULL, *line_file = NULL;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			goto usage;
		if (!strcmp(argv[i], "--role"))
			role = v;
		else if (!strcmp(argv[i], "--name"))
			name = v;
		else if (!strcmp(argv[i], "--append"))
			line_file = v;
		else
			goto usage;
		i++;
	}
	if (!role || !name)
		goto usage;
	char token[65], line[512];
	if (r5_auth_make_token(r5_role_parse(role, strlen(role)), name, token, line, sizeof line) != R5_OK) {
		fprintf(stderr, "recon5t %s\n", r5_last_error());
		return 2;
	}
	if (line_file) {
		FILE *f = fopen(line_file, "a");
		if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0) {
			fprintf(stderr, "recon5t token: cannot append to %s\n", line_file);
			return 1;
		}
	} else {
		fprintf(stderr, "%s\n", line);
	}
	printf("%s\n", token);
	return 0;
usage:
	fprintf(stderr, "usage: recon5t token --role console|research|monitor|admin --name NAME [--append TOKENS_FILE]\n"
			"Prints a fresh random token on stdout (give it to the client, in a file for --token-file)\n"
			"and the tokens_file line (salted SHA-256, no token) on stderr or appended to TOKENS_FILE.\n");
	return 2;
}
