/* Runs the terraform CLI (or anything standing in for it) for the Terraform
 * executor: one child process per command, in the request's working
 * directory, bounded in time and in captured output. */
#ifndef ROASTERY_TERRAFORM_H
#define ROASTERY_TERRAFORM_H

#include <stddef.h>

#include "lib/util.h"

/* After the deadline the child's process group gets SIGTERM, then SIGKILL this many seconds
 * later if its leader has not exited (terraform needs the time to release its state lock). */
#define TERRAFORM_TERM_GRACE_SECONDS 10
/* Once the child has exited, how long its pipes may stay open (held by a process it left
 * behind) before the rest of its process group is killed and reading stops. */
#define TERRAFORM_DRAIN_MS 1000
/* Defaults for terraform_options.max_stdout and .max_log, and the smallest max_log. */
#define TERRAFORM_MAX_STDOUT_DEFAULT ((size_t)8 * 1024 * 1024)
#define TERRAFORM_MAX_LOG_DEFAULT ((size_t)64 * 1024)
#define TERRAFORM_MAX_LOG_MIN ((size_t)64)
/* terraform_error_summary output is at most this many bytes plus "…". */
#define TERRAFORM_SUMMARY_MAX 500

typedef struct {
    int exit_status; /* exit code; 128+signal when killed by a signal; -1 when it could not start */
    int timed_out;   /* 1 when the deadline passed and the process group was killed */
    char *out;       /* new: stdout (at most max_stdout bytes; out_truncated says if more came) */
    size_t out_len;
    int out_truncated;
    char *log; /* new: stdout and stderr interleaved as they arrived, the LAST max_log bytes */
    size_t log_len;
    double seconds; /* wall time */
} terraform_result;
/* out and log are raw bytes: they may hold NUL bytes, so use out_len and log_len; both are
 * NUL-terminated as well and never NULL once terraform_run has returned. When the log ring
 * wrapped, log starts with "…\n" and is then cut after a newline when one is in the first half
 * (else at a UTF-8 character boundary). Once the process was started, log_len never exceeds
 * max_log; before that, log is the one-line reason. */

typedef struct {
    const char *bin;              /* path or a name looked up in PATH */
    const char *workdir;          /* must exist */
    int timeout_seconds;          /* > 0 */
    size_t max_stdout;            /* 0 = 8 MiB */
    size_t max_log;               /* 0 = 64 KiB; smaller than TERRAFORM_MAX_LOG_MIN is raised */
    const char *const *env_extra; /* NULL-terminated "K=V" added to (or replacing in) the inherited
                                     environment; may be NULL */
    const char *env_allow;        /* comma-separated names ("P_*": a prefix) inherited besides
                                     PATH, HOME, ARM_*, TF_* and workload identity's AZURE_*;
                                     may be NULL (ROASTERY_TERRAFORM_ENV) */
    const char *const *env_names; /* NULL-terminated names inherited instead of those (another
                                     program than terraform: the scoring trainer); may be NULL */
    int term_grace_ms; /* SIGTERM-to-SIGKILL grace; 0 = TERRAFORM_TERM_GRACE_SECONDS. For tests:
                          production callers leave it 0 */
} terraform_options;

/* Runs bin with args (NULL-terminated, NOT including argv[0]) and waits.
 * Always sets TF_IN_AUTOMATION=1 and TF_INPUT=0 in the child's environment, which inherits
 * only PATH, HOME, ARM_*, TF_*, AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE,
 * AZURE_AUTHORITY_HOST (or what env_names names instead) and what env_allow names of ours.
 * On timeout: SIGTERM to the child's process group, then SIGKILL after 10 s
 * (make that grace period a #define), and reports timed_out. Returns RST_OK
 * when the process ran (whatever its exit status: read res->exit_status),
 * or an RST_* error when it could not be started (res->exit_status = -1 and
 * res->log holds a one-line reason). new: res fields; free with terraform_result_free.
 *
 * Details: o, args and the strings in them are borrowed for the call; args may be NULL (no
 * arguments). TF_IN_AUTOMATION and TF_INPUT win over env_extra. bin is resolved with
 * terraform_find against this process's PATH (not env_extra's) before the working directory
 * changes, so a relative bin is relative to our cwd. The child gets stdin from /dev/null, only
 * fds 0-2 (with glibc >= 2.34 everything else is closed, whatever its close-on-exec flag, so
 * descriptors another thread opened without O_CLOEXEC do not leak), an empty signal mask and
 * default signal dispositions, and leads its own process group. When terraform_run returns, the
 * child has been reaped and the rest of its process group has been sent SIGKILL (a process that
 * left the group with setsid or setpgid is not followed). Errors: RST_EINVAL (bad options or
 * workdir not a directory), RST_ENOTFOUND (bin not found or not executable), RST_ENOMEM,
 * RST_EIO (pipe or posix_spawn failed, e.g. a script's interpreter is missing; or poll failed
 * while running, in which case the group was killed). Thread-safe: no globals, no signal
 * handlers, environ only read; requires that no other thread reaps with waitpid(-1) and that
 * SIGCHLD is not ignored. */
int terraform_run(const terraform_options *o, const char *const *args, terraform_result *res);
void terraform_result_free(terraform_result *res); /* NULL-safe, idempotent */

/* Resolves bin (an absolute/relative path, or a name searched in PATH) to an
 * executable file. new: the resolved path (free()), or NULL when not found/not executable.
 *
 * A bin containing '/' is taken as a path, made absolute against the current directory
 * (symlinks are not resolved); otherwise each PATH entry is tried in order (an empty entry
 * means the current directory; no PATH means "/usr/local/bin:/usr/bin:/bin") and the first
 * regular file executable by us wins. NULL for NULL or "". */
char *terraform_find(const char *bin);

/* The last line of log that is not empty or only decoration, for error
 * messages (terraform's own "Error: ..." line when there is one: prefer the
 * first line starting with "Error: " and append the next non-empty line if it
 * continues the message). new: free(); never NULL.
 *
 * Lines are stripped of terraform's diagnostic box ("╷", "│ ", "╵"), of surrounding blanks and
 * of ANSI escapes; NUL and other control bytes become spaces. An "Error: " line is joined with
 * the lines of its paragraph (up to the next line that is blank once stripped) by single
 * spaces. The result is cut to TERRAFORM_SUMMARY_MAX bytes at a UTF-8 boundary, then "…" is
 * appended. "no output" when log holds nothing but blanks and decoration. log (len bytes, may
 * hold NULs, may be NULL when len is 0) is borrowed. */
char *terraform_error_summary(const char *log, size_t len);

#endif
