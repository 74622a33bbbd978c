/* Transport security and per-call authorization (server.h "security.c"):
 *  - the TLS server credentials of the main port: a certificate config fetcher that gRPC calls
 *    at each new handshake; it re-reads tls_cert/tls_key/tls_client_ca when one of them changed
 *    (mtime, size or inode), checks the new files (PEM, key matches certificate) and keeps the
 *    old ones, with a log line saying why, when they do not parse;
 *  - who a call is (verified client certificate CN/SAN, else `authorization: Bearer <token>`)
 *    and whether the role may call the method: r5_security_authorize, called once per call
 *    from calls.c's routing;
 *  - the audit line of each decision, written when the call's status is decided. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit.h"
#include "auth.h"
#include "recon/core/log.h"

struct r5_tls {
	pthread_mutex_t lock;
	char cert_path[1024], key_path[1024], ca_path[1024];
	struct stat cert_st, key_st, ca_st;
	int loaded;
	long reloads;
};

static char *read_file(const char *path, long *length)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *text = NULL;
	long n = 0, cap = 0;
	for (;;) {
		if (n + 1 >= cap) {
			cap = cap ? 2 * cap : 8192;
			if (cap > (4L << 20)) {
				free(text);
				fclose(f);
				return NULL;
			}
			char *g = realloc(text, (size_t)cap);
			if (!g) {
				free(text);
				fclose(f);
				return NULL;
			}
			text = g;
		}
		size_t got = fread(text + n, 1, (size_t)(cap - n - 1), f);
		n += (long)got;
		if (got == 0)
			break;
	}
	fclose(f);
	text[n] = 0;
	*length = n;
	return text;
}

static int same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_size == b->st_size && a->st_ino == b->st_ino;
}

/* reads and checks the three files; on success *config is new (caller owns it) */
static r5_status tls_load(struct r5_tls *t, grpc_ssl_server_certificate_config **config, struct stat st[3])
{
	*config = NULL;
	const char *paths[3] = {t->cert_path, t->key_path, t->ca_path};
	char *text[3] = {NULL, NULL, NULL};
	long length[3] = {0, 0, 0};
	r5_status status = R5_OK;
	for (int i = 0; i < 3 && status == R5_OK; i++) {
		if (!paths[i][0])
			continue;
		if (stat(paths[i], &st[i]) != 0 || !(text[i] = read_file(paths[i], &length[i])))
			status = r5_set_error(R5_EIO, "%s: cannot read", paths[i]);
	}
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	if (status == R5_OK) {
		BIO *b = BIO_new_mem_buf(text[0], (int)length[0]);
		cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		b = BIO_new_mem_buf(text[1], (int)length[1]);
		key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!cert)
			status = r5_set_error(R5_EINVAL, "tls_cert %s: no PEM certificate", paths[0]);
		else if (!key)
			status = r5_set_error(R5_EINVAL, "tls_key %s: no PEM private key", paths[1]);
		else if (X509_check_private_key(cert, key) != 1)
			status = r5_set_error(R5_EINVAL, "tls_key %s does not match tls_cert %s", paths[1], paths[0]);
	}
	if (status == R5_OK && text[2]) {
		BIO *b = BIO_new_mem_buf(text[2], (int)length[2]);
		X509 *ca = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!ca)
			status = r5_set_error(R5_EINVAL, "tls_client_ca %s: no PEM certificate", paths[2]);
		X509_free(ca);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	if (status == R5_OK) {
		grpc_ssl_pem_key_cert_pair pair = {text[1], text[0]};
		/* gRPC 1.51's reload path asserts client roots even when no client certificate is
		 * requested (ssl_security_connector.cc:366): without tls_client_ca the server's own
		 * certificate stands in, unused (GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE) */
		*config = grpc_ssl_server_certificate_config_create(text[2] ? text[2] : text[0], &pair, 1);
		if (!*config)
			status = r5_set_error(R5_EINVAL, "tls_cert %s: gRPC refused the certificate", paths[0]);
	}
	for (int i = 0; i < 3; i++)
		if (text[i]) {
			OPENSSL_cleanse(text[i], (size_t)length[i]);
			free(text[i]);
		}
	return status;
}

static grpc_ssl_certificate_config_reload_status tls_fetch(void *user_data, grpc_ssl_server_certificate_config **config)
{
	struct r5_tls *t = user_data;
	*config = NULL;
	pthread_mutex_lock(&t->lock);
	struct stat now[3];
	memset(now, 0, sizeof now);
	int changed = !t->loaded;
	const char *paths[3] = {t->cert_path, t->key_path, t->ca_path};
	const struct stat *old[3] = {&t->cert_st, &t->key_st, &t->ca_st};
	for (int i = 0; i < 3 && !changed; i++)
		if (paths[i][0] && (stat(paths[i], &now[i]) != 0 || !same_stat(&now[i], old[i])))
			changed = 1;
	grpc_ssl_certificate_config_reload_status result = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
	if (changed) {
		struct stat st[3];
		memset(st, 0, sizeof st);
		if (tls_load(t, config, st) == R5_OK) {
			t->cert_st = st[0];
			t->key_st = st[1];
			t->ca_st = st[2];
			if (t->loaded)
				r5_info("tls: certificate files changed: new certificate loaded (%s)", t->cert_path);
			t->loaded = 1;
			t->reloads++;
			result = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
		} else if (t->loaded) {
			/* keep serving the old certificate; remember the broken files so the warning is
			 * logged once per change, not per handshake */
			r5_warn("tls: certificate files changed but are not usable, keeping the old ones: %s",
				r5_last_error());
			for (int i = 0; i < 3; i++)
				if (paths[i][0])
					stat(paths[i], &now[i]);
			t->cert_st = now[0];
			t->key_st = now[1];
			t->ca_st = now[2];
		} else {
			r5_error("tls: %s", r5_last_error());
			result = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return result;
}

grpc_server_credentials *r5_security_server_credentials(r5_server *s)
{
	const r5_server_config *cfg = &s->config;
	if (!cfg->tls_cert[0]) {
		if (!r5_server_config_loopback(cfg->listen))
			r5_warn("insecure = 1: plaintext gRPC on %s, not a loopback address: anyone on the network can "
				"read scans and images", cfg->listen);
		return grpc_insecure_server_credentials_create();
	}
	if (!s->tls) {
		struct r5_tls *t = calloc(1, sizeof *t);
		if (!t) {
			r5_set_error(R5_ENOMEM, "tls");
			return NULL;
		}
		pthread_mutex_init(&t->lock, NULL);
		snprintf(t->cert_path, sizeof t->cert_path, "%s", cfg->tls_cert);
		snprintf(t->key_path, sizeof t->key_path, "%s", cfg->tls_key);
		snprintf(t->ca_path, sizeof t->ca_path, "%s", cfg->tls_client_ca);
		s->tls = t;
		/* check the files now so a broken configuration refuses to start with the reason */
		grpc_ssl_server_certificate_config *probe = NULL;
		struct stat st[3];
		if (tls_load(t, &probe, st) != R5_OK)
			return NULL;
		grpc_ssl_server_certificate_config_destroy(probe);
	}
	grpc_ssl_client_certificate_request_type request =
		cfg->tls_client_ca[0] ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
				      : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
	grpc_ssl_server_credentials_options *options =
		grpc_ssl_server_credentials_create_options_using_config_fetcher(request, tls_fetch, s->tls);
	if (!options) {
		r5_set_error(R5_EINVAL, "tls: gRPC refused the credential options");
		return NULL;
	}
	r5_info("tls: main port %s with %s", cfg->listen,
		cfg->tls_client_ca[0] ? "mutual TLS (client certificates required)" : "TLS (bearer tokens)");
	return grpc_ssl_server_credentials_create_with_options(options);
}

r5_status r5_security_start(r5_server *s)
{
	if (s->config.tokens_file[0]) {
		R5_TRY(r5_auth_tokens_load(s->config.tokens_file, &s->tokens));
		r5_info("tokens_file %s: %d entries", s->config.tokens_file, r5_auth_tokens_count(s->tokens));
	}
	R5_TRY(r5_audit_open(s->config.audit_log, &s->audit));
	return R5_OK;
}

void r5_security_stop(r5_server *s)
{
	r5_auth_tokens_free(s->tokens);
	s->tokens = NULL;
	r5_audit_close(s->audit);
	s->audit = NULL;
	if (s->tls) {
		pthread_mutex_destroy(&s->tls->lock);
		free(s->tls);
		s->tls = NULL;
	}
}

/* the first property `name` of the call's auth context into out; 1 when found */
static int auth_property(grpc_auth_context *ctx, const char *name, char *out, size_t size)
{
	grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, name);
	const grpc_auth_property *p;
	while ((p = grpc_auth_property_iterator_next(&it))) {
		if (p->value_length == 0 || p->value_length >= size)
			continue;
		memcpy(out, p->value, p->value_length);
		out[p->value_length] = 0;
		return 1;
	}
	return 0;
}

static r5_role certificate_identity(r5_server *s, grpc_call *call, char *identity, size_t size)
{
	if (!s->config.tls_client_ca[0])
		return R5_ROLE_NONE;
	grpc_auth_context *ctx = grpc_call_auth_context(call);
	if (!ctx)
		return R5_ROLE_NONE;
	r5_role role = R5_ROLE_NONE;
	if (grpc_auth_context_peer_is_authenticated(ctx)) {
		char name[256];
		if (auth_property(ctx, GRPC_X509_CN_PROPERTY_NAME, name, sizeof name)) {
			role = r5_auth_cert_role(s->tokens, name);
			snprintf(identity, size, "cert:%.150s", name);
		}
		if (role == R5_ROLE_NONE) { /* a SAN listed in the tokens file */
			grpc_auth_property_iterator it =
				grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_SAN_PROPERTY_NAME);
			const grpc_auth_property *p;
			while (role == R5_ROLE_NONE && (p = grpc_auth_property_iterator_next(&it))) {
				if (p->value_length >= sizeof name)
					continue;
				memcpy(name, p->value, p->value_length);
				name[p->value_length] = 0;
				role = r5_auth_cert_role(s->tokens, name);
				if (role != R5_ROLE_NONE)
					snprintf(identity, size, "cert:%.150s", name);
			}
		}
	}
	grpc_auth_context_release(ctx);
	return role;
}

static r5_role token_identity(r5_server *s, const grpc_metadata_array *md, char *identity, size_t size, int *sent)
{
	*sent = 0;
	for (size_t i = 0; i < md->count; i++) {
		const grpc_slice k = md->metadata[i].key;
		if (GRPC_SLICE_LENGTH(k) != 13 || memcmp(GRPC_SLICE_START_PTR(k), "authorization", 13) != 0)
			continue;
		*sent = 1;
		const char *v = (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
		size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
		if (n <= 7 || strncasecmp(v, "Bearer ", 7) != 0)
			continue;
		const char *name = NULL;
		r5_role role = r5_auth_check_token(s->tokens, v + 7, n - 7, &name);
		if (role != R5_ROLE_NONE) {
			snprintf(identity, size, "token:%s", name);
			return role;
		}
	}
	return R5_ROLE_NONE;
}

/* Identity and role are decided here, at routing, not in an auth metadata processor
 * (grpc_server_credentials_set_auth_metadata_processor). Tried: gRPC 1.51 (Debian 12) hands the
 * processor the connection's auth context, shared by every call on that HTTP/2 connection, not
 * a context of the call's own; properties added there for one call (its token's identity) are
 * read by the next call on the same connection, and two calls' processors may write the
 * context at once. A refusal from the processor also never reaches the server, so its audit
 * line could not name the peer. Routing has the call, its metadata and its peer. */
grpc_status_code r5_security_authorize(r5_call *c, char *message, size_t size)
{
	r5_server *s = c->server;
	snprintf(c->peer_full, sizeof c->peer_full, "%s", "unknown");
	char *peer = grpc_call_get_peer(c->call);
	if (peer) {
		snprintf(c->peer_full, sizeof c->peer_full, "%s", peer);
		gpr_free(peer);
	}
	r5_auth_action action = c->kind == CALL_RECONSTRUCT	 ? R5_ACT_RECONSTRUCT
				: c->kind == CALL_CAPABILITIES ? R5_ACT_CAPABILITIES
				: c->kind == CALL_HEALTH       ? R5_ACT_HEALTH
							       : R5_ACT_ADMIN;
	if (c->health_port) { /* the separate plaintext health port: health only, for probes (not
			       * audited: a probe a second would drown the decisions) */
		snprintf(c->identity, sizeof c->identity, "health-port");
		c->role = R5_ROLE_MONITOR;
		return GRPC_STATUS_OK;
	}
	c->authorized = 1; /* a decision is made: the audit line follows the status */
	if (!s->tokens && !s->config.tls_client_ca[0]) {
		/* no way to know clients (loopback, or insecure = 1): every client is a console */
		snprintf(c->identity, sizeof c->identity, "anonymous");
		c->role = R5_ROLE_CONSOLE;
	} else {
		int sent = 0;
		c->role = certificate_identity(s, c->call, c->identity, sizeof c->identity);
		if (c->role == R5_ROLE_NONE && s->tokens)
			c->role = token_identity(s, &c->request_metadata, c->identity, sizeof c->identity, &sent);
		if (c->role == R5_ROLE_NONE) {
			if (!c->identity[0])
				snprintf(c->identity, sizeof c->identity, "unknown");
			snprintf(message, size, "%s",
				 sent ? "unknown bearer token"
				      : c->identity[0] && strcmp(c->identity, "unknown")
						? "client certificate maps to no role (tokens_file)"
						: "no credentials: send a client certificate or authorization: Bearer <token>");
			return GRPC_STATUS_UNAUTHENTICATED;
		}
	}
	if (!r5_auth_allows(c->role, action)) {
		snprintf(message, size, "%s (role %s) may not call %s", c->identity, r5_role_name(c->role),
			 action == R5_ACT_RECONSTRUCT	  ? "Reconstruct"
			 : action == R5_ACT_CAPABILITIES ? "Capabilities"
			 : action == R5_ACT_HEALTH	  ? "health"
			 : c->kind == CALL_DRAIN	  ? "Drain (admin)"
						  : "CancelJob (admin)");
		return GRPC_STATUS_PERMISSION_DENIED;
	}
	return GRPC_STATUS_OK;
}

void r5_security_cap_priority(r5_call *c, Recon5t__V1__ScanHeader *header)
{
	if (c->role == R5_ROLE_RESEARCH && header && header->priority != RECON5T__V1__PRIORITY__PRIORITY_RESEARCH) {
		header->priority = RECON5T__V1__PRIORITY__PRIORITY_RESEARCH;
		c->priority_capped = 1;
		r5_info("%s (role research) asked console priority: runs at research priority", c->identity);
	}
}

void r5_security_audit(r5_call *c, grpc_status_code code)
{
	if (!c->authorized || c->audited || !c->server->audit)
		return;
	c->audited = 1;
	char method[256];
	size_t n = GRPC_SLICE_LENGTH(c->details.method);
	if (n >= sizeof method)
		n = sizeof method - 1;
	memcpy(method, GRPC_SLICE_START_PTR(c->details.method), n);
	method[n] = 0;
	const char *uid = NULL;
	if (c->header_message && c->header_message->header && c->header_message->header->patient)
		uid = c->header_message->header->patient->study_instance_uid;
	r5_audit_record r = {
		.identity = c->identity,
		.role = r5_role_name(c->role),
		.peer = c->peer_full,
		.method = method,
		.job_id = c->job_id,
		.code = (int)code,
		.code_name = r5_svc_grpc_code_name(code),
		.study_uid = uid,
		.note = c->priority_capped ? "console priority asked, ran at research priority (role research)" : "",
	};
	r5_audit_write(c->server->audit, &r);
}
