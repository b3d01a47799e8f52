/* util: bounded buffers, strict number parsing, and the environment children get. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

static void test_env_listed(void **state)
{
    (void)state;
    static const char *const names[] = {"PATH", "ARM_*", NULL};
    assert_true(env_listed("PATH=/bin", names, NULL));
    assert_false(env_listed("PATHX=/bin", names, NULL));
    assert_false(env_listed("PAT=/bin", names, NULL));
    assert_true(env_listed("ARM_CLIENT_ID=x", names, NULL));
    assert_false(env_listed("ARMY=x", names, NULL));
    assert_true(env_listed("HTTPS_PROXY=x", names, "NO_PROXY,HTTPS_PROXY"));
    assert_true(env_listed("SSL_CERT_FILE=x", NULL, "SSL_*"));
    assert_false(env_listed("SSL=x", NULL, "SSL_*"));
    assert_false(env_listed("NOEQUALS", names, "NOEQUALS"));
    assert_false(env_listed("=x", names, ""));
}

/* The trainer and the forecast generator parse user data: they get PATH, HOME, LANG, TZ and
 * no secret of the server (review finding 15). */
static void test_children_get_an_allow_listed_environment(void **state)
{
    (void)state;
    setenv("ROASTERY_AZURE_CLIENT_SECRET", "client-s3cret", 1);
    setenv("ROASTERY_DATABASE_URL", "host=db password=pg-s3cret", 1);
    setenv("ROASTERY_AZUREML_DATASTORE_CONNECTION", "AccountKey=s3cret", 1);
    setenv("ARM_CLIENT_SECRET", "arm-s3cret", 1);
    setenv("TZ", "UTC", 1);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char *const argv[] = {"/usr/bin/env", NULL};
    pid_t pid;
    assert_int_equal(spawn_in_group(argv, p[1], 2, NULL, &pid), RST_OK);
    close(p[1]);
    char out[65536];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof out - 1 && (n = read(p[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_null(strstr(out, "s3cret"));
    assert_null(strstr(out, "ROASTERY_"));
    assert_non_null(strstr(out, "TZ=UTC"));
    if (getenv("PATH"))
        assert_non_null(strstr(out, "PATH="));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_limit),
        cmocka_unit_test(test_parse_long_is_strict),
        cmocka_unit_test(test_random_ids_differ),
        cmocka_unit_test(test_env_listed),
        cmocka_unit_test(test_children_get_an_allow_listed_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
