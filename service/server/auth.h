/* Identities and roles of recon5td's clients.
 *
 * Roles: console (scanner: Reconstruct at any priority, Capabilities, health), research
 * (Reconstruct capped at research priority: a console-priority request runs as research),
 * monitor (Capabilities, health), admin (everything, the admin RPCs included).
 *
 * The tokens file (config key tokens_file) holds no tokens, only salted hashes, one per line:
 *     ROLE NAME SALT-HEX SHA256(SALT||TOKEN)-HEX      a bearer token
 *     cert ROLE NAME                                  a client certificate whose CN or a SAN is NAME
 * '#' starts a comment; blank lines are skipped. A malformed line is an error naming its line.
 * Tokens are 32 random bytes (RAND_bytes) written as 64 hex digits: with that entropy a salted
 * SHA-256 is the right hash (no password stretching needed); the comparison is constant time
 * (CRYPTO_memcmp). `recon5t token --role R --name N` makes one (r5_auth_make_token).
 * A verified client certificate not listed in the file takes the role its CN starts with
 * ("console", "research-3", "monitor.x", "admin"), the names scripts/make-certs.sh writes. */
#ifndef R5_SERVER_AUTH_H
#define R5_SERVER_AUTH_H

#include <stddef.h>

#include "recon/core/status.h"

typedef enum r5_role { R5_ROLE_NONE = 0, R5_ROLE_CONSOLE, R5_ROLE_RESEARCH, R5_ROLE_MONITOR, R5_ROLE_ADMIN } r5_role;

/* what a call asks for (calls.c's routing) */
typedef enum r5_auth_action { R5_ACT_RECONSTRUCT, R5_ACT_CAPABILITIES, R5_ACT_HEALTH, R5_ACT_ADMIN } r5_auth_action;

typedef struct r5_auth_tokens r5_auth_tokens;

const char *r5_role_name(r5_role role);
r5_role r5_role_parse(const char *name, size_t length); /* R5_ROLE_NONE when unknown */

/* Parses the text of a tokens file (length bytes, need not be NUL-terminated); origin names it
 * in errors ("tokens.txt:3: ..."). *out is freed with r5_auth_tokens_free. */
r5_status r5_auth_tokens_parse(const char *text, size_t length, const char *origin, r5_auth_tokens **out);
r5_status r5_auth_tokens_load(const char *path, r5_auth_tokens **out);
void r5_auth_tokens_free(r5_auth_tokens *t);
int r5_auth_tokens_count(const r5_auth_tokens *t); /* token lines + cert lines */

/* The role of a bearer token (R5_ROLE_NONE: unknown); *name (may be NULL) the line's name,
 * valid while t lives. Every token line is compared (constant time per line). */
r5_role r5_auth_check_token(const r5_auth_tokens *t, const char *token, size_t length, const char **name);
/* The role of a verified certificate name (mapping first, then the CN prefix rule). */
r5_role r5_auth_cert_role(const r5_auth_tokens *t, const char *name);

/* 1 when role may do action. */
int r5_auth_allows(r5_role role, r5_auth_action action);

/* A fresh token (64 hex digits + NUL into token[65]) and its tokens-file line (into line). */
r5_status r5_auth_make_token(r5_role role, const char *name, char token[65], char *line, size_t line_size);
/* sha256 of data as 64 hex digits + NUL (the audit log's hash of a study instance UID). */
void r5_auth_sha256_hex(const void *data, size_t length, char hex[65]);

#endif
