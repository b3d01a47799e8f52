/* Embedded PostgreSQL: initdb (once) and run a private postmaster as a direct
 * child, Unix socket only, in <data_dir>/pg; recover from a crash that left
 * stale lock files behind; fast shutdown on stop. */
#include "db/pgembed.h"
#include "core/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PGEMBED_PORT "5432"
#define PGEMBED_SOCKET_NAME ".s.PGSQL." PGEMBED_PORT
#define START_TIMEOUT_MS 30000
#define RECOVERY_TIMEOUT_MS 600000 /* crash recovery replaying WAL may take long */
#define STOP_TIMEOUT_MS 30000

extern char **environ;

struct pgembed {
    pid_t pid;
    char *pgdir;
};

/* Who the server processes run as: the postgres user when we are root. */
typedef struct {
    int drop; /* switch to uid/gid in the child */
    uid_t uid;
    gid_t gid;
} run_as;

/* What a child reports through its close-on-exec pipe when it fails before exec. */
typedef struct {
    int stage;
    int err;
} spawn_failure;

enum { STAGE_IDS = 1, STAGE_CHDIR, STAGE_STDIO, STAGE_EXEC, STAGE_PARENT };

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* Reads up to n-1 bytes of a small file into buf (NUL-terminated).
 * Returns the byte count, or -1 with errno set. */
static ssize_t read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < n) {
        ssize_t r = read(fd, buf + len, n - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    return (ssize_t)len;
}

/* The cause of a failed start, for err: from the end of the server log, the last
 * FATAL or PANIC message, else the last line. */
static void log_tail(const char *path, char *out, size_t n)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t r = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    if (r <= 0)
        return;
    size_t len = (size_t)r;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    buf[len] = '\0';
    const char *fatal = NULL, *last = NULL;
    for (char *line = buf, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (*line)
            last = line;
        char *sev = strstr(line, "FATAL:");
        if (sev || (sev = strstr(line, "PANIC:")))
            fatal = sev;
    }
    const char *pick = fatal ? fatal : last;
    if (!pick)
        return;
    size_t k = strlen(pick) < n - 1 ? strlen(pick) : n - 1; /* truncation is fine here */
    memcpy(out, pick, k);
    out[k] = '\0';
}

/* new: caller frees. A conninfo value in single quotes, so spaces in paths are safe. */
static char *conn_quote(const char *s)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "'");
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            buf_puts(&b, "\\");
        buf_append(&b, s, 1);
    }
    buf_puts(&b, "'");
    return b.data;
}

static int is_executable(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    int ok = access(p, X_OK) == 0;
    free(p);
    return ok;
}

/* new: caller frees. The bin directory holding initdb and postgres: ROASTERY_PG_BINDIR,
 * else the newest /usr/lib/postgresql/<major>/bin. NULL when there is none. */
static char *find_bindir(void)
{
    const char *env = getenv("ROASTERY_PG_BINDIR");
    if (env && *env)
        return is_executable(env, "initdb") && is_executable(env, "postgres") ? xstrdup(env) : NULL;
    DIR *d = opendir("/usr/lib/postgresql");
    if (!d)
        return NULL;
    char *best = NULL;
    long best_ver = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        /* "15", or "9.6" on old installs: compare as major*100+minor. */
        char name[sizeof e->d_name];
        snprintf(name, sizeof name, "%s", e->d_name);
        char *dot = strchr(name, '.');
        long major = 0, minor = 0;
        if (dot)
            *dot = '\0';
        if (parse_long(name, 0, 10000, &major) || (dot && parse_long(dot + 1, 0, 99, &minor)))
            continue;
        char *bin = xasprintf("/usr/lib/postgresql/%s/bin", e->d_name);
        if (major * 100 + minor > best_ver && is_executable(bin, "initdb") &&
            is_executable(bin, "postgres")) {
            free(best);
            best = bin;
            best_ver = major * 100 + minor;
        } else {
            free(bin);
        }
    }
    closedir(d);
    return best;
}

static int resolve_user(run_as *who, char *err, size_t errlen)
{
    who->drop = 0;
    who->uid = geteuid();
    who->gid = getegid();
    if (who->uid != 0)
        return RST_OK;
    /* PostgreSQL refuses to run as root: hand the cluster to the postgres system user. */
    struct passwd pw, *res = NULL;
    char sbuf[4096];
    if (getpwnam_r("postgres", &pw, sbuf, sizeof sbuf, &res) || !res) {
        fail(err, errlen, "running as root needs a 'postgres' system user to own the cluster");
        return RST_EUNAVAIL;
    }
    who->drop = 1;
    who->uid = pw.pw_uid;
    who->gid = pw.pw_gid;
    return RST_OK;
}

/* mkdir -p with mode for each created component. */
static int mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) && errno != EEXIST) {
            rc = -1;
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    int saved = errno;
    free(p);
    errno = saved;
    return rc;
}

/* Makes a cluster directory: created 0700 and owned by the server user, or checked to be. */
static int own_dir(const char *path, const run_as *who, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0) {
        if (who->drop && chown(path, who->uid, who->gid)) {
            fail(err, errlen, "cannot give %s to the postgres user: %s", path, strerror(errno));
            return RST_EIO;
        }
    } else if (errno != EEXIST) {
        fail(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return RST_EIO;
    }
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
        fail(err, errlen, "%s is not a directory", path);
        return RST_EIO;
    }
    if (st.st_uid != who->uid) {
        fail(err, errlen, "%s is owned by uid %ld, but the server runs as uid %ld", path,
             (long)st.st_uid, (long)who->uid);
        return RST_EIO;
    }
    /* PostgreSQL insists on a private data directory; the socket directory is our only gate. */
    if ((st.st_mode & 0777) != 0700 && chmod(path, 0700)) {
        fail(err, errlen, "cannot make %s private: %s", path, strerror(errno));
        return RST_EIO;
    }
    return RST_OK;
}

/* new: caller frees (the array only; the strings are environ's). The environment minus PG*
 * variables, so PGPORT or PGDATA in our environment cannot redirect the server. */
static char **server_env(void)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **out = xcalloc(n + 1, sizeof *out);
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "PG", 2) != 0)
            out[k++] = *e;
    out[k] = NULL;
    return out;
}

/* Child side of spawn: only async-signal-safe calls until exec. */
static void __attribute__((noreturn))
child_exec(char *const argv[], char *const envp[], const char *cwd, const run_as *who, int log_fd,
           int null_fd, int report_fd, pid_t parent)
{
    spawn_failure f = {0, 0};
    /* Undo what the server process set up: signals blocked or ignored survive exec. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    const int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Own process group: a Ctrl-C at the terminal reaches roastery, which then drains and
     * stops the cluster itself, instead of killing the database under in-flight requests. */
    setpgid(0, 0);
    if (who->drop) {
        gid_t g = who->gid;
        if (setgroups(1, &g) || setgid(who->gid) || setuid(who->uid)) {
            f = (spawn_failure){STAGE_IDS, errno};
            goto report;
        }
    }
    /* After the uid change (which clears it): shut down if the roastery thread dies. */
    prctl(PR_SET_PDEATHSIG, SIGINT);
    if (getppid() != parent) {
        f = (spawn_failure){STAGE_PARENT, ESRCH};
        goto report;
    }
    if (chdir(cwd)) {
        f = (spawn_failure){STAGE_CHDIR, errno};
        goto report;
    }
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) {
        f = (spawn_failure){STAGE_STDIO, errno};
        goto report;
    }
    /* Sockets and pipes roastery opened without O_CLOEXEC stay out of the server. Best
     * effort: older kernels lack the flag. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    execve(argv[0], argv, envp);
    f = (spawn_failure){STAGE_EXEC, errno};
report:
    while (write(report_fd, &f, sizeof f) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* Starts argv (argv[0] absolute) as who, in cwd, stdout/stderr appended to log_path.
 * Sets *pid on success; otherwise RST_EIO with the reason in err. */
static int spawn(char *const argv[], const char *cwd, const run_as *who, const char *log_path,
                 pid_t *pid, char *err, size_t errlen)
{
    int rc = RST_EIO;
    int log_fd = -1, null_fd = -1, pipefd[2] = {-1, -1};
    char **envp = NULL;

    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        fail(err, errlen, "cannot open %s: %s", log_path, strerror(errno));
        goto out;
    }
    if (who->drop && fchown(log_fd, who->uid, who->gid)) {
        fail(err, errlen, "cannot give %s to the postgres user: %s", log_path, strerror(errno));
        goto out;
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || pipe2(pipefd, O_CLOEXEC)) {
        fail(err, errlen, "cannot set up a child process: %s", strerror(errno));
        goto out;
    }
    envp = server_env(); /* built before fork: the child must not allocate */
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        fail(err, errlen, "cannot fork: %s", strerror(errno));
        goto out;
    }
    if (child == 0)
        child_exec(argv, envp, cwd, who, log_fd, null_fd, pipefd[1], parent);
    setpgid(child, child); /* also here, so signals to the group work right away */
    close(pipefd[1]);
    pipefd[1] = -1;

    spawn_failure f = {0, 0};
    ssize_t r;
    while ((r = read(pipefd[0], &f, sizeof f)) < 0 && errno == EINTR)
        ;
    if (r == 0) { /* EOF: the exec succeeded and closed the pipe */
        *pid = child;
        rc = RST_OK;
        goto out;
    }
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
        ;
    if (r != (ssize_t)sizeof f)
        f = (spawn_failure){STAGE_PARENT, EIO};
    switch (f.stage) {
    case STAGE_IDS:
        fail(err, errlen, "cannot switch to the postgres user: %s", strerror(f.err));
        break;
    case STAGE_CHDIR:
        fail(err, errlen,
             "the server user cannot enter %s (%s): every parent directory must be "
             "searchable by it",
             cwd, strerror(f.err));
        break;
    case STAGE_EXEC:
        fail(err, errlen, "cannot run %s: %s", argv[0], strerror(f.err));
        break;
    default:
        fail(err, errlen, "cannot start %s: %s", argv[0], strerror(f.err));
        break;
    }
out:
    free(envp);
    if (log_fd >= 0)
        close(log_fd);
    if (null_fd >= 0)
        close(null_fd);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    return rc;
}

/* Waits up to timeout_ms for pid; returns 1 and sets *status when it has exited. */
static int wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = now_ms_monotonic() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR) {
            *status = 0; /* ECHILD: someone else reaped it */
            return 1;
        }
        if (now_ms_monotonic() >= deadline)
            return 0;
        sleep_ms(20);
    }
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Ends a postmaster: fast shutdown, then immediate, then SIGKILL, each bounded. */
static void stop_postmaster(pid_t pid, int fast_ms)
{
    int status = 0;
    kill(pid, SIGINT);
    if (wait_exit(pid, fast_ms, &status))
        return;
    log_msg(LOG_WARN, "embedded postgres did not stop in %d ms: immediate shutdown", fast_ms);
    kill(pid, SIGQUIT);
    if (wait_exit(pid, 5000, &status))
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}

static int is_postgres_in(long pid, const char *data)
{
    char path[64], comm[64], cwd[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    if (read_small(path, comm, sizeof comm) < 0 || strcmp(comm, "postgres\n") != 0)
        return 0;
    /* The postmaster and its backends chdir into the data directory; a reused pid that
     * belongs to some other cluster does not. Zombies have no cwd. */
    snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
    ssize_t n = readlink(path, cwd, sizeof cwd - 1);
    if (n < 0)
        return 0;
    cwd[n] = '\0';
    return strcmp(cwd, data) == 0;
}

typedef enum { LOCK_ABSENT, LOCK_STALE, LOCK_LIVE, LOCK_STOPPING } lock_state;

/* Reads a PostgreSQL lock file (postmaster.pid or the socket's .lock): line 1 is the
 * owner's pid, line 8 (data directory lock only) its status. */
static lock_state lock_probe(const char *path, const char *data, long *pid)
{
    char buf[1024];
    *pid = 0;
    if (read_small(path, buf, sizeof buf) < 0)
        return LOCK_ABSENT; /* unreadable for another reason: let postgres judge it */
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    if (parse_long(buf, 1, INT_MAX, pid) || *pid == (long)getpid())
        return LOCK_STALE; /* torn by a crash while being written */
    if (kill((pid_t)*pid, 0) && errno == ESRCH)
        return LOCK_STALE;
    if (!is_postgres_in(*pid, data))
        return LOCK_STALE; /* the pid was reused by an unrelated process */
    const char *line = nl ? nl + 1 : "";
    for (int i = 2; i < 8 && line; i++) {
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return line && strncmp(line, "stopping", 8) == 0 ? LOCK_STOPPING : LOCK_LIVE;
}

/* Waits for processes of a dead postmaster still attached to its shared memory: the new
 * postmaster refuses to start while they live. Returns the pid of one left, or 0. */
static long wait_orphans(const char *data, int timeout_ms)
{
    int64_t deadline = now_ms_monotonic() + timeout_ms;
    for (;;) {
        long left = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && !left && (e = readdir(d))) {
            long pid;
            if (!parse_long(e->d_name, 1, INT_MAX, &pid) && pid != (long)getpid() &&
                is_postgres_in(pid, data))
                left = pid;
        }
        if (d)
            closedir(d);
        if (!left || now_ms_monotonic() >= deadline)
            return left;
        sleep_ms(100);
    }
}

/* Clears lock files a crashed cluster left behind; RST_ECONFLICT when a live postgres
 * owns the directory. A postmaster that is shutting down (say, its roastery just died)
 * is given time to finish. */
static int recover_locks(const char *data, const char *sock_lock, char *err, size_t errlen)
{
    char *pidfile = xasprintf("%s/postmaster.pid", data);
    int rc = RST_OK;
    int recovered = 0;
    int64_t t0 = now_ms_monotonic();
    long pid = 0;
    for (;;) {
        lock_state st = lock_probe(pidfile, data, &pid);
        if (st == LOCK_ABSENT)
            break;
        if (st == LOCK_STALE) {
            if (unlink(pidfile) && errno != ENOENT) {
                fail(err, errlen, "cannot remove stale %s: %s", pidfile, strerror(errno));
                rc = RST_EIO;
                goto out;
            }
            log_fields(LOG_WARN, "embedded postgres: removed a stale lock after a crash",
                       json_pack("{s:s, s:I}", "file", pidfile, "pid", (json_int_t)pid));
            recovered = 1;
            break;
        }
        int64_t waited = now_ms_monotonic() - t0;
        if ((st == LOCK_LIVE && waited > 1000) || waited > START_TIMEOUT_MS) {
            fail(err, errlen, "another roastery owns %s (postgres pid %ld is running there)", data,
                 pid);
            rc = RST_ECONFLICT;
            goto out;
        }
        sleep_ms(100);
    }
    lock_state st = lock_probe(sock_lock, data, &pid);
    if (st == LOCK_LIVE || st == LOCK_STOPPING) {
        fail(err, errlen, "another roastery owns %s (postgres pid %ld holds its socket)", data,
             pid);
        rc = RST_ECONFLICT;
        goto out;
    }
    if (st == LOCK_STALE) {
        unlink(sock_lock);
        log_fields(LOG_WARN, "embedded postgres: removed a stale socket lock after a crash",
                   json_pack("{s:s, s:I}", "file", sock_lock, "pid", (json_int_t)pid));
        recovered = 1;
    }
    if (recovered) {
        long left = wait_orphans(data, 10000);
        if (left) {
            fail(err, errlen, "postgres pid %ld of a crashed cluster still runs in %s", left, data);
            rc = RST_EIO;
            goto out;
        }
        log_msg(LOG_INFO, "embedded postgres: recovering from a crash");
    }
out:
    free(pidfile);
    return rc;
}

/* Runs initdb unless the cluster exists. */
static int init_cluster(const char *bindir, const char *pgdir, const char *data,
                        const char *log_path, const run_as *who, char *err, size_t errlen)
{
    char *version = xasprintf("%s/PG_VERSION", data);
    int exists = access(version, F_OK) == 0;
    free(version);
    if (exists)
        return RST_OK;
    char *initdb = xasprintf("%s/initdb", bindir);
    /* trust is safe: the only way in is a socket in a 0700 directory, no TCP listener. */
    char *argv[] = {initdb,  "-D",        (char *)data, "-U",   "roastery",   "-A",
                    "trust", "--no-sync", "-E",         "UTF8", "--locale=C", NULL};
    log_fields(LOG_INFO, "embedded postgres: creating cluster",
               json_pack("{s:s, s:s}", "dir", data, "bindir", bindir));
    pid_t pid;
    int rc = spawn(argv, pgdir, who, log_path, &pid, err, errlen);
    if (rc)
        goto out;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char tail[200];
        log_tail(log_path, tail, sizeof tail);
        fail(err, errlen, "initdb failed (exit %d): %s (see %s)", exit_code(status), tail,
             log_path);
        rc = RST_EIO;
    }
out:
    free(initdb);
    return rc;
}

/* Pings until the server accepts connections, the child dies (then *pid = -1: reaped), or
 * time runs out. */
static int wait_ready(pid_t *pid, const char *conninfo, const char *log_path, char *err,
                      size_t errlen)
{
    int64_t t0 = now_ms_monotonic();
    int said_recovering = 0;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(*pid, &status, WNOHANG);
        if (r == *pid) {
            *pid = -1;
            char tail[200];
            log_tail(log_path, tail, sizeof tail);
            fail(err, errlen, "postgres exited during startup (exit %d): %s (see %s)",
                 exit_code(status), tail, log_path);
            return RST_EIO;
        }
        PGPing ping = PQping(conninfo);
        if (ping == PQPING_OK)
            return RST_OK;
        int64_t waited = now_ms_monotonic() - t0;
        /* REJECT means "the database system is starting up": WAL replay after a crash
         * can outlast the normal timeout while making progress. */
        if (ping == PQPING_REJECT && !said_recovering && waited > 2000) {
            log_msg(LOG_INFO, "embedded postgres: waiting for startup (crash recovery?)");
            said_recovering = 1;
        }
        int limit = ping == PQPING_REJECT ? RECOVERY_TIMEOUT_MS : START_TIMEOUT_MS;
        if (waited > limit) {
            fail(err, errlen, "postgres did not accept connections within %d s (see %s)",
                 limit / 1000, log_path);
            return RST_EUNAVAIL;
        }
        sleep_ms(100);
    }
}

/* Creates database "roastery" when missing (a crash right after initdb may have skipped it). */
static int ensure_database(const char *admin_conninfo, char *err, size_t errlen)
{
    int rc = RST_EIO;
    PGresult *r = NULL;
    PGconn *c = PQconnectdb(admin_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        char *m = xstrdup(PQerrorMessage(c));
        m[strcspn(m, "\n")] = '\0';
        fail(err, errlen, "cannot connect to the new cluster: %s", m);
        free(m);
        goto out;
    }
    r = PQexec(c, "SELECT 1 FROM pg_database WHERE datname = 'roastery'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto sql_error;
    if (PQntuples(r) == 0) {
        PQclear(r);
        r = PQexec(c, "CREATE DATABASE roastery");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            goto sql_error;
        log_msg(LOG_INFO, "embedded postgres: created database roastery");
    }
    rc = RST_OK;
    goto out;
sql_error:
    log_fields(LOG_ERROR, "embedded postgres: cannot create database roastery",
               json_pack("{s:s}", "error", PQresultErrorMessage(r)));
    fail(err, errlen, "cannot create database roastery");
out:
    PQclear(r);
    PQfinish(c);
    return rc;
}

int pgembed_start(const char *data_dir, pgembed **out, char **conninfo, char *err, size_t errlen)
{
    int rc = RST_EIO;
    char *bindir = NULL, *base = NULL, *pgdir = NULL, *data = NULL, *run = NULL;
    char *log_path = NULL, *sock = NULL, *sock_lock = NULL, *postgres = NULL, *host = NULL;
    char *admin = NULL, *ci = NULL;
    pid_t pid = -1;
    run_as who;

    if (err && errlen)
        err[0] = '\0';
    if (!data_dir || !*data_dir || !out || !conninfo) {
        fail(err, errlen, "no data directory given");
        return RST_EINVAL;
    }
    *out = NULL;
    *conninfo = NULL;
    if ((rc = resolve_user(&who, err, errlen)))
        goto out;
    rc = RST_EUNAVAIL;
    if (!(bindir = find_bindir())) {
        fail(err, errlen,
             "no PostgreSQL server found in %s (install postgresql, or set "
             "ROASTERY_PG_BINDIR)",
             getenv("ROASTERY_PG_BINDIR") ? getenv("ROASTERY_PG_BINDIR")
                                          : "/usr/lib/postgresql/*/bin");
        goto out;
    }
    rc = RST_EIO;
    /* Root must let the postgres user through the data directory; others keep it private. */
    if (mkdir_p(data_dir, who.drop ? 0755 : 0700)) {
        fail(err, errlen, "cannot create %s: %s", data_dir, strerror(errno));
        goto out;
    }
    /* Absolute paths: the server chdirs, and a relative host= is not a socket directory. */
    if (!(base = realpath(data_dir, NULL))) {
        fail(err, errlen, "cannot resolve %s: %s", data_dir, strerror(errno));
        goto out;
    }
    pgdir = xasprintf("%s/pg", base);
    data = xasprintf("%s/data", pgdir);
    run = xasprintf("%s/run", pgdir);
    log_path = xasprintf("%s/postgres.log", pgdir);
    sock = xasprintf("%s/" PGEMBED_SOCKET_NAME, run);
    sock_lock = xasprintf("%s.lock", sock);
    if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fail(err, errlen,
             "socket path %s is %zu bytes, over the %zu-byte Unix socket limit: "
             "use a shorter ROASTERY_DATA_DIR",
             sock, strlen(sock), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        rc = RST_EINVAL;
        goto out;
    }
    if ((rc = own_dir(pgdir, &who, err, errlen)) || (rc = own_dir(data, &who, err, errlen)) ||
        (rc = own_dir(run, &who, err, errlen)))
        goto out;
    if ((rc = recover_locks(data, sock_lock, err, errlen)))
        goto out;
    if ((rc = init_cluster(bindir, pgdir, data, log_path, &who, err, errlen)))
        goto out;

    postgres = xasprintf("%s/postgres", bindir);
    /* clang-format off */
    char *argv[] = {postgres, "-D", data, "-k", run, "-p", PGEMBED_PORT,
                    "-c", "listen_addresses=",       /* no TCP: the socket is the only way in */
                    "-c", "unix_socket_permissions=0700",
                    "-c", "max_connections=200",
                    "-c", "shared_buffers=32MB",
                    "-c", "fsync=on",
                    NULL};
    /* clang-format on */
    if ((rc = spawn(argv, pgdir, &who, log_path, &pid, err, errlen)))
        goto out;
    /* port= too: libpq would otherwise follow a PGPORT in our environment. */
    host = conn_quote(run);
    admin = xasprintf("host=%s port=" PGEMBED_PORT " dbname=postgres user=roastery", host);
    if ((rc = wait_ready(&pid, admin, log_path, err, errlen)))
        goto out;
    if ((rc = ensure_database(admin, err, errlen)))
        goto out;
    ci = xasprintf("host=%s port=" PGEMBED_PORT " dbname=roastery user=roastery", host);

    pgembed *pg = xcalloc(1, sizeof *pg);
    pg->pid = pid;
    pg->pgdir = pgdir;
    pgdir = NULL;
    pid = -1;
    *out = pg;
    *conninfo = ci;
    ci = NULL;
    log_fields(
        LOG_INFO, "embedded postgres ready",
        json_pack("{s:i, s:s, s:s}", "pid", (int)pg->pid, "socket_dir", run, "log", log_path));
    rc = RST_OK;
out:
    if (pid > 0)
        stop_postmaster(pid, 5000);
    free(bindir);
    free(base);
    free(pgdir);
    free(data);
    free(run);
    free(log_path);
    free(sock);
    free(sock_lock);
    free(postgres);
    free(host);
    free(admin);
    free(ci);
    return rc;
}

void pgembed_stop(pgembed *pg)
{
    if (!pg)
        return;
    stop_postmaster(pg->pid, STOP_TIMEOUT_MS);
    log_fields(LOG_INFO, "embedded postgres stopped",
               json_pack("{s:i, s:s}", "pid", (int)pg->pid, "dir", pg->pgdir));
    free(pg->pgdir);
    free(pg);
}

int pgembed_pid(const pgembed *pg)
{
    return pg ? (int)pg->pid : -1;
}
