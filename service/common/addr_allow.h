/* Peer address allow-lists (mrd_allow): a pure matcher, no sockets and no server state, so that
 * it is unit-tested on its own (tests/unit/test_addr_allow.c) and config.c can refuse a bad list
 * at start-up rather than when the first scanner connects.
 *
 * A list is entries separated by commas and/or white space; an entry is a numeric IPv4 or IPv6
 * address, optionally with a CIDR prefix length: "10.0.0.0/8, 192.168.1.7, ::1, fd00::/8".
 * Host names are not accepted (a list must not depend on DNS at connect time). An entry with
 * bits set below its prefix ("10.0.0.1/8") is refused as a likely typing error. IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d, as a dual-stack socket reports IPv4 peers) are matched as IPv4,
 * on both sides. */
#ifndef R5_SERVICE_ADDR_ALLOW_H
#define R5_SERVICE_ADDR_ALLOW_H

#include <stddef.h>

#include "recon/core/status.h"

/* R5_OK when every entry of list parses; R5_EINVAL naming the first entry that does not. An
 * empty list is valid (it allows nothing by itself: what empty means is the caller's rule). */
r5_status r5_addr_list_check(const char *list);

/* 1 when peer (a numeric address, IPv4 or IPv6) falls in one of the list's entries, else 0.
 * Entries that do not parse never match (r5_addr_list_check refuses them first). */
int r5_addr_list_match(const char *list, const char *peer);

/* peer in the form gRPC's peer strings take without the port ("ipv4:10.1.2.3",
 * "ipv6:[fd00::1]"), IPv4-mapped addresses written as IPv4, so that per-peer limits count an
 * MRD connection and a gRPC stream from one host together. */
void r5_addr_peer_name(const char *numeric, char *out, size_t size);

#endif
