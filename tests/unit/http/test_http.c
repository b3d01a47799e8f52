/* http: route matching, including 405 detection and parameter segments. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/http.h"

static void h(http_req *req)
{
    (void)req;
}

static const http_route routes[] = {
    {"GET", "/healthz", h, 0},
    {"GET", "/api/v1/operations", h, 0},
    {"GET", "/api/v1/operations/{id}", h, 0},
    {"POST", "/api/v1/operations/{id}/cancel", h, 0},
};

static int match(const char *method, const char *path, int *known)
{
    return http_route_match(routes, 4, method, path, known);
}

static void test_matching(void **state)
{
    (void)state;
    int known;
    assert_int_equal(match("GET", "/healthz", &known), 0);
    assert_int_equal(match("GET", "/api/v1/operations/abc", &known), 2);
    assert_int_equal(match("POST", "/api/v1/operations/abc/cancel", &known), 3);
    assert_int_equal(match("GET", "/api/v1/operations", &known), 1);
}

static void test_no_prefix_or_empty_segment_matches(void **state)
{
    (void)state;
    int known;
    assert_int_equal(match("GET", "/healthzX", &known), -1);
    assert_false(known);
    assert_int_equal(match("GET", "/api/v1/operations/", &known), -1);
    assert_int_equal(match("GET", "/api/v1/operations//cancel", &known), -1);
    assert_int_equal(match("GET", "/api/v1/operations/a/b", &known), -1);
    assert_false(known);
    assert_int_equal(match("GET", "/HEALTHZ", &known), -1);
}

static void test_wrong_method_is_known_path(void **state)
{
    (void)state;
    int known;
    assert_int_equal(match("DELETE", "/healthz", &known), -1);
    assert_true(known);
    assert_int_equal(match("GET", "/api/v1/operations/x/cancel", &known), -1);
    assert_true(known);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_no_prefix_or_empty_segment_matches),
        cmocka_unit_test(test_wrong_method_is_known_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
