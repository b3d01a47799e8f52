/* Client addresses: where a request comes from when it passed trusted proxies
 * (X-Forwarded-For), address lists with CIDR prefixes (ROASTERY_TRUSTED_PROXIES), and the key
 * that per-address limits count under. Pure functions, no allocation. */
#ifndef ROASTERY_CLIENTADDR_H
#define ROASTERY_CLIENTADDR_H

#include <stddef.h>

enum { CLIENTADDR_MAX = 64 }; /* room for any address text, a /64 key or "unknown" */

/* Parses one address: "1.2.3.4", "1.2.3.4:port", "::1", "[::1]" or "[::1]:port" (surrounding
 * spaces ignored) into 16 bytes; IPv4 and IPv4-mapped IPv6 both give *family 4 with the
 * address in out[0..3]. RST_OK or RST_EINVAL. */
int clientaddr_parse(const char *text, size_t len, unsigned char out[16], int *family);

/* Whether list is empty or comma-separated addresses and prefixes ("10.0.0.0/8",
 * "fd00::/8", "192.168.1.7"), each well-formed. */
int clientaddr_list_valid(const char *list);

/* Whether addr (as clientaddr_parse takes it) is in list (NULL or empty: never). */
int clientaddr_in_list(const char *addr, const char *list);

/* The client's address: peer itself, unless peer is in trusted and xff (the X-Forwarded-For
 * values joined with ',', may be NULL) names hops: then the right-most hop that is not
 * trusted, walking leftwards over trusted ones (each proxy appends what it saw, so entries
 * left of the first untrusted one are the client's own claims). An unparsable hop ends the
 * walk at the last good one. out gets the canonical text (cap >= CLIENTADDR_MAX). */
void clientaddr_resolve(const char *peer, const char *xff, const char *trusted, char *out,
                        size_t cap);

/* What per-address limits count addr under: the address itself for IPv4, its /64 for IPv6
 * (one subscriber's whole allocation), addr as given when it does not parse. */
void clientaddr_bucket_key(const char *addr, char *out, size_t cap);

#endif
