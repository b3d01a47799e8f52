/* config: defaults, ranges and the one-line errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "lib/util.h"

static void clear_env(void)
{
    const char *vars[] = {"ROASTERY_LISTEN", "ROASTERY_HTTP_THREADS", "ROASTERY_WORKERS",
                          "ROASTERY_LOG_LEVEL", "ROASTERY_DATABASE_URL", "ROASTERY_MIGRATE_ON_START",
                          "ROASTERY_MAX_BODY_BYTES"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    unsetenv("ROASTERY_AAD_TENANT_ID");
    unsetenv("ROASTERY_AAD_AUDIENCE");
    setenv("ROASTERY_AUTH", "dev", 1);
}

static void test_defaults(void **state)
{
    (void)state;
    clear_env();
    config c;
    char err[256];
    assert_int_equal(config_load(&c, err, sizeof err), RST_OK);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.data_dir, "./var");
    assert_null(c.database_url);
    assert_int_equal(c.max_body_bytes, 1048576);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.migrate_on_start, 1);
    config_free(&c);
}

static void test_values_parsed(void **state)
{
    (void)state;
    clear_env();
    setenv("ROASTERY_LISTEN", "0.0.0.0:9000", 1);
    setenv("ROASTERY_WORKERS", "0", 1);
    setenv("ROASTERY_LOG_LEVEL", "debug", 1);
    setenv("ROASTERY_MIGRATE_ON_START", "0", 1);
    setenv("ROASTERY_DATABASE_URL", "host=/tmp dbname=x", 1);
    config c;
    char err[256];
    assert_int_equal(config_load(&c, err, sizeof err), RST_OK);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.migrate_on_start, 0);
    assert_string_equal(c.database_url, "host=/tmp dbname=x");
    config_free(&c);
    clear_env();
}

static void expect_error(const char *var, const char *val, const char *expected)
{
    clear_env();
    setenv(var, val, 1);
    config c;
    char err[256] = "";
    assert_int_equal(config_load(&c, err, sizeof err), RST_EINVAL);
    assert_non_null(strstr(err, var));
    assert_non_null(strstr(err, val));
    assert_non_null(strstr(err, expected));
    assert_null(strchr(err, '\n'));
    clear_env();
}

static void test_errors_name_variable_value_and_expectation(void **state)
{
    (void)state;
    expect_error("ROASTERY_HTTP_THREADS", "1", "from 2 to 1024");
    expect_error("ROASTERY_HTTP_THREADS", "8x", "integer");
    expect_error("ROASTERY_LISTEN", "localhost", "host:port");
    expect_error("ROASTERY_LISTEN", ":80", "host:port");
    expect_error("ROASTERY_LOG_LEVEL", "loud", "debug, info, warn, error");
    expect_error("ROASTERY_MIGRATE_ON_START", "maybe", "0 or 1");
    expect_error("ROASTERY_MAX_BODY_BYTES", "99999999999", "integer");
}

static void test_azuread_needs_tenant_and_audience(void **state)
{
    (void)state;
    clear_env();
    setenv("ROASTERY_AUTH", "azuread", 1);
    config c;
    char err[256] = "";
    assert_int_equal(config_load(&c, err, sizeof err), RST_OK);
    assert_int_equal(config_check_auth(&c, err, sizeof err), RST_EINVAL);
    assert_non_null(strstr(err, "ROASTERY_AAD_TENANT_ID"));
    config_free(&c);
    setenv("ROASTERY_AAD_TENANT_ID", "t1,t2", 1);
    assert_int_equal(config_load(&c, err, sizeof err), RST_OK);
    assert_int_equal(config_check_auth(&c, err, sizeof err), RST_EINVAL);
    assert_non_null(strstr(err, "ROASTERY_AAD_AUDIENCE"));
    config_free(&c);
    setenv("ROASTERY_AAD_AUDIENCE", "api://roastery", 1);
    assert_int_equal(config_load(&c, err, sizeof err), RST_OK);
    assert_int_equal(config_check_auth(&c, err, sizeof err), RST_OK);
    assert_string_equal(c.aad_tenant_id, "t1,t2");
    config_free(&c);
    expect_error("ROASTERY_AUTH", "basic", "one of azuread|dev");
    expect_error("ROASTERY_EXECUTOR", "cloud", "one of local|azure|dry-run");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_parsed),
        cmocka_unit_test(test_errors_name_variable_value_and_expectation),
        cmocka_unit_test(test_azuread_needs_tenant_and_audience),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
