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
    const char *vars[] = {
        "ROASTERY_LISTEN",         "ROASTERY_HTTP_THREADS", "ROASTERY_WORKERS",
        "ROASTERY_LOG_LEVEL",      "ROASTERY_DATABASE_URL", "ROASTERY_MIGRATE_ON_START",
        "ROASTERY_MAX_BODY_BYTES", "ROASTERY_EXECUTOR",     "ROASTERY_AUTH_DEV_ALLOW_REMOTE"};
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

/* The bounds of a dataset version after decompression (security review 2026-12, finding 8). */
static void test_upload_limits(void **state)
{
    (void)state;
    clear_env();
    config c;
    char err[256];
    assert_int_equal(config_load(&c, err, sizeof err), RST_OK);
    assert_true(c.max_decompressed_bytes == 20LL << 30);
    assert_int_equal(c.max_compression_ratio, 100);
    assert_int_equal(c.max_rows_per_version, 50000000);
    config_free(&c);
    expect_error("ROASTERY_MAX_COMPRESSION_RATIO", "1", "from 2 to 100000");
    unsetenv("ROASTERY_MAX_COMPRESSION_RATIO");
    expect_error("ROASTERY_MAX_ROWS_PER_VERSION", "0", "from 1 to 2000000000");
    unsetenv("ROASTERY_MAX_ROWS_PER_VERSION");
    expect_error("ROASTERY_MAX_DECOMPRESSED_BYTES", "12", "at least 1024");
    unsetenv("ROASTERY_MAX_DECOMPRESSED_BYTES");
}

/* The dev issuer mints any identity: every entry of a listen list must be loopback, checked
 * entry by entry (review finding 7: "127.0.0.1:18181,0.0.0.0:18182" passed). */
static void test_dev_issuer_listens_on_loopback_only(void **state)
{
    (void)state;
    static const char *const loopback[] = {"127.0.0.1:8080",
                                           "127.8.9.10:1",
                                           "localhost:8080",
                                           "LOCALHOST:8080",
                                           "[::1]:8080",
                                           "127.0.0.1:8080,[::1]:8080",
                                           "127.0.0.1:1,localhost:2,127.0.0.2:3",
                                           NULL};
    static const char *const not_loopback[] = {"127.0.0.1:18181,0.0.0.0:18182",
                                               "0.0.0.0:8080",
                                               "8080",
                                               "127.0.0.1:8080,8081",
                                               "127.0.0.1:8080,[::]:8081",
                                               "[::ffff:127.0.0.1]:8080",
                                               "127.0.0.1.nip.io:8080",
                                               "localhost.attacker.example:8080",
                                               "127.evil.example:80",
                                               "10.0.0.1:8080",
                                               "127.0.0.1:8080,10.0.0.1:8080",
                                               "[::1]:8080,192.168.1.1:8080",
                                               "127.0.0.1:8080s",
                                               "127.0.0.1:8080,",
                                               ",127.0.0.1:8080",
                                               "127.0.0.1",
                                               "",
                                               NULL};
    for (int i = 0; loopback[i]; i++)
        if (!config_listen_is_loopback(loopback[i]))
            fail_msg("%s: expected loopback", loopback[i]);
    for (int i = 0; not_loopback[i]; i++)
        if (config_listen_is_loopback(not_loopback[i]))
            fail_msg("%s: expected not loopback", not_loopback[i]);
    clear_env();
    setenv("ROASTERY_LISTEN", "127.0.0.1:18181,0.0.0.0:18182", 1);
    config c;
    char err[512] = "";
    assert_int_equal(config_load(&c, err, sizeof err), RST_OK);
    assert_int_equal(config_check_auth(&c, err, sizeof err), RST_EINVAL);
    assert_non_null(strstr(err, "loopback"));
    assert_non_null(strstr(err, "0.0.0.0:18182"));
    config_free(&c);
    setenv("ROASTERY_AUTH_DEV_ALLOW_REMOTE", "1", 1);
    assert_int_equal(config_load(&c, err, sizeof err), RST_OK);
    assert_int_equal(config_check_auth(&c, err, sizeof err), RST_OK);
    config_free(&c);
    unsetenv("ROASTERY_AUTH_DEV_ALLOW_REMOTE");
    /* every entry's format is checked too, not only the last port */
    expect_error("ROASTERY_LISTEN", "127.0.0.1:99999,127.0.0.1:8080", "host:port");
    expect_error("ROASTERY_LISTEN", "127.0.0.1:8080,:80", "host:port");
    expect_error("ROASTERY_LISTEN", "127.0.0.1:8080,,127.0.0.1:8081", "host:port");
    expect_error("ROASTERY_LISTEN", "[::1:8080", "host:port");
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_parsed),
        cmocka_unit_test(test_errors_name_variable_value_and_expectation),
        cmocka_unit_test(test_upload_limits),
        cmocka_unit_test(test_azuread_needs_tenant_and_audience),
        cmocka_unit_test(test_dev_issuer_listens_on_loopback_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
