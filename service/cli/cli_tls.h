/* Client side of recon5td's transport security: channel credentials from --ca/--cert/--key,
 * the bearer token from --token-file (never on the command line), and `recon5t token`. */
#ifndef R5_CLI_TLS_H
#define R5_CLI_TLS_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

typedef struct r5_cli_security {
	const char *ca, *cert, *key, *token_file; /* NULL: not given */
	char authorization[128];                  /* "Bearer <token>" or "" */
} r5_cli_security;

/* 1 when the option (and its value) was one of --ca --cert --key --token-file */
int r5_cli_security_option(r5_cli_security *s, const char *option, const char *value);
/* Reads the token file; 0 with a message on stderr on failure. */
int r5_cli_security_load(r5_cli_security *s, const char *command);
/* TLS credentials when --ca is given (mutual with --cert/--key), else plaintext; NULL on error. */
grpc_channel_credentials *r5_cli_channel_credentials(const r5_cli_security *s, const char *command);
/* The call's initial metadata (0 or 1 entry: authorization) into md[1]; returns the count. */
size_t r5_cli_security_metadata(const r5_cli_security *s, grpc_metadata md[1]);

int r5_cli_token(int argc, char **argv);

#endif
