/* ops: the retry backoff schedule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ops/ops.h"

static void test_backoff_doubles_caps_and_jitters(void **state)
{
    (void)state;
    for (unsigned r = 0; r < 2000; r += 7) {
        long d1 = ops_backoff_ms(1, 1000, 60000, r);
        long d3 = ops_backoff_ms(3, 1000, 60000, r);
        long d20 = ops_backoff_ms(20, 1000, 60000, r);
        assert_true(d1 >= 500 && d1 <= 1000);
        assert_true(d3 >= 2000 && d3 <= 4000);
        assert_true(d20 >= 30000 && d20 <= 60000);
    }
    assert_int_equal(ops_backoff_ms(1, 1000, 60000, 0), 500);
    assert_int_equal(ops_backoff_ms(1, 1000, 60000, 500), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_caps_and_jitters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
