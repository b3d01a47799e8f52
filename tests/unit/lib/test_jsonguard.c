/* jsonguard: the nesting pre-scan every door runs before jansson, which
 * recurses once per level and overflowed CivetWeb's 100 KiB worker stacks at
 * about 1,000 levels (security review 2026-12, finding 1). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonguard.h"
#include "lib/util.h"

/* new: free(). prefix, depth x open, depth x close, suffix. */
static char *nest(const char *prefix, size_t depth, char open, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = xmalloc(pl + 2 * depth + sl + 1);
    memcpy(s, prefix, pl);
    memset(s + pl, open, depth);
    memset(s + pl + depth, open == '[' ? ']' : '}', depth);
    memcpy(s + pl + 2 * depth, suffix, sl + 1);
    return s;
}

static void test_limit_is_32_open_at_once(void **state)
{
    (void)state;
    char *ok = nest("", 32, '[', "");
    char *deep = nest("", 33, '[', "");
    size_t at = 0;
    assert_int_equal(jsonguard_depth(ok, strlen(ok), JSONGUARD_MAX_DEPTH, &at), RST_OK);
    assert_int_equal(jsonguard_depth(deep, strlen(deep), JSONGUARD_MAX_DEPTH, &at), RST_ETOOBIG);
    assert_int_equal(at, 32); /* the 33rd bracket */
    json_t *v = NULL;
    assert_int_equal(jsonguard_loadb(ok, strlen(ok), 0, &v, NULL), RST_OK);
    assert_non_null(v);
    json_decref(v);
    free(ok);
    free(deep);
    /* objects and arrays count alike; closing brackets give levels back */
    const char *mixed = "{\"a\":[{\"b\":[1]}],\"c\":[[[]]],\"d\":{}}";
    assert_int_equal(jsonguard_depth(mixed, strlen(mixed), 4, NULL), RST_OK);
    assert_int_equal(jsonguard_depth(mixed, strlen(mixed), 3, &at), RST_ETOOBIG);
    assert_int_equal(at, 11); /* the [ of "b" */
    char *obj = nest("", 33, '{', "");
    assert_int_equal(jsonguard_depth(obj, strlen(obj), JSONGUARD_MAX_DEPTH, NULL), RST_ETOOBIG);
    free(obj);
    /* many siblings at depth 2 are not depth */
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "[");
    for (int i = 0; i < 10000; i++)
        buf_puts(&b, i ? ",[1]" : "[1]");
    buf_puts(&b, "]");
    assert_int_equal(jsonguard_depth(b.data, b.len, 2, NULL), RST_OK);
    buf_free(&b);
}

static void test_brackets_in_strings_do_not_count(void **state)
{
    (void)state;
    char *in_string = nest("{\"a\":\"", 5000, '[', "\"}");
    assert_int_equal(jsonguard_depth(in_string, strlen(in_string), 1, NULL), RST_OK);
    json_t *v = NULL;
    assert_int_equal(jsonguard_loadb(in_string, strlen(in_string), 0, &v, NULL), RST_OK);
    assert_int_equal(strlen(json_string_value(json_object_get(v, "a"))), 10000);
    json_decref(v);
    free(in_string);
    /* an escaped quote does not end the string ... */
    char *escaped = nest("{\"a\":\"\\\"", 100, '[', "\"}");
    assert_int_equal(jsonguard_depth(escaped, strlen(escaped), 1, NULL), RST_OK);
    free(escaped);
    /* ... but an escaped backslash does not hide the quote after it */
    char *after = nest("[\"\\\\\",", 40, '[', "]");
    size_t at = 0;
    assert_int_equal(jsonguard_depth(after, strlen(after), JSONGUARD_MAX_DEPTH, &at), RST_ETOOBIG);
    assert_int_equal(at, 6 + 31);
    free(after);
    /* a key is a string too */
    const char *key = "{\"[[[[{{{{\":1}";
    assert_int_equal(jsonguard_depth(key, strlen(key), 1, NULL), RST_OK);
}

static void test_refusal_reads_like_jansson(void **state)
{
    (void)state;
    char *deep = nest("{\n  \"a\":\n    ", 5000, '[', "}");
    json_t *v = (json_t *)1;
    json_error_t err;
    assert_int_equal(jsonguard_loadb(deep, strlen(deep), JSON_REJECT_DUPLICATES, &v, &err),
                     RST_ETOOBIG);
    assert_null(v);
    assert_string_equal(err.text, "nested more than 32 levels deep");
    assert_int_equal(json_error_code(&err), json_error_stack_overflow);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.column, 5 + 31); /* the { is the first level */
    assert_int_equal(err.position, 13 + 31);
    free(deep);
    /* within the limit, what is not JSON is the parser's to say */
    const char *bad = "{\"a\": [1, 2}";
    assert_int_equal(jsonguard_loadb(bad, strlen(bad), 0, &v, &err), RST_EINVAL);
    assert_null(v);
    assert_int_not_equal(json_error_code(&err), json_error_stack_overflow);
    /* unbalanced closers neither underflow the count nor hide later opens */
    char *closers = nest("]]]]]]]]", 33, '[', "");
    assert_int_equal(jsonguard_depth(closers, strlen(closers), JSONGUARD_MAX_DEPTH, NULL),
                     RST_ETOOBIG);
    free(closers);
    /* an unterminated string at the end, a lone backslash: no overrun */
    assert_int_equal(jsonguard_depth("[\"abc\\", 6, 1, NULL), RST_OK);
    assert_int_equal(jsonguard_depth("", 0, 1, NULL), RST_OK);
}

typedef struct {
    const char *data;
    size_t len;
    int rc;
} thread_job;

static void *scan_on_small_stack(void *p)
{
    thread_job *j = p;
    json_t *v = NULL;
    j->rc = jsonguard_loadb(j->data, j->len, JSON_REJECT_DUPLICATES, &v, NULL);
    json_decref(v);
    return NULL;
}

/* The review's crash, replayed where it happened: a thread with CivetWeb's
 * 100 KiB stack handed a million levels. */
static void test_a_million_levels_on_a_worker_sized_stack(void **state)
{
    (void)state;
    char *deep = nest("{\"alg\":\"RS256\",\"x\":", 1000000, '[', "}");
    char *ok = nest("{\"x\":", 31, '[', "}");
    thread_job jobs[] = {{deep, strlen(deep), 1}, {ok, strlen(ok), 1}};
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
        pthread_attr_t attr;
        pthread_t t;
        assert_int_equal(pthread_attr_init(&attr), 0);
        assert_int_equal(pthread_attr_setstacksize(&attr, 100 * 1024), 0);
        assert_int_equal(pthread_create(&t, &attr, scan_on_small_stack, &jobs[i]), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        pthread_attr_destroy(&attr);
    }
    assert_int_equal(jobs[0].rc, RST_ETOOBIG);
    assert_int_equal(jobs[1].rc, RST_OK);
    free(deep);
    free(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_is_32_open_at_once),
        cmocka_unit_test(test_brackets_in_strings_do_not_count),
        cmocka_unit_test(test_refusal_reads_like_jansson),
        cmocka_unit_test(test_a_million_levels_on_a_worker_sized_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
