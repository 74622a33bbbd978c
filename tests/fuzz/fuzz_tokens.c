/* libFuzzer harness: recon5td's tokens-file reader (service/server/auth.c,
 * r5_auth_tokens_parse, from memory). A parsed file is then asked for a token and a
 * certificate name taken from the input's first line, as calls.c's authorization does. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "service/server/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	r5_auth_tokens *t = NULL;
	if (r5_auth_tokens_parse((const char *)data, size, "tokens.txt", &t) != R5_OK)
		return 0;
	(void)r5_auth_tokens_count(t);
	const char *end = memchr(data, '\n', size);
	size_t first = end ? (size_t)(end - (const char *)data) : size;
	const char *name = NULL;
	(void)r5_auth_check_token(t, (const char *)data, first < 64 ? first : 64, &name);
	char cn[65];
	size_t n = first < 64 ? first : 64;
	memcpy(cn, data, n);
	cn[n] = '\0';
	(void)r5_auth_cert_role(t, cn);
	r5_auth_tokens_free(t);
	return 0;
}
