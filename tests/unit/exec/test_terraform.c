/* terraform: the CLI runner, driven with small /bin/sh scripts standing in for
 * terraform, written into a mkdtemp directory. The test process mimics the
 * server (SIGTERM and SIGINT blocked, SIGPIPE ignored) and makes itself a child
 * subreaper so that it can watch what happens to the grandchildren. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec/terraform.h"
#include "lib/util.h"

#define ELLIPSIS "\xe2\x80\xa6"

static char tmpdir[PATH_MAX];
static char workdir[PATH_MAX];

/* ------------------------------------------------------------------ helpers */

/* new: tmpdir/name, caller frees with free(). */
static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

/* Writes tmpdir/name with exactly body and the given mode. new: its path (free()). */
static char *write_file(const char *name, const char *body, mode_t mode)
{
    char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(body, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

/* An executable /bin/sh script. new: its path (free()). */
static char *write_script(const char *name, const char *body)
{
    char *text = xasprintf("#!/bin/sh\n%s\n", body);
    char *path = write_file(name, text, 0755);
    free(text);
    return path;
}

static terraform_options options_for(const char *bin)
{
    return (terraform_options){.bin = bin, .workdir = workdir, .timeout_seconds = 10};
}

/* Fails unless this process has no child left, zombie or not. */
static void assert_no_children(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[32] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    long v = 0;
    line[strcspn(line, "\n")] = '\0';
    assert_int_equal(parse_long(line, 1, INT_MAX, &v), RST_OK);
    return (pid_t)v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A grandchild the runner should have killed: we are its subreaper, so it is our child once
 * its parent died. Waits up to 3 s for it to be gone and returns the signal that killed it, or
 * 0 when its own parent reaped it first (a shell in wait does when the grandchild dies before
 * the shell gets its own signal). Kills it and fails when it is still alive. */
static int grandchild_killed_by(pid_t pid)
{
    for (int i = 0; i < 300; i++) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            assert_true(WIFSIGNALED(st));
            errno = 0;
            assert_int_equal(kill(pid, 0), -1); /* gone, not merely a zombie */
            assert_int_equal(errno, ESRCH);
            return WTERMSIG(st);
        }
        if (r < 0) {
            assert_int_equal(errno, ECHILD);
            if (kill(pid, 0) != 0 && errno == ESRCH)
                return 0;
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("grandchild %d survived", (int)pid);
    return -1;
}

/* Reaps every other grandchild that was reparented to us (e.g. a script's foreground
 * command), waiting up to 3 s; each must have been killed by a signal. Then there is none. */
static void reap_killed_grandchildren(void)
{
    for (int i = 0; i < 300; i++) {
        int st = 0;
        pid_t r = waitpid(-1, &st, WNOHANG);
        if (r < 0) {
            assert_int_equal(errno, ECHILD);
            return;
        }
        if (r > 0) {
            assert_true(WIFSIGNALED(st));
            continue;
        }
        sleep_ms(10);
    }
    fail_msg("a grandchild survived");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    /* Like the server: the runner must undo both in the child. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return -1;
    /* What the child must not see as-is. */
    setenv("TF_IN_AUTOMATION", "0", 1);
    setenv("TF_INPUT", "1", 1);
    setenv("TF_TEST_INHERITED", "yes", 1);
    setenv("ROASTERY_TF_REPLACE", "old", 1);
    /* Secrets of the server that terraform has no use for (review finding 15). */
    setenv("ROASTERY_AZURE_CLIENT_SECRET", "client-s3cret", 1);
    setenv("ROASTERY_DATABASE_URL", "host=db password=pg-s3cret", 1);
    setenv("ROASTERY_AZURE_STORAGE_CONNECTION_STRING", "AccountKey=blob-s3cret", 1);
    setenv("ROASTERY_EVENTGRID_SECRET", "eg-s3cret", 1);
    setenv("ARM_TEST_INHERITED", "arm", 1);
    setenv("OPERATOR_PROXY_TEST", "proxy", 1);

    char tmpl[] = "/tmp/test_terraform.XXXXXX";
    if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir))
        return -1;
    int n = snprintf(workdir, sizeof workdir, "%s/work", tmpdir);
    if (n < 0 || (size_t)n >= sizeof workdir || mkdir(workdir, 0755) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ------------------------------------------------------------------ running */

/* Exit codes, stdout capture, and both streams in the log. */
static void test_exit_status_and_streams(void **state)
{
    (void)state;
    char *bin = write_script("exit3.sh", "echo to-out; echo to-err >&2; exit 3");
    terraform_options o = options_for(bin);
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.exit_status, 3);
    assert_int_equal(r.timed_out, 0);
    assert_int_equal(r.out_len, 7);
    assert_string_equal(r.out, "to-out\n");
    assert_int_equal(r.out_truncated, 0);
    assert_int_equal(r.log_len, 14);
    assert_non_null(strstr(r.log, "to-out\n"));
    assert_non_null(strstr(r.log, "to-err\n"));
    assert_true(r.seconds >= 0 && r.seconds < 5);
    terraform_result_free(&r);
    free(bin);

    bin = write_script("exit0.sh", "exit 0");
    o = options_for(bin);
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.exit_status, 0);
    assert_non_null(r.out);
    assert_non_null(r.log);
    assert_int_equal(r.out_len, 0);
    assert_int_equal(r.log_len, 0);
    assert_string_equal(r.out, "");
    terraform_result_free(&r);
    free(bin);
    assert_no_children();
}

/* 128+signal; and the child gets an empty signal mask and default dispositions although this
 * process blocks SIGTERM and ignores SIGPIPE (with either inherited, the script would go on
 * and print "survived"). */
static void test_killed_by_signal_with_default_dispositions(void **state)
{
    (void)state;
    char *bin = write_script("selfterm.sh", "kill -TERM $$; sleep 2; echo survived");
    terraform_options o = options_for(bin);
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.exit_status, 128 + SIGTERM);
    assert_int_equal(r.timed_out, 0);
    assert_null(strstr(r.out, "survived"));
    terraform_result_free(&r);
    free(bin);

    bin = write_script("selfpipe.sh", "kill -PIPE $$; echo survived");
    o = options_for(bin);
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.exit_status, 128 + SIGPIPE);
    assert_int_equal(r.out_len, 0);
    terraform_result_free(&r);
    free(bin);
    assert_no_children();
}

/* args are passed as they are, after argv[0]. */
static void test_arguments(void **state)
{
    (void)state;
    char *bin =
        write_script("args.sh", "echo \"$#\"; for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done");
    terraform_options o = options_for(bin);
    const char *args[] = {"plan", "-no-color", "a b", "", "$HOME;*", NULL};
    terraform_result r;
    assert_int_equal(terraform_run(&o, args, &r), RST_OK);
    assert_int_equal(r.exit_status, 0);
    assert_string_equal(r.out, "5\n[plan]\n[-no-color]\n[a b]\n[]\n[$HOME;*]\n");
    terraform_result_free(&r);
    free(bin);
}

/* Working directory, environment, stdin and inherited descriptors. */
static void test_cwd_env_stdin_fds(void **state)
{
    (void)state;
    /* A descriptor this process leaks (no O_CLOEXEC), as another thread might. */
    char *canary = write_file("leak-canary", "", 0644);
    int leak = open(canary, O_RDONLY);
    assert_true(leak >= 0);

    char *bin = write_script("env.sh", "pwd -P\n"
                                       "echo \"auto=$TF_IN_AUTOMATION\"\n"
                                       "echo \"input=$TF_INPUT\"\n"
                                       "echo \"extra=$ROASTERY_TF_EXTRA\"\n"
                                       "echo \"inherited=$TF_TEST_INHERITED $ARM_TEST_INHERITED\"\n"
                                       "echo \"replace=$ROASTERY_TF_REPLACE\"\n"
                                       "echo \"dup=$ROASTERY_TF_DUP\"\n"
                                       "env | grep -c -e '^ROASTERY_TF_REPLACE=' -e '^TF_INPUT='\n"
                                       "echo \"stdin=$(readlink /proc/$$/fd/0)\"\n"
                                       "ls -l /proc/$$/fd/ | grep -c leak-canary\n"
                                       "exit 0");
    const char *extra[] = {"ROASTERY_TF_EXTRA=hello world",
                           "ROASTERY_TF_REPLACE=new",
                           "TF_INPUT=1",
                           "TF_IN_AUTOMATION=",
                           "ROASTERY_TF_DUP=first",
                           "ROASTERY_TF_DUP=second",
                           NULL};
    terraform_options o = options_for(bin);
    o.env_extra = extra;
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    char *want =
        xasprintf("%s\nauto=1\ninput=0\nextra=hello world\ninherited=yes arm\nreplace=new\n"
                  "dup=second\n2\nstdin=/dev/null\n0\n",
                  workdir);
    assert_string_equal(r.out, want);
    assert_int_equal(r.exit_status, 0);
    free(want);
    terraform_result_free(&r);

    /* Our own environment is untouched. */
    assert_string_equal(getenv("ROASTERY_TF_REPLACE"), "old");
    assert_string_equal(getenv("TF_IN_AUTOMATION"), "0");
    assert_null(getenv("ROASTERY_TF_EXTRA"));
    close(leak);
    free(canary);
    free(bin);
}

/* Terraform inherits an allow-list, never the server's secrets (review finding 15). */
static void test_environment_is_allow_listed(void **state)
{
    (void)state;
    char *bin = write_script("envlist.sh", "env | cut -d= -f1 | sort | tr '\\n' ' '");
    terraform_options o = options_for(bin);
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_null(strstr(r.out, "ROASTERY_"));
    assert_null(strstr(r.out, "s3cret"));
    assert_null(strstr(r.out, "OPERATOR_PROXY_TEST"));
    assert_non_null(strstr(r.out, "PATH "));
    assert_non_null(strstr(r.out, "ARM_TEST_INHERITED "));
    assert_non_null(strstr(r.out, "TF_IN_AUTOMATION "));
    terraform_result_free(&r);
    /* what the operator adds with ROASTERY_TERRAFORM_ENV, and nothing else */
    o.env_allow = "OPERATOR_PROXY_*,NOT_SET";
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_non_null(strstr(r.out, "OPERATOR_PROXY_TEST "));
    assert_null(strstr(r.out, "ROASTERY_"));
    terraform_result_free(&r);
    /* another program than terraform: its own list replaces terraform's */
    static const char *const only_path[] = {"PATH", NULL};
    o.env_allow = NULL;
    o.env_names = only_path;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_null(strstr(r.out, "ARM_TEST_INHERITED"));
    assert_non_null(strstr(r.out, "PATH "));
    terraform_result_free(&r);
    free(bin);
}

/* NUL bytes are kept, counted, and do not end the strings early. */
static void test_nul_bytes(void **state)
{
    (void)state;
    char *bin = write_script("nul.sh", "printf 'a\\000b\\n'; printf 'c\\000d\\n' >&2");
    terraform_options o = options_for(bin);
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.out_len, 4);
    assert_memory_equal(r.out, "a\0b\n", 5);
    assert_int_equal(r.log_len, 8);
    assert_int_equal(r.log[8], '\0');
    assert_non_null(memchr(r.log, 'c', r.log_len));
    assert_non_null(memchr(r.log, 'd', r.log_len));
    terraform_result_free(&r);
    free(bin);
}

/* 1 MiB on stdout: cut at max_stdout with the flag set, whole with the defaults; the log holds
 * the tail and starts at a line. */
static void test_stdout_truncation(void **state)
{
    (void)state;
    const size_t total = 1048576;
    char *bin = write_script("mib.sh", "yes 0123456789abcdef | head -c 1048576");
    char *expect = xmalloc(total);
    for (size_t i = 0; i < total; i++)
        expect[i] = "0123456789abcdef\n"[i % 17];

    terraform_options o = options_for(bin);
    o.max_stdout = 1000;
    o.max_log = 4096;
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(r.out_len, 1000);
    assert_int_equal(r.out_truncated, 1);
    assert_memory_equal(r.out, expect, 1000);
    assert_int_equal(r.out[1000], '\0');
    assert_true(r.log_len <= 4096 && r.log_len > 4096 - 4 - 17);
    assert_memory_equal(r.log, ELLIPSIS "\n0123456789abcdef\n", 4 + 17);
    assert_memory_equal(r.log + r.log_len - 100, expect + total - 100, 100);
    terraform_result_free(&r);

    o = options_for(bin);
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.out_len, total);
    assert_int_equal(r.out_truncated, 0);
    assert_memory_equal(r.out, expect, total);
    assert_true(r.log_len <= TERRAFORM_MAX_LOG_DEFAULT);
    assert_true(r.log_len > TERRAFORM_MAX_LOG_DEFAULT - 4 - 17);
    assert_memory_equal(r.log + r.log_len - 1000, expect + total - 1000, 1000);
    terraform_result_free(&r);
    free(expect);
    free(bin);
}

/* The log ring keeps the last max_log bytes: whole lines after the mark when it can, never
 * more than max_log, never starting inside a UTF-8 character. */
static void test_log_ring_keeps_tail(void **state)
{
    (void)state;
    char *bin = write_script("lines.sh", "seq 1 5000 >&2");
    terraform_options o = options_for(bin);
    o.max_log = 1024;
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.out_len, 0);
    assert_true(r.log_len <= 1024 && r.log_len >= 1024 - 4 - 5);
    assert_memory_equal(r.log, ELLIPSIS "\n", 4);
    /* Consecutive whole lines up to 5000. */
    long prev = -1;
    for (const char *p = r.log + 4; p < r.log + r.log_len;) {
        const char *nl = memchr(p, '\n', (size_t)(r.log + r.log_len - p));
        assert_non_null(nl);
        char *num = xstrndup(p, (size_t)(nl - p));
        long v = 0;
        assert_int_equal(parse_long(num, 1, 5000, &v), RST_OK);
        free(num);
        if (prev >= 0)
            assert_int_equal(v, prev + 1);
        prev = v;
        p = nl + 1;
    }
    assert_int_equal(prev, 5000);
    terraform_result_free(&r);
    free(bin);

    /* One line longer than the ring: exactly max_log bytes. */
    bin = write_script("longline.sh", "yes y | head -n 5000 | tr -d '\\n' >&2");
    o = options_for(bin);
    o.max_log = 1024;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.log_len, 1024);
    assert_memory_equal(r.log, ELLIPSIS "\nyy", 6);
    terraform_result_free(&r);
    free(bin);

    /* Two-byte characters with the cut falling inside one: the log starts at the next one. */
    bin = write_script("utf8.sh", "yes \xc3\xa9 | head -n 3000 | tr -d '\\n' >&2; printf z >&2");
    o = options_for(bin);
    o.max_log = 1024;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_int_equal(r.log_len, 1023);
    assert_memory_equal(r.log, ELLIPSIS "\n\xc3\xa9\xc3\xa9", 8);
    assert_int_equal(r.log[r.log_len - 1], 'z');
    terraform_result_free(&r);
    free(bin);

    /* A tiny max_log is raised to TERRAFORM_MAX_LOG_MIN. */
    bin = write_script("seq.sh", "seq 1 100");
    o = options_for(bin);
    o.max_log = 1;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_true(r.log_len <= TERRAFORM_MAX_LOG_MIN && r.log_len > TERRAFORM_MAX_LOG_MIN / 2);
    assert_int_equal(r.out_len, 292);
    terraform_result_free(&r);
    free(bin);
}

/* The deadline: SIGTERM to the whole group, which takes the backgrounded grandchild too. */
static void test_timeout_kills_process_group(void **state)
{
    (void)state;
    char *pidfile = tmp_path("grandchild.pid");
    char *bin = write_script("hang.sh", "sleep 600 & echo $! > \"$1\"; echo started; wait");
    const char *args[] = {pidfile, NULL};
    terraform_options o = options_for(bin);
    o.timeout_seconds = 2; /* time for a loaded machine to start the script */
    terraform_result r;
    assert_int_equal(terraform_run(&o, args, &r), RST_OK);
    assert_int_equal(r.timed_out, 1);
    assert_int_equal(r.exit_status, 128 + SIGTERM);
    assert_string_equal(r.out, "started\n");
    assert_true(r.seconds >= 1.95 && r.seconds < 6);
    pid_t g = read_pid(pidfile);
    int sig = grandchild_killed_by(g);
    assert_true(sig == SIGTERM || sig == SIGKILL || sig == 0);
    assert_no_children();
    terraform_result_free(&r);
    free(bin);
    free(pidfile);
}

/* A group that ignores SIGTERM gets SIGKILL after the grace period (shortened here). */
static void test_timeout_escalates_to_sigkill(void **state)
{
    (void)state;
    char *pidfile = tmp_path("stubborn.pid");
    char *bin = write_script("stubborn.sh", "trap '' TERM; sleep 600 & echo $! > \"$1\"; sleep 60");
    const char *args[] = {pidfile, NULL};
    terraform_options o = options_for(bin);
    o.timeout_seconds = 2; /* time for a loaded machine to start the script */
    o.term_grace_ms = 300;
    terraform_result r;
    assert_int_equal(terraform_run(&o, args, &r), RST_OK);
    assert_int_equal(r.timed_out, 1);
    assert_int_equal(r.exit_status, 128 + SIGKILL);
    assert_true(r.seconds >= 2.25 && r.seconds < 6);
    int sig = grandchild_killed_by(read_pid(pidfile));
    assert_true(sig == SIGKILL || sig == 0);
    reap_killed_grandchildren(); /* the foreground "sleep 60" */
    terraform_result_free(&r);
    free(bin);
    free(pidfile);
}

/* The child exits but leaves a process behind: holding our pipes, it gets TERRAFORM_DRAIN_MS
 * and is killed; not holding them, it is killed at once. Neither counts as a timeout. */
static void test_leftovers_are_killed(void **state)
{
    (void)state;
    char *pidfile = tmp_path("leftover.pid");
    const char *args[] = {pidfile, NULL};
    char *bin = write_script("leave.sh", "sleep 600 & echo $! > \"$1\"; echo bye; exit 4");
    terraform_options o = options_for(bin);
    terraform_result r;
    assert_int_equal(terraform_run(&o, args, &r), RST_OK);
    assert_int_equal(r.exit_status, 4);
    assert_int_equal(r.timed_out, 0);
    assert_string_equal(r.out, "bye\n");
    assert_true(r.seconds >= TERRAFORM_DRAIN_MS / 1000.0 - 0.05 && r.seconds < 5);
    assert_int_equal(grandchild_killed_by(read_pid(pidfile)), SIGKILL);
    terraform_result_free(&r);
    free(bin);

    bin =
        write_script("detach.sh", "sleep 600 >/dev/null 2>&1 & echo $! > \"$1\"; echo bye; exit 0");
    o = options_for(bin);
    assert_int_equal(terraform_run(&o, args, &r), RST_OK);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(r.timed_out, 0);
    assert_true(r.seconds < TERRAFORM_DRAIN_MS / 1000.0 * 0.8);
    assert_int_equal(grandchild_killed_by(read_pid(pidfile)), SIGKILL);
    assert_no_children();
    terraform_result_free(&r);
    free(bin);
    free(pidfile);
}

/* Nothing runs: a one-line reason, exit_status -1, and still non-NULL strings. */
static void expect_not_run(const terraform_options *o, int want_rc, const char *reason_part)
{
    terraform_result r;
    assert_int_equal(terraform_run(o, NULL, &r), want_rc);
    assert_int_equal(r.exit_status, -1);
    assert_int_equal(r.timed_out, 0);
    assert_non_null(r.out);
    assert_int_equal(r.out_len, 0);
    assert_non_null(r.log);
    assert_true(r.log_len > 0);
    assert_int_equal(strlen(r.log), r.log_len);
    assert_null(strchr(r.log, '\n'));
    if (!strstr(r.log, reason_part))
        fail_msg("reason \"%s\" lacks \"%s\"", r.log, reason_part);
    terraform_result_free(&r);
}

static void test_cannot_start(void **state)
{
    (void)state;
    char *missing = tmp_path("no-such-terraform");
    terraform_options o = options_for(missing);
    expect_not_run(&o, RST_ENOTFOUND, "not found");
    o.bin = "no-such-terraform-in-path";
    expect_not_run(&o, RST_ENOTFOUND, "no-such-terraform-in-path");
    char *plain = write_file("not-executable", "#!/bin/sh\necho hi\n", 0644);
    o.bin = plain;
    expect_not_run(&o, RST_ENOTFOUND, "not found or not executable");
    o.bin = workdir; /* a directory */
    expect_not_run(&o, RST_ENOTFOUND, "not found");

    char *ok = write_script("ok.sh", "exit 0");
    o = options_for(ok);
    o.workdir = missing;
    expect_not_run(&o, RST_EINVAL, "not a directory");
    o = options_for(ok);
    o.timeout_seconds = 0;
    expect_not_run(&o, RST_EINVAL, "timeout");
    const char *bad_env[] = {"A=1", "NOEQUALS", NULL};
    o = options_for(ok);
    o.env_extra = bad_env;
    expect_not_run(&o, RST_EINVAL, "NOEQUALS");
    const char *no_name[] = {"=v", NULL};
    o.env_extra = no_name;
    expect_not_run(&o, RST_EINVAL, "without a name");
    o = options_for(NULL);
    expect_not_run(&o, RST_EINVAL, "no terraform binary");

    /* Executable, but exec fails (missing interpreter): posix_spawn reports it, and no zombie
     * is left behind. */
    char *badinterp = write_file("badinterp.sh", "#!/nonexistent/interpreter\n", 0755);
    o = options_for(badinterp);
    expect_not_run(&o, RST_EIO, "cannot start");
    assert_no_children();
    free(badinterp);
    free(ok);
    free(plain);
    free(missing);
}

/* ------------------------------------------------------------------ lookup */

static void expect_found(const char *bin, const char *want)
{
    char *got = terraform_find(bin);
    if (!got)
        fail_msg("%s not found, expected %s", bin, want);
    assert_string_equal(got, want);
    free(got);
}

static void test_find_and_path_lookup(void **state)
{
    (void)state;
    char *bin1 = tmp_path("bin1"), *bin2 = tmp_path("bin2");
    assert_int_equal(mkdir(bin1, 0755), 0);
    assert_int_equal(mkdir(bin2, 0755), 0);
    char *plain = write_file("bin1/tfx", "#!/bin/sh\necho from bin1\n", 0644);
    char *tfx = write_script("bin2/tfx", "echo from bin2");
    char *dir = tmp_path("bin1/tfdir");
    assert_int_equal(mkdir(dir, 0755), 0);
    char *tfdir = write_script("bin2/tfdir", "exit 0");

    char *old_path = xstrdup(getenv("PATH"));
    char *path = xasprintf("%s:%s:/usr/bin:/bin", bin1, bin2);
    setenv("PATH", path, 1);
    expect_found("tfx", tfx);     /* bin1's is not executable */
    expect_found("tfdir", tfdir); /* bin1's is a directory */
    expect_found("sh", "/usr/bin/sh");
    assert_null(terraform_find("no-such-tf-xyz"));
    assert_null(terraform_find(""));
    assert_null(terraform_find(NULL));

    /* A name from PATH runs. */
    terraform_options o = options_for("tfx");
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_string_equal(r.out, "from bin2\n");
    terraform_result_free(&r);

    /* Paths skip PATH. */
    expect_found(tfx, tfx);
    assert_null(terraform_find(plain));
    char *missing = tmp_path("bin2/missing");
    assert_null(terraform_find(missing));
    free(missing);

    /* Relative paths and an empty PATH entry are relative to our cwd, also for running. */
    char *cwd = getcwd(NULL, 0);
    assert_non_null(cwd);
    assert_int_equal(chdir(tmpdir), 0);
    expect_found("./bin2/tfx", tfx);
    expect_found("bin2/tfx", tfx);
    assert_null(terraform_find("bin1/tfx"));
    o = options_for("./bin2/tfx"); /* the child's cwd is workdir, not ours */
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    assert_string_equal(r.out, "from bin2\n");
    terraform_result_free(&r);
    assert_int_equal(chdir(bin2), 0);
    setenv("PATH", "/nonexistent::/usr/bin", 1);
    expect_found("tfx", tfx);
    assert_int_equal(chdir(cwd), 0);

    setenv("PATH", old_path, 1);
    free(cwd);
    free(old_path);
    free(path);
    free(tfdir);
    free(dir);
    free(tfx);
    free(plain);
    free(bin2);
    free(bin1);
}

/* ------------------------------------------------------------------ threads */

typedef struct {
    const char *bin;
    int failures;
} thread_job;

static void *run_many(void *arg)
{
    thread_job *job = arg;
    for (int i = 0; i < 5; i++) {
        terraform_options o = options_for(job->bin);
        const char *args[] = {"x", NULL};
        terraform_result r;
        int rc = terraform_run(&o, args, &r);
        if (rc != RST_OK || r.exit_status != 3 || r.out_len != 7 || strcmp(r.out, "to-out\n") ||
            r.log_len != 14)
            job->failures++;
        terraform_result_free(&r);
    }
    return NULL;
}

/* Runs from several threads at once do not mix up children or output. */
static void test_concurrent_runs(void **state)
{
    (void)state;
    char *bin = write_script("conc.sh", "echo to-out; echo to-err >&2; exit 3");
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){.bin = bin};
        assert_int_equal(pthread_create(&th[i], NULL, run_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].failures, 0);
    }
    assert_no_children();
    free(bin);
}

static void test_result_free(void **state)
{
    (void)state;
    terraform_result_free(NULL);
    char *bin = write_script("free.sh", "echo hi");
    terraform_options o = options_for(bin);
    terraform_result r;
    assert_int_equal(terraform_run(&o, NULL, &r), RST_OK);
    terraform_result_free(&r);
    assert_null(r.out);
    assert_null(r.log);
    terraform_result_free(&r);
    free(bin);
}

/* ------------------------------------------------------------------ summary */

static void expect_summary(const char *log, size_t len, const char *want)
{
    char *s = terraform_error_summary(log, len);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

#define SUMMARY(lit, want) expect_summary(lit, sizeof lit - 1, want)

static void test_error_summary(void **state)
{
    (void)state;
    /* terraform's box, as written to stderr. */
    SUMMARY("module.compute.azurerm_machine_learning_compute_cluster.this: Creating...\n"
            "\xe2\x95\xb7\n"
            "\xe2\x94\x82 Error: creating Compute (Subscription: \"0000\"\n"
            "\xe2\x94\x82 Resource Group Name: \"rg\"\n"
            "\xe2\x94\x82 Workspace Name: \"ws\"\n"
            "\xe2\x94\x82 Compute Name: \"c1\"): performing ComputeCreateOrUpdate: unexpected "
            "status 400 (400 Bad Request)\n"
            "\xe2\x94\x82\n"
            "\xe2\x94\x82   with module.compute.azurerm_machine_learning_compute_cluster.this,\n"
            "\xe2\x94\x82   on ../modules/aml_compute_cluster/main.tf line 1, in resource "
            "\"azurerm_machine_learning_compute_cluster\" \"this\":\n"
            "\xe2\x95\xb5\n",
            "Error: creating Compute (Subscription: \"0000\" Resource Group Name: \"rg\" "
            "Workspace Name: \"ws\" Compute Name: \"c1\"): performing ComputeCreateOrUpdate: "
            "unexpected status 400 (400 Bad Request)");

    /* -no-color without a box: the Error paragraph only, the first error wins. */
    SUMMARY("\nError: Unsupported argument\n\n  on main.tf line 3, in resource \"x\" \"y\":\n"
            "   3:   foo = 1\n\nAn argument named \"foo\" is not expected here.\n\n"
            "Error: Missing required argument\n\n",
            "Error: Unsupported argument");
    SUMMARY("Error: x\r\n  more  \r\n\r\nnext\r\n", "Error: x more");

    /* No "Error: ": the last meaningful line; the ring's mark and decoration do not count. */
    SUMMARY(ELLIPSIS "\nInitializing the backend...\n\nsomething failed badly\n\n"
                     "\xe2\x95\xb5\n---\n",
            "something failed badly");
    SUMMARY("a\nb", "b");
    SUMMARY("only line", "only line");

    /* Nothing useful. */
    SUMMARY("", "no output");
    expect_summary(NULL, 0, "no output");
    SUMMARY("\xe2\x95\xb7\n\xe2\x94\x82\n\xe2\x95\xb5\n\n   \n", "no output");
    SUMMARY(ELLIPSIS "\n", "no output");

    /* NULs and ANSI escapes. */
    SUMMARY("\x1b[31mError: \x1b[0mbad\0thing\x1b[1m\n", "Error: bad thing");

    /* Capped at TERRAFORM_SUMMARY_MAX bytes, on a character boundary, then "…". */
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "\xe2\x94\x82 Error: ");
    for (int i = 0; i < 400; i++)
        buf_puts(&b, "\xc3\xa9");
    buf_puts(&b, "\n\xe2\x94\x82 ");
    for (int i = 0; i < 400; i++)
        buf_puts(&b, "\xc3\xa9");
    buf_puts(&b, "\n");
    char *s = terraform_error_summary(b.data, b.len);
    size_t n = strlen(s);
    assert_true(n <= TERRAFORM_SUMMARY_MAX + 3);
    assert_int_equal(n, 499 + 3); /* "Error: " is 7 bytes, so 500 falls inside an "é" */
    assert_memory_equal(s + n - 4, "\xa9" ELLIPSIS, 4);
    assert_int_equal(strncmp(s, "Error: \xc3\xa9", 9), 0);
    free(s);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status_and_streams),
        cmocka_unit_test(test_killed_by_signal_with_default_dispositions),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_cwd_env_stdin_fds),
        cmocka_unit_test(test_environment_is_allow_listed),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_stdout_truncation),
        cmocka_unit_test(test_log_ring_keeps_tail),
        cmocka_unit_test(test_timeout_kills_process_group),
        cmocka_unit_test(test_timeout_escalates_to_sigkill),
        cmocka_unit_test(test_leftovers_are_killed),
        cmocka_unit_test(test_cannot_start),
        cmocka_unit_test(test_find_and_path_lookup),
        cmocka_unit_test(test_concurrent_runs),
        cmocka_unit_test(test_result_free),
        cmocka_unit_test(test_error_summary),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
