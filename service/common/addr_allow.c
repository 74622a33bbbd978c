/* Peer address allow-lists (addr_allow.h). Addresses are compared as bytes in network order:
 * an entry matches when the peer has its family and the same first `prefix` bits. */
#include "service/common/addr_allow.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct addr_entry {
	int v6;                 /* 0: IPv4 (4 bytes), 1: IPv6 (16 bytes) */
	unsigned char bytes[16];
	int prefix;             /* bits that must match */
} addr_entry;

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* A numeric address into *e (prefix = its full length); ::ffff:a.b.c.d becomes IPv4. */
static int parse_address(const char *text, addr_entry *e)
{
	memset(e, 0, sizeof *e);
	if (inet_pton(AF_INET, text, e->bytes) == 1) {
		e->prefix = 32;
		return 1;
	}
	if (inet_pton(AF_INET6, text, e->bytes) != 1)
		return 0;
	e->v6 = 1;
	e->prefix = 128;
	if (!memcmp(e->bytes, v4_mapped, sizeof v4_mapped)) {
		memmove(e->bytes, e->bytes + 12, 4);
		memset(e->bytes + 4, 0, 12);
		e->v6 = 0;
		e->prefix = 32;
	}
	return 1;
}

/* "ADDRESS" or "ADDRESS/BITS" into *e; 0 with a reason in why when it is not one. */
static int parse_entry(const char *text, addr_entry *e, const char **why)
{
	char address[64];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);
	*why = "not a numeric IPv4 or IPv6 address";
	if (n == 0 || n >= sizeof address)
		return 0;
	memcpy(address, text, n);
	address[n] = '\0';
	int mapped = strchr(address, ':') && strchr(address, '.'); /* ::ffff:a.b.c.d: its prefix counts from 96 */
	if (!parse_address(address, e))
		return 0;
	if (!slash)
		return 1;
	char *end = NULL;
	long bits = strtol(slash + 1, &end, 10);
	int max_bits = e->v6 ? 128 : mapped ? 128 : 32;
	*why = "its prefix length is not a number of bits for that address family";
	if (!slash[1] || *end || slash[1] == '-' || slash[1] == '+' || bits < 0 || bits > max_bits)
		return 0;
	if (mapped && !e->v6) {
		*why = "an IPv4-mapped prefix must be /96 or longer";
		if (bits < 96)
			return 0;
		bits -= 96;
	}
	e->prefix = (int)bits;
	int length = e->v6 ? 16 : 4;
	for (int bit = e->prefix; bit < length * 8; bit++)
		if (e->bytes[bit / 8] & (0x80 >> (bit % 8))) {
			*why = "it has address bits set below its prefix length (write the network address)";
			return 0;
		}
	return 1;
}

static int entry_matches(const addr_entry *entry, const addr_entry *peer)
{
	if (entry->v6 != peer->v6)
		return 0;
	int full = entry->prefix / 8, rest = entry->prefix % 8;
	if (memcmp(entry->bytes, peer->bytes, (size_t)full))
		return 0;
	if (!rest)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (entry->bytes[full] & mask) == (peer->bytes[full] & mask);
}

/* Calls visit for each entry of list until it returns non-zero; returns that value. */
static int each_entry(const char *list, int (*visit)(const char *entry, void *user), void *user)
{
	const char *p = list;
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		const char *start = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if (p == start)
			continue;
		char entry[128];
		snprintf(entry, sizeof entry, "%.*s", (int)(p - start), start);
		int result = visit(entry, user);
		if (result)
			return result;
	}
	return 0;
}

static int check_one(const char *text, void *user)
{
	(void)user;
	addr_entry e;
	const char *why = NULL;
	if (parse_entry(text, &e, &why))
		return 0;
	r5_set_error(R5_EINVAL, "entry \"%.60s\": %s (expected e.g. 10.0.0.0/8, 192.168.1.7, ::1, fd00::/8)",
		     text, why);
	return 1;
}

r5_status r5_addr_list_check(const char *list) { return each_entry(list, check_one, NULL) ? R5_EINVAL : R5_OK; }

static int match_one(const char *text, void *user)
{
	addr_entry e;
	const char *why = NULL;
	return parse_entry(text, &e, &why) && entry_matches(&e, user);
}

int r5_addr_list_match(const char *list, const char *peer)
{
	addr_entry p;
	if (!peer || !parse_address(peer, &p))
		return 0;
	return each_entry(list, match_one, &p);
}

void r5_addr_peer_name(const char *numeric, char *out, size_t size)
{
	addr_entry p;
	char text[INET6_ADDRSTRLEN] = "";
	if (!parse_address(numeric, &p)) {
		snprintf(out, size, "%s", numeric);
		return;
	}
	inet_ntop(p.v6 ? AF_INET6 : AF_INET, p.bytes, text, sizeof text);
	if (p.v6)
		snprintf(out, size, "ipv6:[%s]", text);
	else
		snprintf(out, size, "ipv4:%s", text);
}
