/* util: bounded buffers and strict number parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/util.h"

static void test_buffer_limit(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "0123456789"), RST_OK);
    assert_int_equal(buf_puts(&b, "x"), RST_ETOOBIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    buf_free(&b);
    buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, "%d,", i), RST_OK);
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    buf_free(&b);
}

static void test_parse_long_is_strict(void **state)
{
    (void)state;
    long v = 0;
    assert_int_equal(parse_long("42", 0, 100, &v), RST_OK);
    assert_int_equal(v, 42);
    assert_int_equal(parse_long("42x", 0, 100, &v), RST_EINVAL);
    assert_int_equal(parse_long("", 0, 100, &v), RST_EINVAL);
    assert_int_equal(parse_long("101", 0, 100, &v), RST_EINVAL);
    assert_int_equal(parse_long("-1", 0, 100, &v), RST_EINVAL);
    assert_int_equal(parse_long("99999999999999999999", 0, 100, &v), RST_EINVAL);
    assert_int_equal(parse_long(NULL, 0, 100, &v), RST_EINVAL);
}

static void test_random_ids_differ(void **state)
{
    (void)state;
    char a[33], b[33];
    random_hex_id(a);
    random_hex_id(b);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_limit),
        cmocka_unit_test(test_parse_long_is_strict),
        cmocka_unit_test(test_random_ids_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
