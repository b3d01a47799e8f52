/* webhooks' outbound filter: the address classifier (every special-purpose block at and
 * just past its edges, in both families and every IPv4-embedding IPv6 form), the port rule,
 * and the URL check at registration (numeric hosts in every spelling, loopback names). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "events/webhooks.h"

/* Whether a delivery may connect to ip (v4 or v6 text), with or without dev's loopback. */
static int allowed(const char *ip, int loopback)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1)
        a4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1)
        a6->sin6_family = AF_INET6;
    else
        fail_msg("test address %s does not parse", ip);
    return webhooks_address_allowed((struct sockaddr *)&ss, loopback);
}

typedef struct {
    const char *ip;
    int public_ok; /* allowed outside dev */
    int dev_ok;    /* allowed in dev (loopback too) */
} addr_case;

static const addr_case V4[] = {
    /* global unicast on either side of every block */
    {"1.1.1.1", 1, 1},         {"8.8.8.8", 1, 1},         {"20.50.1.2", 1, 1},
    {"0.0.0.0", 0, 0},         {"0.255.255.255", 0, 0},   {"1.0.0.0", 1, 1},
    {"9.255.255.255", 1, 1},   {"10.0.0.0", 0, 0},        {"10.9.9.9", 0, 0},
    {"10.255.255.255", 0, 0},  {"11.0.0.0", 1, 1},        {"100.63.255.255", 1, 1},
    {"100.64.0.0", 0, 0},      {"100.64.1.1", 0, 0},      {"100.100.100.200", 0, 0},
    {"100.127.255.255", 0, 0}, {"100.128.0.0", 1, 1},     {"126.255.255.255", 1, 1},
    {"127.0.0.0", 0, 1},       {"127.0.0.1", 0, 1},       {"127.255.255.254", 0, 1},
    {"128.0.0.0", 1, 1},       {"168.63.129.15", 1, 1},   {"168.63.129.16", 0, 0},
    {"168.63.129.17", 1, 1},   {"169.253.255.255", 1, 1}, {"169.254.0.0", 0, 0},
    {"169.254.169.254", 0, 0}, {"169.254.255.255", 0, 0}, {"169.255.0.0", 1, 1},
    {"172.15.255.255", 1, 1},  {"172.16.0.0", 0, 0},      {"172.16.5.5", 0, 0},
    {"172.31.255.255", 0, 0},  {"172.32.0.0", 1, 1},      {"192.0.0.0", 0, 0},
    {"192.0.0.255", 0, 0},     {"192.0.1.1", 1, 1},       {"192.0.2.1", 0, 0},
    {"192.0.3.0", 1, 1},       {"192.88.98.255", 1, 1},   {"192.88.99.1", 0, 0},
    {"192.88.100.0", 1, 1},    {"192.167.255.255", 1, 1}, {"192.168.0.0", 0, 0},
    {"192.168.77.7", 0, 0},    {"192.168.255.255", 0, 0}, {"192.169.0.0", 1, 1},
    {"198.17.255.255", 1, 1},  {"198.18.0.0", 0, 0},      {"198.19.255.255", 0, 0},
    {"198.20.0.0", 1, 1},      {"198.51.100.7", 0, 0},    {"198.51.101.0", 1, 1},
    {"203.0.112.255", 1, 1},   {"203.0.113.9", 0, 0},     {"203.0.114.0", 1, 1},
    {"223.255.255.255", 1, 1}, {"224.0.0.1", 0, 0},       {"239.255.255.255", 0, 0},
    {"240.0.0.1", 0, 0},       {"255.255.255.254", 0, 0}, {"255.255.255.255", 0, 0},
};

static const addr_case V6[] = {
    {"2606:4700::1111", 1, 1},
    {"2001:4860:4860::8888", 1, 1},
    {"2a01:111:f400::1", 1, 1},
    {"2001:200::1", 1, 1},  /* just past 2001::/23 */
    {"3fff:1000::1", 1, 1}, /* just past 3fff::/20 */
    {"2003::1", 1, 1},      /* just past 2002::/16 */
    {"2001:db7:ffff::1", 1, 1},
    {"::", 0, 0},
    {"::1", 0, 1},
    {"::2", 0, 0},
    {"::ffff:8.8.8.8", 0, 0}, /* IPv4-mapped: refused whatever it maps to */
    {"::ffff:10.9.9.9", 0, 0},
    {"::ffff:127.0.0.1", 0, 0}, /* not even in dev: loopback is 127/8 or ::1 */
    {"::ffff:169.254.169.254", 0, 0},
    {"::8.8.8.8", 0, 0}, /* IPv4-compatible */
    {"::10.9.9.9", 0, 0},
    {"::ffff:0:a09:909", 0, 0},   /* IPv4-translated (SIIT) */
    {"64:ff9b::a9fe:a9fe", 0, 0}, /* NAT64 of 169.254.169.254 */
    {"64:ff9b::808:808", 0, 0},
    {"64:ff9b:1::1", 0, 0},
    {"100::1", 0, 0},  /* discard-only */
    {"2001::1", 0, 0}, /* Teredo */
    {"2001:0:4136:e378:8000:63bf:3fff:fdd2", 0, 0},
    {"2001:2::1", 0, 0},  /* benchmarking */
    {"2001:10::1", 0, 0}, /* ORCHID */
    {"2001:20::1", 0, 0},
    {"2001:1ff:ffff::1", 0, 0}, /* still 2001::/23 */
    {"2001:db8::1", 0, 0},
    {"2001:db8:ffff:ffff::1", 0, 0},
    {"2002::1", 0, 0}, /* 6to4 */
    {"2002:a09:909::1", 0, 0},
    {"2002:ffff:ffff::1", 0, 0},
    {"3fff::1", 0, 0}, /* documentation (RFC 9637) */
    {"3fff:fff::1", 0, 0},
    {"fc00::1", 0, 0}, /* ULA */
    {"fd00::77", 0, 0},
    {"fd00:ec2::254", 0, 0}, /* a cloud metadata endpoint */
    {"fdff:ffff::1", 0, 0},
    {"fe80::1", 0, 0}, /* link-local */
    {"febf::1", 0, 0},
    {"fec0::1", 0, 0}, /* site-local */
    {"feff::1", 0, 0},
    {"ff02::1", 0, 0}, /* multicast */
    {"ff0e::1", 0, 0},
    {"1fff:ffff::1", 0, 0}, /* outside 2000::/3 */
    {"4000::1", 0, 0},
    {"5f00::1", 0, 0},
    {"e000::1", 0, 0},
};

static void run_cases(const addr_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (allowed(cases[i].ip, 0) != cases[i].public_ok)
            fail_msg("%s: expected %s outside dev", cases[i].ip,
                     cases[i].public_ok ? "allowed" : "refused");
        if (allowed(cases[i].ip, 1) != cases[i].dev_ok)
            fail_msg("%s: expected %s in dev", cases[i].ip,
                     cases[i].dev_ok ? "allowed" : "refused");
    }
}

static void test_ipv4_blocks(void **state)
{
    (void)state;
    run_cases(V4, sizeof V4 / sizeof V4[0]);
}

static void test_ipv6_blocks(void **state)
{
    (void)state;
    run_cases(V6, sizeof V6 / sizeof V6[0]);
}

/* Every /8 of IPv4 and every first 16 bits of IPv6: what is allowed is exactly what the
 * tables above say, never more (a missed block shows up here as an unexpected allow). */
static void test_whole_space_sweep(void **state)
{
    (void)state;
    int v4_allowed = 0;
    for (int a = 0; a < 256; a++) {
        char ip[32];
        snprintf(ip, sizeof ip, "%d.1.2.3", a);
        int ok = allowed(ip, 0);
        int expect = !(a == 0 || a == 10 || a == 127 || a >= 224);
        if (ok != expect)
            fail_msg("%s: expected %s", ip, expect ? "allowed" : "refused");
        v4_allowed += ok;
    }
    assert_int_equal(v4_allowed, 256 - 3 - 32);
    for (unsigned top = 0; top < 0x10000; top += 0x11) {
        char ip[64];
        snprintf(ip, sizeof ip, "%x:123::1", top);
        int expect =
            top >= 0x2000 && top < 0x4000 && top != 0x2002 && top != 0x2001 && top != 0x3fff;
        if (allowed(ip, 0) != expect)
            fail_msg("%s: expected %s", ip, expect ? "allowed" : "refused");
    }
}

static void test_other_families_and_reasons(void **state)
{
    (void)state;
    assert_false(webhooks_address_allowed(NULL, 1));
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    assert_false(webhooks_address_allowed((struct sockaddr *)&un, 1));
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "10.9.9.9", &a.sin_addr);
    assert_non_null(strstr(webhooks_address_refusal((struct sockaddr *)&a, 0), "private"));
    inet_pton(AF_INET, "100.64.1.1", &a.sin_addr);
    assert_non_null(strstr(webhooks_address_refusal((struct sockaddr *)&a, 0), "100.64.0.0/10"));
    inet_pton(AF_INET, "8.8.8.8", &a.sin_addr);
    assert_null(webhooks_address_refusal((struct sockaddr *)&a, 0));
}

static void test_ports(void **state)
{
    (void)state;
    assert_true(webhooks_port_allowed(443, 0, NULL));
    assert_false(webhooks_port_allowed(80, 0, NULL));
    assert_true(webhooks_port_allowed(80, 1, NULL));
    assert_false(webhooks_port_allowed(8443, 0, NULL));
    assert_false(webhooks_port_allowed(5432, 1, NULL));
    assert_true(webhooks_port_allowed(8443, 0, "8443"));
    assert_true(webhooks_port_allowed(9001, 0, "8443,9001"));
    assert_false(webhooks_port_allowed(900, 0, "8443,9001"));
    assert_false(webhooks_port_allowed(84, 0, "8443"));
}

static const char *check(const char *url, int dev, const char *ports)
{
    static char why[200];
    webhooks_policy pol = {.dev = dev, .ports = ports, .resolve = 0};
    return webhooks_check_url(url, &pol, why, sizeof why);
}

static void test_urls(void **state)
{
    (void)state;
    assert_null(check("https://hooks.globojava.example/roastery", 0, NULL));
    assert_null(check("https://hooks.example:443/a?b=c", 0, NULL));
    assert_null(check("https://8.8.8.8/hook", 0, NULL));
    assert_null(check("https://[2606:4700::1111]/hook", 0, NULL));
    assert_non_null(strstr(check("http://hooks.example/a", 0, NULL), "https"));
    assert_non_null(check("ftp://example.com/", 1, NULL));
    assert_non_null(check("https://user:pw@example.com/", 0, NULL));
    assert_non_null(check("https://exa mple.com/", 0, NULL));
    assert_non_null(check("", 0, NULL));
    assert_non_null(check("https://", 0, NULL));
    /* the review's targets, in every spelling of their address */
    static const char *const refused[] = {"https://10.9.9.9/hook",
                                          "https://0x0a090909/",
                                          "https://0x0A.0x09.0x09.0x09/",
                                          "https://167772161/",
                                          "https://012.011.011.011/",
                                          "https://10.1/",
                                          "https://10.9.9.9./",
                                          "https://192.168.77.7/",
                                          "https://172.16.5.5/",
                                          "https://100.64.1.1/",
                                          "https://168.63.129.16/machine",
                                          "https://169.254.169.254/latest/meta-data",
                                          "https://[fd00::77]/x",
                                          "https://[::ffff:10.9.9.9]/",
                                          "https://[::ffff:a09:909]/",
                                          "https://[::ffff:169.254.169.254]/",
                                          "https://[64:ff9b::a9fe:a9fe]/",
                                          "https://[2002:a09:909::1]/",
                                          "https://[fec0::1]/",
                                          "https://[fe80::1]/",
                                          "https://198.18.0.1/",
                                          "https://240.0.0.1/",
                                          "https://0/",
                                          "https://0.0.0.0/",
                                          "https://127.0.0.1/",
                                          "https://[::1]/",
                                          "https://localhost/",
                                          "https://LOCALHOST./",
                                          "https://api.localhost/",
                                          "https://127.1/",
                                          "https://2130706433/",
                                          "https://[::]/",
                                          NULL};
    for (int i = 0; refused[i]; i++) {
        const char *why = check(refused[i], 0, NULL);
        if (!why)
            fail_msg("%s was allowed", refused[i]);
        if (!strstr(why, "public address"))
            fail_msg("%s: %s", refused[i], why);
    }
}

static void test_urls_ports_and_dev(void **state)
{
    (void)state;
    assert_non_null(strstr(check("https://hooks.example:8443/a", 0, NULL), "port 443"));
    assert_null(check("https://hooks.example:8443/a", 0, "8443"));
    assert_non_null(check("https://hooks.example:80/a", 0, NULL));
    assert_non_null(check("https://hooks.example:5432/", 1, NULL));
    /* dev: loopback, http:// only to it, port 80 or a listed one */
    assert_null(check("http://127.0.0.1/hook", 1, NULL));
    assert_null(check("http://localhost/hook", 1, NULL));
    assert_null(check("http://[::1]/hook", 1, NULL));
    assert_null(check("https://127.0.0.1/hook", 1, NULL));
    assert_non_null(check("http://127.0.0.1:9000/hook", 1, NULL));
    assert_null(check("http://127.0.0.1:9000/hook", 1, "9000"));
    assert_non_null(check("http://127.0.0.1:9000/hook", 0, "9000"));
    assert_non_null(check("http://127.0.0.1/hook", 0, NULL));
    assert_non_null(check("http://10.0.0.5/hook", 1, NULL));
    assert_non_null(check("https://10.0.0.5/hook", 1, NULL));
    assert_non_null(check("http://hooks.example/hook", 1, NULL));
    assert_non_null(check("http://[::ffff:127.0.0.1]/hook", 1, NULL));
}

/* At registration a name is judged by what it resolves to now: this machine's own name
 * resolves (through /etc/hosts) to loopback or a private address here and on CI runners. */
static void test_registration_resolves_names(void **state)
{
    (void)state;
    char name[256];
    if (gethostname(name, sizeof name) != 0)
        skip();
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list = NULL;
    if (getaddrinfo(name, "443", &hints, &list) != 0)
        skip();
    int all_refused = 1;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next)
        all_refused &= !webhooks_address_allowed(ai->ai_addr, 0);
    freeaddrinfo(list);
    if (!all_refused)
        skip();
    char url[300], why[200];
    snprintf(url, sizeof url, "https://%s/hook", name);
    webhooks_policy now = {.dev = 0, .ports = NULL, .resolve = 1};
    webhooks_policy later = {.dev = 0, .ports = NULL, .resolve = 0};
    const char *reason = webhooks_check_url(url, &now, why, sizeof why);
    assert_non_null(reason);
    assert_non_null(strstr(reason, "public address"));
    assert_null(webhooks_check_url(url, &later, why, sizeof why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_blocks),
        cmocka_unit_test(test_ipv6_blocks),
        cmocka_unit_test(test_whole_space_sweep),
        cmocka_unit_test(test_other_families_and_reasons),
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_urls_ports_and_dev),
        cmocka_unit_test(test_registration_resolves_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
