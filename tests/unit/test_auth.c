/* The tokens file parser and the token / certificate checks of service/server/auth.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recon/core/status.h"
#include "service/server/auth.h"

static r5_auth_tokens *parse(const char *text)
{
	r5_auth_tokens *t = NULL;
	assert_int_equal(r5_auth_tokens_parse(text, strlen(text), "tokens.txt", &t), R5_OK);
	assert_non_null(t);
	return t;
}

static void expect_error(const char *text, const char *needle)
{
	r5_auth_tokens *t = (r5_auth_tokens *)1;
	assert_int_equal(r5_auth_tokens_parse(text, strlen(text), "tokens.txt", &t), R5_EINVAL);
	assert_null(t);
	if (!strstr(r5_last_error(), needle))
		fail_msg("error \"%s\" lacks \"%s\"", r5_last_error(), needle);
}

/* a token made by r5_auth_make_token checks against its own line, and only that one */
static void test_make_and_check(void **state)
{
	(void)state;
	char token[65], line[400], token2[65], line2[400];
	assert_int_equal(r5_auth_make_token(R5_ROLE_RESEARCH, "lab-7", token, line, sizeof line), R5_OK);
	assert_int_equal(r5_auth_make_token(R5_ROLE_ADMIN, "ops", token2, line2, sizeof line2), R5_OK);
	assert_int_equal(strlen(token), 64);
	assert_null(strstr(line, token)); /* the line holds no token */
	assert_string_not_equal(token, token2);
	char text[1000];
	snprintf(text, sizeof text, "# comment\n\n  %s  \r\n%s # trailing comment\ncert console scanner-1\n", line, line2);
	r5_auth_tokens *t = parse(text);
	assert_int_equal(r5_auth_tokens_count(t), 3);
	const char *name = NULL;
	assert_int_equal(r5_auth_check_token(t, token, 64, &name), R5_ROLE_RESEARCH);
	assert_string_equal(name, "lab-7");
	assert_int_equal(r5_auth_check_token(t, token2, 64, &name), R5_ROLE_ADMIN);
	assert_string_equal(name, "ops");
	char wrong[65];
	memcpy(wrong, token, 65);
	wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
	assert_int_equal(r5_auth_check_token(t, wrong, 64, &name), R5_ROLE_NONE);
	assert_null(name);
	assert_int_equal(r5_auth_check_token(t, token, 63, NULL), R5_ROLE_NONE); /* a prefix is not the token */
	assert_int_equal(r5_auth_check_token(t, "", 0, NULL), R5_ROLE_NONE);
	/* a cert line is not a token: its name does not authenticate as a bearer token */
	assert_int_equal(r5_auth_check_token(t, "scanner-1", 9, NULL), R5_ROLE_NONE);
	assert_int_equal(r5_auth_cert_role(t, "scanner-1"), R5_ROLE_CONSOLE);
	r5_auth_tokens_free(t);
}

/* a known vector: sha256(salt || "token") with salt 00 01 .. 0f, computed with openssl dgst */
static void test_known_hash(void **state)
{
	(void)state;
	char hex[65];
	r5_auth_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	r5_auth_tokens *t = parse("monitor prom 000102030405060708090a0b0c0d0e0f "
				  "5d77818e3ab0c8609d3fa22fe5bbc48fc83dca7d632d63255bf6da80a1c067b5\n");
	const char *name = NULL;
	assert_int_equal(r5_auth_check_token(t, "token", 5, &name), R5_ROLE_MONITOR);
	assert_string_equal(name, "prom");
	assert_int_equal(r5_auth_check_token(t, "Token", 5, NULL), R5_ROLE_NONE);
	r5_auth_tokens_free(t);
}

static void test_malformed_lines(void **state)
{
	(void)state;
	expect_error("console a 00112233445566778899aabbccddeeff\n", "tokens.txt:1: 3 fields");
	expect_error("# ok\nroot a 0011223344556677 "
		     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
		     "tokens.txt:2: role \"root\"");
	expect_error("console a 00zz223344556677 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		     "tokens.txt:1: salt");
	expect_error("console a 0011 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "salt");
	expect_error("\n\n\nconsole a 0011223344556677 ba7816bf", "tokens.txt:4: hash");
	expect_error("cert console\n", "cert ROLE NAME");
	expect_error("cert admin x y\n", "4 fields");
	expect_error("console a\x01 0011223344556677 ba", "printable");
	expect_error("a b c d e f\n", "too many fields");
	/* NUL inside the buffer (the fuzz helper's inputs) */
	static const char with_nul[] = "cert console a\0b\n";
	r5_auth_tokens *t = NULL;
	assert_int_equal(r5_auth_tokens_parse(with_nul, sizeof with_nul - 1, "x", &t), R5_EINVAL);
	/* empty and comment-only files are valid and hold nothing */
	t = parse("");
	assert_int_equal(r5_auth_tokens_count(t), 0);
	r5_auth_tokens_free(t);
	t = parse("# nothing\n   \n");
	assert_int_equal(r5_auth_tokens_count(t), 0);
	r5_auth_tokens_free(t);
}

static void test_roles(void **state)
{
	(void)state;
	assert_int_equal(r5_auth_cert_role(NULL, "console"), R5_ROLE_CONSOLE);
	assert_int_equal(r5_auth_cert_role(NULL, "research-2"), R5_ROLE_RESEARCH);
	assert_int_equal(r5_auth_cert_role(NULL, "monitor.prom"), R5_ROLE_MONITOR);
	assert_int_equal(r5_auth_cert_role(NULL, "administrator"), R5_ROLE_NONE);
	assert_int_equal(r5_auth_cert_role(NULL, "consoles"), R5_ROLE_NONE);
	assert_int_equal(r5_auth_cert_role(NULL, ""), R5_ROLE_NONE);
	assert_true(r5_auth_allows(R5_ROLE_ADMIN, R5_ACT_ADMIN));
	assert_false(r5_auth_allows(R5_ROLE_CONSOLE, R5_ACT_ADMIN));
	assert_false(r5_auth_allows(R5_ROLE_RESEARCH, R5_ACT_ADMIN));
	assert_true(r5_auth_allows(R5_ROLE_RESEARCH, R5_ACT_RECONSTRUCT));
	assert_false(r5_auth_allows(R5_ROLE_MONITOR, R5_ACT_RECONSTRUCT));
	assert_true(r5_auth_allows(R5_ROLE_MONITOR, R5_ACT_CAPABILITIES));
	assert_true(r5_auth_allows(R5_ROLE_MONITOR, R5_ACT_HEALTH));
	assert_false(r5_auth_allows(R5_ROLE_NONE, R5_ACT_HEALTH));
	char token[65], line[64];
	assert_int_equal(r5_auth_make_token(R5_ROLE_NONE, "x", token, line, sizeof line), R5_EINVAL);
	assert_int_equal(r5_auth_make_token(R5_ROLE_ADMIN, "a b", token, line, sizeof line), R5_EINVAL);
	assert_int_equal(r5_auth_make_token(R5_ROLE_ADMIN, "ab", token, line, 20), R5_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make_and_check),
		cmocka_unit_test(test_known_hash),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_roles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
