/* The embedded PostgreSQL against the real server binaries: first start
 * (initdb), restart on an existing cluster, a second owner refused, recovery
 * after the postmaster or roastery is SIGKILLed or a stale pid is reused, path limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/pgembed.h"
#include "lib/util.h"

/* The tests run in order and share one data directory, like restarts of one server. */
static char tmpdir[] = "/tmp/roastery-pgembed.XXXXXX";
static char *data_dir;

static char *path_in(const char *rel)
{
    return xasprintf("%s/%s", data_dir, rel);
}

static int file_exists(const char *rel)
{
    char *p = path_in(rel);
    int ok = access(p, F_OK) == 0;
    free(p);
    return ok;
}

static pgembed *start_ok(char **conninfo)
{
    char err[512] = "";
    pgembed *pg = NULL;
    int rc = pgembed_start(data_dir, &pg, conninfo, err, sizeof err);
    if (rc)
        fprintf(stderr, "pgembed_start: %s\n", err);
    assert_int_equal(rc, RST_OK);
    assert_non_null(pg);
    assert_non_null(*conninfo);
    assert_true(pgembed_pid(pg) > 0);
    return pg;
}

/* Runs sql and returns the first value (new: caller frees). */
static char *query_one(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fprintf(stderr, "connect: %s", PQerrorMessage(c));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    char *v = xstrdup(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0)
                                                                               : "");
    assert_true(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
    return v;
}

static void assert_query(const char *conninfo, const char *sql, const char *want)
{
    char *v = query_one(conninfo, sql);
    assert_string_equal(v, want);
    free(v);
}

static void first_start_creates_cluster(void **state)
{
    (void)state;
    assert_false(file_exists("pg/data/PG_VERSION"));
    char *conninfo = NULL;
    pgembed *pg = start_ok(&conninfo);
    assert_non_null(strstr(conninfo, "dbname=roastery"));
    assert_non_null(strstr(conninfo, data_dir)); /* absolute socket directory */
    assert_true(file_exists("pg/data/PG_VERSION"));
    assert_true(file_exists("pg/postgres.log"));
    assert_query(conninfo, "SELECT 1", "1");
    assert_query(conninfo, "SELECT current_database() || ' ' || current_user", "roastery roastery");
    assert_query(conninfo, "SHOW listen_addresses", "");
    assert_query(conninfo, "CREATE TABLE marker(v text); INSERT INTO marker VALUES ('kept')", "");

    struct stat st;
    char *run = path_in("pg/run");
    assert_int_equal(stat(run, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    if (geteuid() == 0) { /* PostgreSQL will not run as root: the cluster is postgres's */
        struct passwd *pw = getpwnam("postgres");
        assert_non_null(pw);
        assert_int_equal(st.st_uid, pw->pw_uid);
    }
    free(run);

    pgembed_stop(pg);
    assert_false(file_exists("pg/data/postmaster.pid")); /* a clean shutdown */
    free(conninfo);
}

static void restart_reuses_cluster(void **state)
{
    (void)state;
    char *conninfo = NULL;
    pgembed *pg = start_ok(&conninfo);
    assert_query(conninfo, "SELECT v FROM marker", "kept"); /* no second initdb */
    pgembed_stop(pg);
    free(conninfo);
}

static void second_owner_is_refused(void **state)
{
    (void)state;
    char *conninfo = NULL;
    pgembed *pg = start_ok(&conninfo);

    char err[512] = "";
    pgembed *other = NULL;
    char *other_ci = NULL;
    assert_int_equal(pgembed_start(data_dir, &other, &other_ci, err, sizeof err), RST_ECONFLICT);
    assert_null(other);
    assert_null(other_ci);
    assert_non_null(strstr(err, "another roastery owns"));
    assert_query(conninfo, "SELECT 1", "1"); /* the owner is untouched */

    pgembed_stop(pg);
    free(conninfo);
}

static void recovers_after_postmaster_sigkill(void **state)
{
    (void)state;
    char *conninfo = NULL;
    pgembed *pg = start_ok(&conninfo);
    /* A backend outlives its postmaster for a moment, still attached to the old shared
     * memory, and a new postmaster refuses to start until it is gone. Make that moment
     * last: freeze a backend across the crash and thaw it a second later. */
    PGconn *held = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(held), CONNECTION_OK);
    pid_t backend = PQbackendPID(held);
    assert_int_equal(kill(backend, SIGSTOP), 0);

    assert_int_equal(kill(pgembed_pid(pg), SIGKILL), 0);
    pgembed_stop(pg); /* reaps the dead postmaster */
    free(conninfo);
    assert_true(file_exists("pg/data/postmaster.pid")); /* left behind by the crash */
    pid_t thaw = fork();
    assert_true(thaw >= 0);
    if (thaw == 0) {
        usleep(1000 * 1000);
        kill(backend, SIGCONT);
        _exit(0);
    }

    int64_t t0 = now_ms_monotonic();
    conninfo = NULL;
    pg = start_ok(&conninfo);
    assert_true(now_ms_monotonic() - t0 >= 900); /* it waited for the orphan */
    waitpid(thaw, NULL, 0);
    assert_query(conninfo, "SELECT v FROM marker", "kept");
    assert_query(conninfo, "SELECT 1", "1");
    PQfinish(held);
    pgembed_stop(pg);
    free(conninfo);
}

/* roastery itself SIGKILLed: its postmaster must not stay behind as an orphan that owns the
 * directory forever; the next roastery starts once the orphan has shut down. */
static void restart_after_roastery_killed(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t server = fork();
    assert_true(server >= 0);
    if (server == 0) {
        alarm(60); /* never outlive a failed test */
        char err[512] = "", *conninfo = NULL;
        pgembed *pg = NULL;
        int pid = pgembed_start(data_dir, &pg, &conninfo, err, sizeof err) ? -1 : pgembed_pid(pg);
        if (write(fds[1], &pid, sizeof pid) != (ssize_t)sizeof pid)
            _exit(1);
        pause();
        _exit(0);
    }
    close(fds[1]);
    int postmaster = -1;
    assert_int_equal(read(fds[0], &postmaster, sizeof postmaster), (ssize_t)sizeof postmaster);
    close(fds[0]);
    assert_true(postmaster > 0);
    assert_int_equal(kill(server, SIGKILL), 0);
    waitpid(server, NULL, 0);

    char *conninfo = NULL;
    pgembed *pg = start_ok(&conninfo);
    assert_true(pgembed_pid(pg) != postmaster);
    assert_query(conninfo, "SELECT v FROM marker", "kept");
    pgembed_stop(pg);
    free(conninfo);
}

/* After a reboot the pid in a stale postmaster.pid may belong to an unrelated process. */
static void recovers_when_pid_is_reused(void **state)
{
    (void)state;
    pid_t other = fork();
    assert_true(other >= 0);
    if (other == 0) {
        alarm(60); /* never outlive a failed test */
        pause();
        _exit(0);
    }
    char *pidfile = path_in("pg/data/postmaster.pid");
    char *content = xasprintf("%d\n%s/pg/data\n", (int)other, data_dir);
    int fd = open(pidfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);

    char *conninfo = NULL;
    pgembed *pg = start_ok(&conninfo);
    assert_query(conninfo, "SELECT v FROM marker", "kept");
    pgembed_stop(pg);

    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    free(conninfo);
    free(content);
    free(pidfile);
}

static void overlong_socket_path_is_refused(void **state)
{
    (void)state;
    char name[101];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char *dir = xasprintf("%s/%s", tmpdir, name);
    char err[512] = "";
    pgembed *pg = NULL;
    char *conninfo = NULL;
    assert_int_equal(pgembed_start(dir, &pg, &conninfo, err, sizeof err), RST_EINVAL);
    assert_null(pg);
    assert_null(conninfo);
    assert_non_null(strstr(err, "Unix socket limit"));
    free(dir);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    /* mkdtemp makes it 0700: as root, the postgres user must be able to pass through. */
    if (chmod(tmpdir, 0755))
        return -1;
    data_dir = xasprintf("%s/var", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(data_dir);
    return 0;
}

static int have_server(void)
{
    const char *env = getenv("ROASTERY_PG_BINDIR");
    if (env && *env) {
        char *p = xasprintf("%s/initdb", env);
        int ok = access(p, X_OK) == 0;
        free(p);
        return ok;
    }
    glob_t g;
    int found = glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    return found;
}

int main(void)
{
    if (!have_server()) {
        fprintf(stderr, "no initdb binary installed: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_start_creates_cluster),
        cmocka_unit_test(restart_reuses_cluster),
        cmocka_unit_test(second_owner_is_refused),
        cmocka_unit_test(recovers_after_postmaster_sigkill),
        cmocka_unit_test(restart_after_roastery_killed),
        cmocka_unit_test(recovers_when_pid_is_reused),
        cmocka_unit_test(overlong_socket_path_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
