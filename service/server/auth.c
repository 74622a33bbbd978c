/* Tokens file, token and certificate checks, roles (auth.h). */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

typedef struct r5_auth_entry {
	r5_role role;
	int cert; /* 1: a certificate name, no salt or hash */
	char name[128];
	unsigned char salt[32];
	size_t salt_length;
	unsigned char hash[32];
} r5_auth_entry;

struct r5_auth_tokens {
	r5_auth_entry *entries;
	int n;
};

static const char *const role_names[] = {"none", "console", "research", "monitor", "admin"};

const char *r5_role_name(r5_role role)
{
	return role >= R5_ROLE_NONE && role <= R5_ROLE_ADMIN ? role_names[role] : "none";
}

r5_role r5_role_parse(const char *name, size_t length)
{
	for (int r = R5_ROLE_CONSOLE; r <= R5_ROLE_ADMIN; r++)
		if (strlen(role_names[r]) == length && memcmp(role_names[r], name, length) == 0)
			return (r5_role)r;
	return R5_ROLE_NONE;
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* hex of length 2*n into out (at most max bytes); returns bytes or -1 */
static long parse_hex(const char *p, size_t length, unsigned char *out, size_t max)
{
	if (length == 0 || length % 2 || length / 2 > max)
		return -1;
	for (size_t i = 0; i < length / 2; i++) {
		int hi = hex_value(p[2 * i]), lo = hex_value(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi * 16 + lo);
	}
	return (long)(length / 2);
}

static void sha256_salted(const unsigned char *salt, size_t salt_length, const void *data, size_t length,
			  unsigned char out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 32;
	memset(out, 0, 32);
	if (!md)
		return;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, salt, salt_length) == 1 &&
	    EVP_DigestUpdate(md, data, length) == 1)
		EVP_DigestFinal_ex(md, out, &n);
	EVP_MD_CTX_free(md);
}

void r5_auth_sha256_hex(const void *data, size_t length, char hex[65])
{
	unsigned char h[32];
	sha256_salted(NULL, 0, data, length, h);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

#define MAX_FIELDS 5

r5_status r5_auth_tokens_parse(const char *text, size_t length, const char *origin, r5_auth_tokens **out)
{
	*out = NULL;
	r5_auth_tokens *t = calloc(1, sizeof *t);
	if (!t)
		return r5_set_error(R5_ENOMEM, "%s: tokens", origin);
	int capacity = 0;
	size_t pos = 0;
	for (long line_no = 1; pos < length; line_no++) {
		size_t end = pos;
		while (end < length && text[end] != '\n')
			end++;
		const char *field[MAX_FIELDS];
		size_t field_length[MAX_FIELDS];
		int n = 0;
		for (size_t i = pos; i < end;) {
			char ch = text[i];
			if (ch == '#')
				break;
			if (ch == ' ' || ch == '\t' || ch == '\r') {
				i++;
				continue;
			}
			size_t j = i;
			while (j < end && text[j] != ' ' && text[j] != '\t' && text[j] != '\r' && text[j] != '#') {
				if ((unsigned char)text[j] < 0x20 || (unsigned char)text[j] > 0x7e) {
					r5_auth_tokens_free(t);
					return r5_set_error(R5_EINVAL, "%s:%ld: a character that is not printable ASCII",
							    origin, line_no);
				}
				j++;
			}
			if (n == MAX_FIELDS) {
				r5_auth_tokens_free(t);
				return r5_set_error(R5_EINVAL, "%s:%ld: too many fields (expected ROLE NAME SALT HASH "
							       "or cert ROLE NAME)", origin, line_no);
			}
			field[n] = text + i;
			field_length[n++] = j - i;
			i = j;
		}
		pos = end < length ? end + 1 : end;
		if (n == 0)
			continue;
		r5_auth_entry e;
		memset(&e, 0, sizeof e);
		int cert = field_length[0] == 4 && memcmp(field[0], "cert", 4) == 0;
		int want = cert ? 3 : 4;
		if (n != want) {
			r5_auth_tokens_free(t);
			return r5_set_error(R5_EINVAL, "%s:%ld: %d fields, expected %s", origin, line_no, n,
					    cert ? "cert ROLE NAME" : "ROLE NAME SALT-HEX SHA256-HEX");
		}
		int r = cert ? 1 : 0;
		e.cert = cert;
		e.role = r5_role_parse(field[r], field_length[r]);
		if (e.role == R5_ROLE_NONE) {
			r5_auth_tokens_free(t);
			return r5_set_error(R5_EINVAL, "%s:%ld: role \"%.*s\": expected console, research, monitor or admin",
					    origin, line_no, (int)(field_length[r] > 32 ? 32 : field_length[r]), field[r]);
		}
		if (field_length[r + 1] >= sizeof e.name) {
			r5_auth_tokens_free(t);
			return r5_set_error(R5_EINVAL, "%s:%ld: name longer than %zu characters", origin, line_no,
					    sizeof e.name - 1);
		}
		memcpy(e.name, field[r + 1], field_length[r + 1]);
		if (!cert) {
			long s = parse_hex(field[2], field_length[2], e.salt, sizeof e.salt);
			if (s < 8) {
				r5_auth_tokens_free(t);
				return r5_set_error(R5_EINVAL, "%s:%ld: salt: expected 16 to 64 hex digits", origin, line_no);
			}
			e.salt_length = (size_t)s;
			if (field_length[3] != 64 || parse_hex(field[3], 64, e.hash, 32) != 32) {
				r5_auth_tokens_free(t);
				return r5_set_error(R5_EINVAL, "%s:%ld: hash: expected 64 hex digits (SHA-256)", origin,
						    line_no);
			}
		}
		if (t->n == capacity) {
			int next = capacity ? 2 * capacity : 8;
			r5_auth_entry *grown = realloc(t->entries, (size_t)next * sizeof *grown);
			if (!grown) {
				r5_auth_tokens_free(t);
				return r5_set_error(R5_ENOMEM, "%s:%ld: tokens", origin, line_no);
			}
			t->entries = grown;
			capacity = next;
		}
		t->entries[t->n++] = e;
	}
	*out = t;
	return R5_OK;
}

r5_status r5_auth_tokens_load(const char *path, r5_auth_tokens **out)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return r5_set_error(R5_EIO, "tokens_file %s: cannot open", path);
	char *text = NULL;
	size_t length = 0, capacity = 0;
	for (;;) {
		if (length == capacity) {
			capacity = capacity ? 2 * capacity : 4096;
			if (capacity > (16u << 20)) {
				free(text);
				fclose(f);
				return r5_set_error(R5_EINVAL, "tokens_file %s: larger than 16 MB", path);
			}
			char *grown = realloc(text, capacity);
			if (!grown) {
				free(text);
				fclose(f);
				return r5_set_error(R5_ENOMEM, "tokens_file %s", path);
			}
			text = grown;
		}
		size_t got = fread(text + length, 1, capacity - length, f);
		length += got;
		if (got == 0)
			break;
	}
	int failed = ferror(f);
	fclose(f);
	if (failed) {
		free(text);
		return r5_set_error(R5_EIO, "tokens_file %s: read error", path);
	}
	r5_status st = r5_auth_tokens_parse(text, length, path, out);
	OPENSSL_cleanse(text, capacity);
	free(text);
	return st;
}

void r5_auth_tokens_free(r5_auth_tokens *t)
{
	if (!t)
		return;
	if (t->entries)
		OPENSSL_cleanse(t->entries, (size_t)t->n * sizeof *t->entries);
	free(t->entries);
	free(t);
}

int r5_auth_tokens_count(const r5_auth_tokens *t)
{
	return t ? t->n : 0;
}

r5_role r5_auth_check_token(const r5_auth_tokens *t, const char *token, size_t length, const char **name)
{
	r5_role found = R5_ROLE_NONE;
	if (name)
		*name = NULL;
	if (!t || !token || length == 0)
		return R5_ROLE_NONE;
	for (int i = 0; i < t->n; i++) {
		const r5_auth_entry *e = &t->entries[i];
		if (e->cert)
			continue;
		unsigned char h[32];
		sha256_salted(e->salt, e->salt_length, token, length, h);
		if (CRYPTO_memcmp(h, e->hash, 32) == 0 && found == R5_ROLE_NONE) {
			found = e->role;
			if (name)
				*name = e->name;
		}
	}
	return found;
}

r5_role r5_auth_cert_role(const r5_auth_tokens *t, const char *name)
{
	if (!name || !*name)
		return R5_ROLE_NONE;
	for (int i = 0; t && i < t->n; i++)
		if (t->entries[i].cert && strcmp(t->entries[i].name, name) == 0)
			return t->entries[i].role;
	for (int r = R5_ROLE_CONSOLE; r <= R5_ROLE_ADMIN; r++) {
		size_t n = strlen(role_names[r]);
		if (strncmp(name, role_names[r], n) == 0 && (name[n] == 0 || name[n] == '-' || name[n] == '.'))
			return (r5_role)r;
	}
	return R5_ROLE_NONE;
}

int r5_auth_allows(r5_role role, r5_auth_action action)
{
	switch (role) {
	case R5_ROLE_ADMIN:
		return 1;
	case R5_ROLE_CONSOLE:
	case R5_ROLE_RESEARCH:
		return action != R5_ACT_ADMIN;
	case R5_ROLE_MONITOR:
		return action == R5_ACT_CAPABILITIES || action == R5_ACT_HEALTH;
	default:
		return 0;
	}
}

r5_status r5_auth_make_token(r5_role role, const char *name, char token[65], char *line, size_t line_size)
{
	if (role == R5_ROLE_NONE)
		return r5_set_error(R5_EINVAL, "token: expected --role console, research, monitor or admin");
	if (!name || !*name || strlen(name) >= 128 || strpbrk(name, " \t\r\n#"))
		return r5_set_error(R5_EINVAL, "token: --name: 1-127 characters, no blanks or '#'");
	unsigned char raw[32], salt[16], h[32];
	if (RAND_bytes(raw, sizeof raw) != 1 || RAND_bytes(salt, sizeof salt) != 1)
		return r5_set_error(R5_EIO, "token: RAND_bytes failed");
	for (int i = 0; i < 32; i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof raw);
	sha256_salted(salt, sizeof salt, token, 64, h);
	char salt_hex[33], hash_hex[65];
	for (int i = 0; i < 16; i++)
		snprintf(salt_hex + 2 * i, 3, "%02x", salt[i]);
	for (int i = 0; i < 32; i++)
		snprintf(hash_hex + 2 * i, 3, "%02x", h[i]);
	int n = snprintf(line, line_size, "%s %s %s %s", r5_role_name(role), name, salt_hex, hash_hex);
	if (n < 0 || (size_t)n >= line_size)
		return r5_set_error(R5_EINVAL, "token: line buffer too small");
	return R5_OK;
}
