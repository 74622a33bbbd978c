/* The mrd_allow matcher (service/common/addr_allow.c): IPv4 and IPv6 addresses and CIDR
 * prefixes, IPv4-mapped peers against IPv4 entries, and the refusal of malformed entries that
 * makes recon5td refuse to start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "recon/core/status.h"
#include "service/common/addr_allow.h"

static const char *list = "10.0.0.0/8, 192.168.1.7,::1  fd00::/8\t172.16.0.0/12";

static void test_ipv4(void **state)
{
	(void)state;
	assert_int_equal(r5_addr_list_check(list), R5_OK);
	assert_true(r5_addr_list_match(list, "10.0.0.1"));
	assert_true(r5_addr_list_match(list, "10.255.255.255"));
	assert_false(r5_addr_list_match(list, "11.0.0.1"));
	assert_false(r5_addr_list_match(list, "9.255.255.255"));
	assert_true(r5_addr_list_match(list, "192.168.1.7"));
	assert_false(r5_addr_list_match(list, "192.168.1.8"));
	/* /12: 172.16.0.0 - 172.31.255.255, a prefix that is not a whole byte */
	assert_true(r5_addr_list_match(list, "172.31.255.255"));
	assert_true(r5_addr_list_match(list, "172.16.0.0"));
	assert_false(r5_addr_list_match(list, "172.32.0.0"));
	assert_false(r5_addr_list_match(list, "172.15.255.255"));
	assert_false(r5_addr_list_match(list, "127.0.0.1"));
}

static void test_ipv6(void **state)
{
	(void)state;
	assert_true(r5_addr_list_match(list, "::1"));
	assert_true(r5_addr_list_match(list, "0:0:0:0:0:0:0:1")); /* another spelling of ::1 */
	assert_false(r5_addr_list_match(list, "::2"));
	assert_true(r5_addr_list_match(list, "fd00::1"));
	assert_true(r5_addr_list_match(list, "fdff:ffff::1"));
	assert_false(r5_addr_list_match(list, "fe00::1"));
	assert_false(r5_addr_list_match(list, "fc00::1"));
	/* an IPv6 peer never matches an IPv4 entry nor the other way round */
	assert_false(r5_addr_list_match("0.0.0.0/0", "::1"));
	assert_false(r5_addr_list_match("::/0", "10.0.0.1"));
	assert_true(r5_addr_list_match("::/0", "2001:db8::7"));
	assert_true(r5_addr_list_match("0.0.0.0/0", "8.8.8.8"));
}

static void test_ipv4_mapped(void **state)
{
	(void)state;
	/* a dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d */
	assert_true(r5_addr_list_match(list, "::ffff:10.1.2.3"));
	assert_true(r5_addr_list_match(list, "::ffff:192.168.1.7"));
	assert_false(r5_addr_list_match(list, "::ffff:192.168.1.8"));
	assert_false(r5_addr_list_match(list, "::ffff:127.0.0.1"));
	/* and a mapped entry matches the IPv4 peer; its prefix counts from 96 */
	assert_true(r5_addr_list_match("::ffff:192.168.0.0/112", "192.168.44.1"));
	assert_false(r5_addr_list_match("::ffff:192.168.0.0/112", "192.169.0.1"));
	assert_true(r5_addr_list_match("::ffff:127.0.0.1", "127.0.0.1"));
	assert_int_equal(r5_addr_list_check("::ffff:10.0.0.0/8"), R5_EINVAL);
}

static void test_malformed(void **state)
{
	(void)state;
	const char *bad[] = {"10.0.0.0/33", "10.0.0/8", "host.example.org", "10.0.0.1/8", "fd00::/129", "fd00::1/8",
			     "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1", "1.2.3.4.5", ":::1", "/8", "256.0.0.1"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char l[128];
		snprintf(l, sizeof l, "127.0.0.1, %s, ::1", bad[i]);
		assert_int_equal(r5_addr_list_check(l), R5_EINVAL);
		/* the message names the entry */
		assert_non_null(strstr(r5_last_error(), bad[i]));
		assert_false(r5_addr_list_match(bad[i], "10.0.0.1"));
	}
	assert_int_equal(r5_addr_list_check(""), R5_OK);
	assert_int_equal(r5_addr_list_check(" , ,"), R5_OK);
	assert_false(r5_addr_list_match("", "127.0.0.1"));
	assert_false(r5_addr_list_match(list, "not an address"));
	assert_false(r5_addr_list_match(list, ""));
}

static void test_peer_name(void **state)
{
	(void)state;
	char out[64];
	r5_addr_peer_name("10.1.2.3", out, sizeof out);
	assert_string_equal(out, "ipv4:10.1.2.3");
	r5_addr_peer_name("::ffff:10.1.2.3", out, sizeof out);
	assert_string_equal(out, "ipv4:10.1.2.3");
	r5_addr_peer_name("0:0::1", out, sizeof out);
	assert_string_equal(out, "ipv6:[::1]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4), cmocka_unit_test(test_ipv6), cmocka_unit_test(test_ipv4_mapped),
		cmocka_unit_test(test_malformed), cmocka_unit_test(test_peer_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
