/* Runs the terraform CLI from a worker thread: posix_spawn into its own
 * process group, both output pipes read with poll() under a deadline, and a
 * TERM-then-KILL of the whole group when the deadline passes. */
#include "exec/terraform.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"

#define TF_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define TF_ELLIPSIS "\xe2\x80\xa6" /* "…" */
#define TF_LOG_MARK TF_ELLIPSIS "\n"
#define TF_LOG_MARK_LEN (sizeof TF_LOG_MARK - 1)
/* Longest sleep between checks for the child's exit while nothing arrives. */
#define TF_TICK_MAX_MS 100

static const char *const tf_forced_env[] = {"TF_IN_AUTOMATION=1", "TF_INPUT=0"};

/* ------------------------------------------------------------- log ring */

/* The last cap bytes written, without ever growing. */
typedef struct {
    char *data;
    size_t cap;
    size_t start; /* index of the oldest byte */
    size_t len;
    int wrapped; /* some bytes were dropped */
} tf_ring;

static void ring_write(tf_ring *r, const char *p, size_t n)
{
    if (n >= r->cap) {
        memcpy(r->data, p + (n - r->cap), r->cap);
        r->wrapped |= r->len > 0 || n > r->cap;
        r->start = 0;
        r->len = r->cap;
        return;
    }
    if (r->len + n > r->cap) {
        size_t drop = r->len + n - r->cap;
        r->start = (r->start + drop) % r->cap;
        r->len -= drop;
        r->wrapped = 1;
    }
    size_t end = (r->start + r->len) % r->cap;
    size_t first = r->cap - end < n ? r->cap - end : n;
    memcpy(r->data + end, p, first);
    memcpy(r->data, p + first, n - first);
    r->len += n;
}

/* new: the ring's bytes in order, NUL-terminated, with "…\n" in front when bytes were dropped
 * (making room for it so that *len <= cap). Caller frees with free(). */
static char *ring_take(const tf_ring *r, size_t *len)
{
    char *lin = xmalloc(r->len + 1);
    size_t first = r->cap - r->start < r->len ? r->cap - r->start : r->len;
    if (r->len) {
        memcpy(lin, r->data + r->start, first);
        memcpy(lin + first, r->data, r->len - first);
    }
    lin[r->len] = '\0';
    if (!r->wrapped) {
        *len = r->len;
        return lin;
    }
    /* Cut after a newline when there is one in the first half, so that the log starts with a
     * whole line; else at a character boundary. */
    size_t skip = TF_LOG_MARK_LEN < r->len ? TF_LOG_MARK_LEN : r->len;
    size_t half = r->len / 2;
    const char *nl = NULL;
    if (skip > 0 && half >= skip) /* a newline at [skip-1, half-1]: cut after it */
        nl = memchr(lin + skip - 1, '\n', half - skip + 1);
    if (nl)
        skip = (size_t)(nl - lin) + 1;
    else
        while (skip < r->len && ((unsigned char)lin[skip] & 0xC0) == 0x80)
            skip++;
    size_t n = TF_LOG_MARK_LEN + (r->len - skip);
    char *s = xmalloc(n + 1);
    memcpy(s, TF_LOG_MARK, TF_LOG_MARK_LEN);
    memcpy(s + TF_LOG_MARK_LEN, lin + skip, r->len - skip);
    s[n] = '\0';
    free(lin);
    *len = n;
    return s;
}

/* ------------------------------------------------------------- lookup */

static int is_executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
}

/* new: path made absolute against the current directory (caller frees with free()), or NULL
 * when the current directory cannot be read. */
static char *absolute_path(const char *path)
{
    if (path[0] == '/')
        return xstrdup(path);
    while (path[0] == '.' && path[1] == '/') { /* "./x" and ".//./x" name x */
        path += 2;
        while (path[0] == '/')
            path++;
    }
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return NULL;
    char *abs = xasprintf("%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", path);
    free(cwd);
    return abs;
}

char *terraform_find(const char *bin)
{
    if (!bin || !*bin)
        return NULL;
    if (strchr(bin, '/'))
        return is_executable_file(bin) ? absolute_path(bin) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        path = TF_DEFAULT_PATH;
    for (const char *dir = path;;) {
        const char *colon = strchr(dir, ':');
        size_t n = colon ? (size_t)(colon - dir) : strlen(dir);
        char *cand = n ? xasprintf("%.*s/%s", (int)n, dir, bin) : xasprintf("./%s", bin);
        if (is_executable_file(cand)) {
            char *abs = absolute_path(cand);
            free(cand);
            if (abs)
                return abs;
        } else {
            free(cand);
        }
        if (!colon)
            return NULL;
        dir = colon + 1;
    }
}

/* ------------------------------------------------------------- spawning */

/* Length of the key of "K=V", or 0 when there is no '=' or the key is empty. */
static size_t env_key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : 0;
}

/* Whether kv ("K=V", or anything) has the key of ref, which is klen bytes long. */
static int env_has_key(const char *kv, const char *ref, size_t klen)
{
    return strncmp(kv, ref, klen) == 0 && kv[klen] == '=';
}

/* Whether kv's key is one of the variables terraform_run always sets. */
static int env_is_forced(const char *kv)
{
    for (size_t i = 0; i < sizeof tf_forced_env / sizeof *tf_forced_env; i++)
        if (env_has_key(kv, tf_forced_env[i], env_key_len(tf_forced_env[i])))
            return 1;
    return 0;
}

/* What terraform may see of our environment: its own settings and the azurerm provider's
 * credentials (ARM_*, and the AZURE_* that AKS workload identity injects for
 * ARM_USE_AKS_WORKLOAD_IDENTITY), never ROASTERY_* (the client secret, the database URL, the
 * storage connection strings): its output is kept as action logs project members read. */
static const char *const tf_allowed_env[] = {"PATH",
                                             "HOME",
                                             "ARM_*",
                                             "TF_*",
                                             "AZURE_CLIENT_ID",
                                             "AZURE_TENANT_ID",
                                             "AZURE_FEDERATED_TOKEN_FILE",
                                             "AZURE_AUTHORITY_HOST",
                                             NULL};

/* new: the child's environment: ours cut to names (NULL: tf_allowed_env) and allow (comma-separated
 * names, "P_*" prefixes; may be NULL), minus what extra and the forced variables replace, then
 * extra (the last of duplicate keys wins), then the forced variables. The array is the
 * caller's to free() with free(); the strings stay borrowed from environ, extra and
 * tf_forced_env. extra must have been checked with env_key_len. */
static char **build_envp(const char *const *extra, const char *const *names, const char *allow)
{
    size_t n_env = 0, n_extra = 0;
    char **inherited = env_allowlist(names ? names : tf_allowed_env, allow);
    for (char **e = inherited; *e; e++)
        n_env++;
    for (const char *const *x = extra; x && *x; x++)
        n_extra++;
    size_t n_forced = sizeof tf_forced_env / sizeof *tf_forced_env;
    char **envp = xcalloc(n_env + n_extra + n_forced + 1, sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *kv = inherited[i];
        int replaced = env_is_forced(kv);
        for (size_t j = 0; j < n_extra && !replaced; j++)
            replaced = env_has_key(kv, extra[j], env_key_len(extra[j]));
        if (!replaced)
            envp[k++] = inherited[i];
    }
    free(inherited);
    for (size_t j = 0; j < n_extra; j++) {
        int later = env_is_forced(extra[j]);
        for (size_t l = j + 1; l < n_extra && !later; l++)
            later = env_has_key(extra[l], extra[j], env_key_len(extra[j]));
        if (!later)
            envp[k++] = (char *)extra[j]; /* posix_spawn's type; it does not write */
    }
    for (size_t i = 0; i < n_forced; i++)
        envp[k++] = (char *)tf_forced_env[i];
    envp[k] = NULL;
    return envp;
}

/* A pipe with both ends close-on-exec and above 2, so that the dup2 of one end onto the
 * child's stdout or stderr can never clobber the other. Returns 0 or -1 (errno set). */
static int pipe_above_stdio(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (p[i] > 2)
            continue;
        int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
        int saved = errno;
        close(p[i]);
        p[i] = fd;
        if (fd < 0) {
            if (p[1 - i] >= 0)
                close(p[1 - i]);
            p[0] = p[1] = -1;
            errno = saved;
            return -1;
        }
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int status_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Whether pid has exited, without reaping it: while it stays a zombie its pid, which is also
 * its process group's id, cannot be reused, so signalling the group stays safe. */
static int has_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
        return si.si_pid == pid;
    return errno == ECHILD; /* reaped behind our back (SIGCHLD ignored): gone all the same */
}

/* Copies what arrived into the stdout capture (when it came from stdout) and the log ring. */
static void take_output(buf_t *out, size_t max_out, int *truncated, tf_ring *ring, const char *p,
                        size_t n, int is_stdout)
{
    if (is_stdout) {
        size_t room = max_out - out->len;
        size_t k = n < room ? n : room;
        if (k)
            buf_append(out, p, k); /* no limit on the buffer itself: cannot fail */
        if (k < n)
            *truncated = 1;
    }
    ring_write(ring, p, n);
}

/* size: one spawn, watch and reap of the child with a single release path for its pipes, spawn
 * attributes, environment and output buffers; helpers would pass all of that state around. */
int terraform_run(const terraform_options *o, const char *const *args, terraform_result *res)
{
    assert(o && res);
    memset(res, 0, sizeof *res);
    res->exit_status = -1;

    int64_t t0 = now_ms_monotonic();
    int rc = RST_OK;
    char *reason = NULL;
    char *path = NULL;
    char **argv = NULL;
    char **envp = NULL;
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ready = 0, attr_ready = 0;
    pid_t pid = -1;
    size_t max_out = o->max_stdout ? o->max_stdout : TERRAFORM_MAX_STDOUT_DEFAULT;
    size_t max_log = o->max_log ? o->max_log : TERRAFORM_MAX_LOG_DEFAULT;
    if (max_log < TERRAFORM_MAX_LOG_MIN)
        max_log = TERRAFORM_MAX_LOG_MIN;
    buf_t out;
    buf_init(&out, 0);
    tf_ring ring = {.cap = max_log};
    char errbuf[128];

    if (!o->bin || !*o->bin) {
        rc = RST_EINVAL;
        reason = xstrdup("no terraform binary configured");
        goto out;
    }
    if (!o->workdir || o->timeout_seconds <= 0) {
        rc = RST_EINVAL;
        reason = xstrdup(!o->workdir ? "no working directory given" : "timeout must be positive");
        goto out;
    }
    for (const char *const *x = o->env_extra; x && *x; x++) {
        if (!env_key_len(*x)) {
            rc = RST_EINVAL;
            reason = xasprintf("environment entry without a name: \"%.64s\"", *x);
            goto out;
        }
    }
    struct stat st;
    if (stat(o->workdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = RST_EINVAL;
        reason = xasprintf("working directory %s is not a directory", o->workdir);
        goto out;
    }
    path = terraform_find(o->bin);
    if (!path) {
        rc = RST_ENOTFOUND;
        reason = xasprintf("%s: not found or not executable", o->bin);
        goto out;
    }

    size_t nargs = 0;
    for (const char *const *a = args; a && *a; a++)
        nargs++;
    argv = xcalloc(nargs + 2, sizeof *argv);
    argv[0] = (char *)o->bin; /* posix_spawn's type; it does not write */
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];
    envp = build_envp(o->env_extra, o->env_names, o->env_allow);

    if (pipe_above_stdio(outp) != 0 || pipe_above_stdio(errp) != 0) {
        rc = errno == ENOMEM ? RST_ENOMEM : RST_EIO;
        reason = xasprintf("cannot create pipes: %s", strerror_r(errno, errbuf, sizeof errbuf));
        goto out;
    }

    int e = posix_spawn_file_actions_init(&fa);
    fa_ready = e == 0;
    if (!e)
        e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    if (!e)
        e = posix_spawn_file_actions_addchdir_np(&fa, o->workdir);
#ifdef __GLIBC__
#if __GLIBC_PREREQ(2, 34)
    /* Descriptors other threads opened without O_CLOEXEC must not leak into terraform. */
    if (!e)
        e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
#endif
    if (!e) {
        e = posix_spawnattr_init(&attr);
        attr_ready = e == 0;
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!e)
        e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETSIGDEF);
    if (!e)
        e = posix_spawnattr_setpgroup(&attr, 0);
    if (!e)
        e = posix_spawnattr_setsigmask(&attr, &none);
    if (!e)
        e = posix_spawnattr_setsigdefault(&attr, &all);
    if (!e)
        e = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    if (e) {
        /* glibc reaps a child whose exec failed before returning; another libc might not. */
        if (pid > 0)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pid = -1;
        rc = e == ENOMEM ? RST_ENOMEM : RST_EIO;
        reason = xasprintf("cannot start %s: %s", path, strerror_r(e, errbuf, sizeof errbuf));
        goto out;
    }

    ring.data = xmalloc(ring.cap);
    int64_t deadline = t0 + (int64_t)o->timeout_seconds * 1000;
    int64_t grace_ms =
        o->term_grace_ms > 0 ? o->term_grace_ms : (int64_t)TERRAFORM_TERM_GRACE_SECONDS * 1000;
    int64_t exit_at = 0, kill_at = 0;
    int exited = 0, term_sent = 0, kill_sent = 0, tick = 1;
    int fds[2] = {outp[0], errp[0]};
    outp[0] = errp[0] = -1; /* owned by fds[] now */
    for (;;) {
        int64_t now = now_ms_monotonic();
        if (!exited && has_exited(pid)) {
            exited = 1;
            exit_at = now;
        }
        if (exited && fds[0] < 0 && fds[1] < 0)
            break;
        if (exited) {
            if (now >= exit_at + TERRAFORM_DRAIN_MS)
                break; /* something it left behind holds the pipes: killed below */
        } else if (!term_sent && now >= deadline) {
            kill(-pid, SIGTERM);
            term_sent = 1;
            res->timed_out = 1;
            kill_at = now + grace_ms;
            log_fields(LOG_WARN, "terraform timed out, terminating",
                       json_pack("{s:s,s:I,s:i}", "bin", o->bin, "pid", (json_int_t)pid,
                                 "timeout_s", o->timeout_seconds));
        } else if (term_sent && !kill_sent && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_sent = 1;
            log_fields(LOG_WARN, "terraform ignored SIGTERM, killing",
                       json_pack("{s:s,s:I}", "bin", o->bin, "pid", (json_int_t)pid));
        }
        int64_t next = exited       ? exit_at + TERRAFORM_DRAIN_MS
                       : !term_sent ? deadline
                       : !kill_sent ? kill_at
                                    : INT64_MAX;
        int64_t wait_ms = next == INT64_MAX ? tick : next - now;
        if (wait_ms > tick)
            wait_ms = tick;
        if (wait_ms < 0)
            wait_ms = 0;

        struct pollfd pfd[2];
        int which[2];
        nfds_t npfd = 0;
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0)
                continue;
            pfd[npfd] = (struct pollfd){.fd = fds[i], .events = POLLIN};
            which[npfd++] = i;
        }
        int pr = poll(npfd ? pfd : NULL, npfd, (int)wait_ms);
        if (pr < 0 && errno != EINTR) {
            rc = RST_EIO;
            reason = xasprintf("poll failed: %s", strerror_r(errno, errbuf, sizeof errbuf));
            break;
        }
        if (pr <= 0) {
            tick = tick * 2 < TF_TICK_MAX_MS ? tick * 2 : TF_TICK_MAX_MS;
            continue;
        }
        tick = 1;
        for (nfds_t i = 0; i < npfd; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
                continue;
            char chunk[16384];
            int *fd = &fds[which[i]];
            ssize_t n = read(*fd, chunk, sizeof chunk);
            if (n > 0)
                take_output(&out, max_out, &res->out_truncated, &ring, chunk, (size_t)n,
                            which[i] == 0);
            else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                close_fd(fd);
        }
    }
    close_fd(&fds[0]);
    close_fd(&fds[1]);
    /* Nothing of the group outlives the call. The leader is not reaped yet, so the group id is
     * still ours even when the leader has exited. */
    kill(-pid, SIGKILL);
    int wst = 0;
    pid_t w;
    while ((w = waitpid(pid, &wst, 0)) < 0 && errno == EINTR)
        ;
    if (rc == RST_OK)
        res->exit_status = w == pid ? status_code(wst) : -1;

out:
    if (fa_ready)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ready)
        posix_spawnattr_destroy(&attr);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    free(argv);
    free(envp);
    free(path);
    if (reason) {
        log_fields(
            LOG_WARN, "terraform could not run",
            json_pack("{s:s?,s:s?,s:s}", "bin", o->bin, "workdir", o->workdir, "reason", reason));
        res->exit_status = -1;
    }
    if (!ring.data) { /* never started: the log is the reason alone */
        res->log = reason ? reason : xstrdup("");
        res->log_len = strlen(res->log);
        reason = NULL;
    } else {
        if (reason) {
            ring_write(&ring, "\n", 1);
            ring_write(&ring, reason, strlen(reason));
        }
        res->log = ring_take(&ring, &res->log_len);
    }
    free(ring.data);
    free(reason);
    res->out = out.data ? out.data : xstrdup("");
    res->out_len = out.len;
    res->seconds = (double)(now_ms_monotonic() - t0) / 1000.0;
    return rc;
}

void terraform_result_free(terraform_result *res)
{
    if (!res)
        return;
    free(res->out);
    free(res->log);
    memset(res, 0, sizeof *res);
}

/* ------------------------------------------------------------- summary */

/* Byte length of the box-drawing (U+2500..U+257F) or "…" character at p, else 0. */
static size_t decoration_char(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 3 || p[0] != 0xE2)
        return 0;
    if ((p[1] == 0x94 || p[1] == 0x95) && p[2] >= 0x80 && p[2] <= 0xBF)
        return 3;
    if (p[1] == 0x80 && p[2] == 0xA6)
        return 3;
    return 0;
}

/* Writes line (n bytes) into b without ANSI escapes, with control bytes as spaces, without the
 * leading box and blanks and without trailing blanks. */
static void clean_line(const char *line, size_t n, buf_t *b)
{
    const unsigned char *p = (const unsigned char *)line, *end = p + n;
    b->len = 0;
    buf_append(b, "", 0);
    for (;;) { /* leading box characters and blanks */
        size_t k = decoration_char(p, end);
        if (k && (p[1] == 0x94 || p[1] == 0x95))
            p += k;
        else if (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
            p++;
        else
            break;
    }
    while (p < end) {
        if (*p == 0x1B) { /* ESC [ params final, or ESC plus one byte */
            p++;
            if (p < end && *p == '[') {
                for (p++; p < end && !(*p >= 0x40 && *p <= 0x7E); p++)
                    ;
            }
            if (p < end)
                p++;
            continue;
        }
        char c = (*p < 0x20 || *p == 0x7F) ? ' ' : (char)*p;
        buf_append(b, &c, 1);
        p++;
    }
    while (b->len && b->data[b->len - 1] == ' ')
        b->data[--b->len] = '\0';
}

/* Whether a cleaned line holds nothing but blanks and decoration. */
static int is_decoration(const buf_t *b)
{
    const unsigned char *p = (const unsigned char *)b->data, *end = p + b->len;
    while (p < end) {
        size_t k = decoration_char(p, end);
        if (k)
            p += k;
        else if (*p && strchr(" -=_*~|", *p))
            p++;
        else
            return 0;
    }
    return 1;
}

char *terraform_error_summary(const char *log, size_t len)
{
    static const char err_prefix[] = "Error: ";
    buf_t line, sum;
    buf_init(&line, 0);
    buf_init(&sum, 0);
    const char *end = log ? log + len : log;
    int in_error = 0;
    for (const char *s = log; s && s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        clean_line(s, (size_t)(e - s), &line);
        s = nl ? nl + 1 : end;
        int blank = is_decoration(&line);
        if (in_error) {
            if (blank)
                break;
            buf_append(&sum, " ", 1);
            buf_append(&sum, line.data, line.len);
            if (sum.len > TERRAFORM_SUMMARY_MAX)
                break;
        } else if (strncmp(line.data, err_prefix, sizeof err_prefix - 1) == 0) {
            in_error = 1;
            sum.len = 0;
            buf_append(&sum, line.data, line.len);
        } else if (!blank) {
            sum.len = 0; /* the last such line wins unless an error comes */
            buf_append(&sum, line.data, line.len);
        }
    }
    buf_free(&line);
    if (!sum.len) {
        buf_free(&sum);
        return xstrdup("no output");
    }
    if (sum.len > TERRAFORM_SUMMARY_MAX) {
        size_t cut = TERRAFORM_SUMMARY_MAX;
        while (cut > 0 && ((unsigned char)sum.data[cut] & 0xC0) == 0x80)
            cut--;
        sum.len = cut;
        buf_puts(&sum, TF_ELLIPSIS);
    }
    return sum.data;
}
