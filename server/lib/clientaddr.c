/* Client addresses behind trusted proxies; see clientaddr.h. Every address is compared as
 * bytes after inet_pton, never as text. */
#include "lib/clientaddr.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int clientaddr_parse(const char *text, size_t len, unsigned char out[16], int *family)
{
    if (!text)
        return RST_EINVAL;
    while (len && (*text == ' ' || *text == '\t'))
        text++, len--;
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    char buf[64];
    const char *start = text;
    size_t n = len;
    if (len && text[0] == '[') { /* [v6] or [v6]:port */
        const char *close = memchr(text, ']', len);
        if (!close)
            return RST_EINVAL;
        start = text + 1;
        n = (size_t)(close - start);
        const char *rest = close + 1;
        size_t rlen = len - (size_t)(rest - text);
        if (rlen && (rest[0] != ':' || rlen < 2 || strspn(rest + 1, "0123456789") < rlen - 1))
            return RST_EINVAL;
    } else {
        const char *colon = memchr(text, ':', len);
        /* one colon: IPv4 with a port; more: a bare IPv6 address */
        if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - text) - 1))
            n = (size_t)(colon - text);
    }
    if (n == 0 || n >= sizeof buf)
        return RST_EINVAL;
    memcpy(buf, start, n);
    buf[n] = '\0';
    memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, out) == 1) {
        *family = 4;
        return RST_OK;
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) != 1)
        return RST_EINVAL;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        memcpy(out, a6.s6_addr + 12, 4);
        *family = 4;
    } else {
        memcpy(out, a6.s6_addr, 16);
        *family = 6;
    }
    return RST_OK;
}

/* Parses one list entry "addr" or "addr/bits" into bytes, family and prefix length. */
static int parse_entry(const char *e, size_t n, unsigned char net[16], int *family, int *bits)
{
    const char *slash = memchr(e, '/', n);
    size_t alen = slash ? (size_t)(slash - e) : n;
    if (clientaddr_parse(e, alen, net, family))
        return RST_EINVAL;
    int max = *family == 4 ? 32 : 128;
    *bits = max;
    if (slash) {
        char b[8];
        size_t blen = n - alen - 1;
        long v;
        if (blen == 0 || blen >= sizeof b)
            return RST_EINVAL;
        memcpy(b, slash + 1, blen);
        b[blen] = '\0';
        if (parse_long(b, 0, max, &v))
            return RST_EINVAL;
        *bits = (int)v;
    }
    return RST_OK;
}

static int prefix_match(const unsigned char *a, const unsigned char *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full))
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

int clientaddr_list_valid(const char *list)
{
    if (!list || !*list)
        return 1;
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        unsigned char net[16];
        int fam, bits;
        if (parse_entry(p, n, net, &fam, &bits))
            return 0;
        if (!p[n])
            return 1;
        p += n + 1;
    }
}

/* Whether the address in a (family fam) is in list. */
static int bytes_in_list(const unsigned char *a, int fam, const char *list)
{
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, ",");
        unsigned char net[16];
        int nfam, bits;
        if (!parse_entry(p, n, net, &nfam, &bits) && nfam == fam && prefix_match(a, net, bits))
            return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

int clientaddr_in_list(const char *addr, const char *list)
{
    unsigned char a[16];
    int fam;
    if (!addr || clientaddr_parse(addr, strlen(addr), a, &fam))
        return 0;
    return bytes_in_list(a, fam, list);
}

static void format(const unsigned char *a, int fam, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN];
    if (!inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, text, sizeof text))
        snprintf(text, sizeof text, "unknown");
    snprintf(out, cap, "%s", text);
}

void clientaddr_resolve(const char *peer, const char *xff, const char *trusted, char *out,
                        size_t cap)
{
    unsigned char a[16];
    int fam;
    if (!peer || clientaddr_parse(peer, strlen(peer), a, &fam)) {
        snprintf(out, cap, "%s", peer ? peer : "unknown");
        return;
    }
    if (xff && bytes_in_list(a, fam, trusted)) {
        /* Right to left: each hop is what the proxy to its right saw. */
        const char *end = xff + strlen(xff);
        while (end > xff) {
            const char *start = end;
            while (start > xff && start[-1] != ',')
                start--;
            unsigned char h[16];
            int hfam;
            if (clientaddr_parse(start, (size_t)(end - start), h, &hfam))
                break; /* a hop no proxy of ours wrote: stop at the last good one */
            memcpy(a, h, 16);
            fam = hfam;
            if (!bytes_in_list(h, hfam, trusted))
                break;
            end = start > xff ? start - 1 : start;
        }
    }
    format(a, fam, out, cap);
}

void clientaddr_bucket_key(const char *addr, char *out, size_t cap)
{
    unsigned char a[16];
    int fam;
    if (!addr || clientaddr_parse(addr, strlen(addr), a, &fam)) {
        snprintf(out, cap, "%s", addr ? addr : "unknown");
        return;
    }
    if (fam == 6) {
        memset(a + 8, 0, 8);
        char text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, text, sizeof text);
        snprintf(out, cap, "%s/64", text);
        return;
    }
    format(a, fam, out, cap);
}
