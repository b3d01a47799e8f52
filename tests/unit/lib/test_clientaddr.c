/* clientaddr: X-Forwarded-For honoured only from trusted proxies and read right to left,
 * CIDR lists, and the per-address key (IPv6 by /64). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/clientaddr.h"
#include "lib/util.h"

static const char *resolve(const char *peer, const char *xff, const char *trusted)
{
    static char out[CLIENTADDR_MAX];
    clientaddr_resolve(peer, xff, trusted, out, sizeof out);
    return out;
}

static void test_forwarded_for_only_from_trusted_proxies(void **state)
{
    (void)state;
    const char *ingress = "10.244.0.0/16,fd00:1::/64";
    /* no trusted proxy configured, or an untrusted peer: the header is the client's claim */
    assert_string_equal(resolve("203.0.113.9", "1.2.3.4", NULL), "203.0.113.9");
    assert_string_equal(resolve("203.0.113.9", "1.2.3.4", ""), "203.0.113.9");
    assert_string_equal(resolve("203.0.113.9", "1.2.3.4", ingress), "203.0.113.9");
    /* behind the ingress: the hop it saw */
    assert_string_equal(resolve("10.244.1.5", "198.51.100.7", ingress), "198.51.100.7");
    assert_string_equal(resolve("10.244.1.5", " 198.51.100.7 ", ingress), "198.51.100.7");
    /* a client's own X-Forwarded-For is to the left of what the ingress appended */
    assert_string_equal(resolve("10.244.1.5", "6.6.6.6, 198.51.100.7", ingress), "198.51.100.7");
    assert_string_equal(resolve("10.244.1.5", "127.0.0.1,10.244.0.1", ingress), "127.0.0.1");
    /* chains of trusted proxies are walked over */
    assert_string_equal(
        resolve("10.244.1.5", "6.6.6.6,198.51.100.7,10.244.9.9,10.244.3.3", ingress),
        "198.51.100.7");
    /* all hops trusted: the left-most */
    assert_string_equal(resolve("10.244.1.5", "10.244.7.7,10.244.3.3", ingress), "10.244.7.7");
    /* garbage where the client wrote: the last good hop */
    assert_string_equal(resolve("10.244.1.5", "junk, 198.51.100.7", ingress), "198.51.100.7");
    assert_string_equal(resolve("10.244.1.5", "198.51.100.7, not-an-ip", ingress), "10.244.1.5");
    /* ports and brackets (Application Gateway writes them), IPv6, v4-mapped peers */
    assert_string_equal(resolve("10.244.1.5", "198.51.100.7:51234", ingress), "198.51.100.7");
    assert_string_equal(resolve("10.244.1.5", "[2001:db8::5]:443", ingress), "2001:db8::5");
    assert_string_equal(resolve("fd00:1::3", "2001:db8::5", ingress), "2001:db8::5");
    assert_string_equal(resolve("::ffff:10.244.1.5", "198.51.100.7", ingress), "198.51.100.7");
    assert_string_equal(resolve("::ffff:198.51.100.7", NULL, ingress), "198.51.100.7");
    assert_string_equal(resolve("10.244.1.5", NULL, ingress), "10.244.1.5");
    assert_string_equal(resolve("10.244.1.5", "", ingress), "10.244.1.5");
}

static void test_lists(void **state)
{
    (void)state;
    assert_true(clientaddr_list_valid(NULL));
    assert_true(clientaddr_list_valid(""));
    assert_true(clientaddr_list_valid("10.0.0.0/8,192.168.1.7,fd00::/8,::1"));
    assert_false(clientaddr_list_valid("10.0.0.0/33"));
    assert_false(clientaddr_list_valid("10.0.0.0/"));
    assert_false(clientaddr_list_valid("ingress.local"));
    assert_false(clientaddr_list_valid("10.0.0.0/8,"));
    assert_false(clientaddr_list_valid("fd00::/129"));
    assert_true(clientaddr_in_list("10.1.2.3", "10.0.0.0/8"));
    assert_false(clientaddr_in_list("11.1.2.3", "10.0.0.0/8"));
    assert_true(clientaddr_in_list("192.168.1.7", "10.0.0.0/8,192.168.1.7"));
    assert_false(clientaddr_in_list("192.168.1.8", "10.0.0.0/8,192.168.1.7"));
    assert_true(clientaddr_in_list("::ffff:10.1.2.3", "10.0.0.0/8"));
    assert_true(clientaddr_in_list("fd12::1", "fd00::/8"));
    assert_false(clientaddr_in_list("fe12::1", "fd00::/8"));
    assert_true(clientaddr_in_list("1.2.3.4", "0.0.0.0/0"));
    assert_false(clientaddr_in_list("::1", "0.0.0.0/0"));
    assert_false(clientaddr_in_list("10.1.2.3", NULL));
}

static void test_bucket_keys(void **state)
{
    (void)state;
    char k[CLIENTADDR_MAX];
    clientaddr_bucket_key("198.51.100.7", k, sizeof k);
    assert_string_equal(k, "198.51.100.7");
    clientaddr_bucket_key("2001:db8:1:2:aaaa::1", k, sizeof k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    char k2[CLIENTADDR_MAX];
    clientaddr_bucket_key("2001:db8:1:2:ffff:ffff:ffff:ffff", k2, sizeof k2);
    assert_string_equal(k, k2); /* one /64, one bucket */
    clientaddr_bucket_key("::ffff:198.51.100.7", k, sizeof k);
    assert_string_equal(k, "198.51.100.7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwarded_for_only_from_trusted_proxies),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_bucket_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
