/* compute.provision and compute.delete. The plan is rendered whatever the
 * executor, so what would happen is always visible; then the executor
 * carries it out: azure runs terraform init/plan/apply (or destroy) in a
 * per-request working directory, local grants training slots on this
 * machine, dry-run records the commands as planned. */
#define _XOPEN_SOURCE 700
#include "compute/compute_ops.h"
#include "compute/compute_plan.h"
#include "db/db.h"
#include "core/log.h"
#include "ops/ops.h"
#include "exec/terraform.h"
#include "lib/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const config *cfg;

typedef struct {
    char id[40];
    char project[80];
    char name[40];
    char kind[16];
    char region[48];
    char vm_size[72];
    char priority[16];
    char executor[16];
    char state[20];
    int min_nodes, max_nodes, idle_minutes, vcpus;
    char requester[80];
    int applied; /* something was carried out before (an update, or a destroy to do) */
} target;

static int load_target(PGconn *c, const char *id, target *t)
{
    PGresult *r = db_exec(c,
                          "SELECT project_id, name, kind, region, vm_size, priority,"
                          " coalesce(executor, 'local'), state, min_nodes, max_nodes,"
                          " idle_minutes, requested_by, applied IS NOT NULL,"
                          " (SELECT p.vcpus FROM vm_prices p WHERE p.region = t.region"
                          "  AND p.vm_size = t.vm_size)"
                          " FROM compute_targets t WHERE id = $1::uuid",
                          1, (const char *[]){id}, NULL);
    if (!r)
        return RST_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return RST_ENOTFOUND;
    }
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->project, sizeof t->project, "%s", PQgetvalue(r, 0, 0));
    snprintf(t->name, sizeof t->name, "%s", PQgetvalue(r, 0, 1));
    snprintf(t->kind, sizeof t->kind, "%s", PQgetvalue(r, 0, 2));
    snprintf(t->region, sizeof t->region, "%s", PQgetvalue(r, 0, 3));
    snprintf(t->vm_size, sizeof t->vm_size, "%s", PQgetvalue(r, 0, 4));
    snprintf(t->priority, sizeof t->priority, "%s", PQgetvalue(r, 0, 5));
    snprintf(t->executor, sizeof t->executor, "%s", PQgetvalue(r, 0, 6));
    snprintf(t->state, sizeof t->state, "%s", PQgetvalue(r, 0, 7));
    long v;
    t->min_nodes = parse_long(PQgetvalue(r, 0, 8), 0, 100000, &v) ? 0 : (int)v;
    t->max_nodes = parse_long(PQgetvalue(r, 0, 9), 0, 100000, &v) ? 0 : (int)v;
    t->idle_minutes = parse_long(PQgetvalue(r, 0, 10), 0, 100000, &v) ? 0 : (int)v;
    snprintf(t->requester, sizeof t->requester, "%s", PQgetvalue(r, 0, 11));
    t->applied = PQgetvalue(r, 0, 12)[0] == 't';
    t->vcpus = parse_long(PQgetvalue(r, 0, 13), 0, 100000, &v) ? 1 : (int)v;
    PQclear(r);
    return RST_OK;
}

static void set_state(PGconn *c, const char *id, const char *state)
{
    PQclear(db_exec(c,
                    "UPDATE compute_targets SET state = $2, updated_at = now(),"
                    " version = version + 1 WHERE id = $1::uuid",
                    2, (const char *[]){id, state}, NULL));
}

static void set_failed(PGconn *c, const char *id, const char *step, const char *message)
{
    char *f = NULL;
    json_t *j = json_pack("{s:s, s:s}", "step", step, "message", message);
    f = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    PQclear(db_exec(c,
                    "UPDATE compute_targets SET state = 'failed', failure = $2::jsonb,"
                    " updated_at = now(), version = version + 1 WHERE id = $1::uuid",
                    2, (const char *[]){id, f}, NULL));
    free(f);
}

static compute_spec spec_of(const target *t)
{
    return (compute_spec){.id = t->id,
                          .project = t->project,
                          .name = t->name,
                          .kind = t->kind,
                          .region = t->region,
                          .vm_size = t->vm_size,
                          .priority = t->priority,
                          .min_nodes = t->min_nodes,
                          .max_nodes = t->max_nodes,
                          .idle_minutes = t->idle_minutes,
                          .vcpus = t->vcpus,
                          .requester_oid = t->requester,
                          .requester_tid = NULL};
}

/* ---- the working directory ------------------------------------------------ */

static char *workdir_of(const char *id)
{
    return xasprintf("%s/terraform/%s", cfg->data_dir, id);
}

/* Creates dir (and its parent) and writes main.tf.json into it. */
static int write_root(const char *dir, json_t *root)
{
    char *parent = xasprintf("%s/terraform", cfg->data_dir);
    int rc = (mkdir(parent, 0700) && errno != EEXIST) || (mkdir(dir, 0700) && errno != EEXIST);
    free(parent);
    if (rc)
        return RST_EIO;
    char *path = xasprintf("%s/main.tf.json", dir);
    rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS) ? RST_EIO : RST_OK;
    free(path);
    return rc;
}

/* ---- terraform steps ------------------------------------------------------ */

typedef struct {
    target *t;
    json_t *root; /* main.tf.json */
    char *dir;
    const char *failed_step;
    char *failure; /* the tool's own message when a step failed */
} tf_job;

/* Runs one terraform command; on failure keeps a message for the compute. */
static int tf(tf_job *j, const char *what, const char *const *args, json_t *log,
              terraform_result *res)
{
    terraform_options o = {.bin = cfg->terraform_bin,
                           .workdir = j->dir,
                           .timeout_seconds = cfg->terraform_timeout_seconds,
                           .env_allow = cfg->terraform_env};
    memset(res, 0, sizeof *res);
    int rc = terraform_run(&o, args, res);
    json_array_append_new(log, json_pack("{s:s, s:i, s:b, s:f, s:s%}", "command", what,
                                         "exit_status", res->exit_status, "timed_out",
                                         res->timed_out, "seconds", res->seconds, "log",
                                         res->log ? res->log : "", res->log_len));
    if (rc == RST_OK && res->exit_status == 0 && !res->timed_out)
        return RST_OK;
    free(j->failure);
    if (res->timed_out)
        j->failure = xasprintf("terraform %s timed out after %d s", what,
                               cfg->terraform_timeout_seconds);
    else if (rc != RST_OK)
        j->failure = xasprintf("terraform could not run: %s", res->log ? res->log : "?");
    else {
        char *summary = terraform_error_summary(res->log, res->log_len);
        j->failure = xasprintf("terraform %s failed (exit %d): %s", what, res->exit_status,
                               summary);
        free(summary);
    }
    return RST_EIO;
}

static int tf_init_and_plan(tf_job *j, int destroy, json_t *log, json_t **show)
{
    terraform_result res;
    if (write_root(j->dir, j->root)) {
        j->failure = xstrdup("cannot write main.tf.json in the working directory");
        return RST_EIO;
    }
    int rc = tf(j, "init", (const char *const[]){"init", "-input=false", "-no-color", NULL}, log,
                &res);
    terraform_result_free(&res);
    if (rc)
        return rc;
    const char *plan_args[] = {"plan", "-input=false", "-no-color", "-out=tfplan",
                               destroy ? "-destroy" : NULL, NULL};
    rc = tf(j, "plan", plan_args, log, &res);
    terraform_result_free(&res);
    if (rc || !show)
        return rc;
    rc = tf(j, "show", (const char *const[]){"show", "-json", "-no-color", "tfplan", NULL}, log,
            &res);
    if (rc == RST_OK) {
        *show = res.out ? json_loadb(res.out, res.out_len, 0, NULL) : NULL;
        if (!*show) {
            j->failure = xstrdup("terraform show -json did not print a plan");
            rc = RST_EIO;
        }
    }
    terraform_result_free(&res);
    return rc;
}

/* Resources to add, change and destroy, from show -json's resource_changes. */
static json_t *summarise(json_t *show)
{
    int add = 0, change = 0, destroy = 0;
    json_t *list = json_array(), *rc;
    size_t i;
    json_array_foreach(json_object_get(show, "resource_changes"), i, rc)
    {
        json_t *acts = json_object_get(json_object_get(rc, "change"), "actions"), *a;
        size_t k;
        int has_create = 0, has_delete = 0, has_update = 0;
        json_array_foreach(acts, k, a)
        {
            const char *s = json_string_value(a);
            has_create |= s && !strcmp(s, "create");
            has_delete |= s && !strcmp(s, "delete");
            has_update |= s && !strcmp(s, "update");
        }
        add += has_create;
        destroy += has_delete;
        change += has_update;
        if (has_create || has_delete || has_update)
            json_array_append_new(list, json_pack("{s:O?, s:O?}", "address",
                                                  json_object_get(rc, "address"), "actions", acts));
    }
    return json_pack("{s:i, s:i, s:i, s:o}", "add", add, "change", change, "destroy", destroy,
                     "resources", list);
}

static ops_result step_plan(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    tf_job *j = arg;
    json_t *log = json_array(), *show = NULL;
    if (tf_init_and_plan(j, 0, log, &show)) {
        j->failed_step = "plan";
        *response = json_pack("{s:o}", "commands", log);
        ops_set_error(ctx, "terraform_failed", j->failure);
        return OPS_FAIL;
    }
    json_t *summary = summarise(show);
    json_decref(show);
    char *text = json_dumps(summary, JSON_COMPACT);
    PQclear(db_exec(ops_conn(ctx),
                    "UPDATE compute_targets SET plan_summary = $2::jsonb WHERE id = $1::uuid", 2,
                    (const char *[]){j->t->id, text}, NULL));
    free(text);
    *response = json_pack("{s:o, s:o}", "summary", summary, "commands", log);
    return OPS_DONE;
}

static ops_result step_apply(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    tf_job *j = arg;
    json_t *log = json_array();
    terraform_result res;
    /* The saved plan lives in the working directory: after a crash or on
     * another machine it is planned again before being applied. */
    char *planfile = xasprintf("%s/tfplan", j->dir);
    int have_plan = access(planfile, R_OK) == 0;
    free(planfile);
    int rc = have_plan ? RST_OK : tf_init_and_plan(j, 0, log, NULL);
    if (rc == RST_OK) {
        rc = tf(j, "apply",
                (const char *const[]){"apply", "-input=false", "-no-color", "tfplan", NULL}, log,
                &res);
        terraform_result_free(&res);
    }
    json_t *outputs = NULL;
    if (rc == RST_OK) {
        rc = tf(j, "output", (const char *const[]){"output", "-json", "-no-color", NULL}, log,
                &res);
        outputs = rc == RST_OK && res.out ? json_loadb(res.out, res.out_len, 0, NULL) : NULL;
        terraform_result_free(&res);
    }
    if (rc) {
        j->failed_step = "apply";
        *response = json_pack("{s:o}", "commands", log);
        ops_set_error(ctx, "terraform_failed", j->failure);
        return OPS_FAIL;
    }
    *response = json_pack("{s:o, s:o}", "outputs", outputs ? outputs : json_object(), "commands",
                          log);
    return OPS_DONE;
}

static ops_result step_destroy(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    tf_job *j = arg;
    json_t *log = json_array();
    terraform_result res;
    int rc = write_root(j->dir, j->root) ? RST_EIO : RST_OK;
    if (rc)
        j->failure = xstrdup("cannot write main.tf.json in the working directory");
    if (rc == RST_OK)
        rc = tf(j, "init", (const char *const[]){"init", "-input=false", "-no-color", NULL}, log,
                &res);
    if (rc == RST_OK) {
        terraform_result_free(&res);
        rc = tf(j, "destroy",
                (const char *const[]){"destroy", "-input=false", "-auto-approve", "-no-color",
                                      NULL},
                log, &res);
    }
    terraform_result_free(&res);
    *response = json_pack("{s:o}", "commands", log);
    if (rc) {
        j->failed_step = "destroy";
        ops_set_error(ctx, "terraform_failed", j->failure);
        return OPS_FAIL;
    }
    return OPS_DONE;
}

/* ---- local and rendering steps ---------------------------------------------- */

static ops_result step_render(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    target *t = arg;
    compute_spec s = spec_of(t);
    json_t *root = compute_plan_render(&s, cfg);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    PGresult *r = db_exec(ops_conn(ctx),
                          "UPDATE compute_targets SET plan = $2::jsonb WHERE id = $1::uuid", 2,
                          (const char *[]){t->id, text}, NULL);
    free(text);
    if (!r) {
        json_decref(root);
        ops_set_error(ctx, "database", "cannot store the rendered plan");
        return OPS_RETRY;
    }
    PQclear(r);
    *response = json_pack("{s:o}", "main.tf.json", root);
    return OPS_DONE;
}

static ops_result step_slots(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)ctx;
    (void)request;
    target *t = arg;
    *response = json_pack("{s:i, s:s}", "slots", t->max_nodes, "note",
                          "training runs of the project may use this many local slots at once");
    return OPS_DONE;
}

static ops_result step_release(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)ctx;
    (void)request;
    (void)arg;
    *response = json_pack("{s:i}", "slots", 0);
    return OPS_DONE;
}

/* ---- handlers --------------------------------------------------------------- */

static void finish_ready(PGconn *c, target *t, const char *state, json_t *outputs)
{
    const char *arm = json_string_value(json_object_get(json_object_get(outputs, "id"), "value"));
    char *out = outputs ? json_dumps(outputs, JSON_COMPACT) : NULL;
    json_t *applied =
        json_pack("{s:s, s:s, s:s, s:i, s:i, s:i}", "vm_size", t->vm_size, "region", t->region,
                  "priority", t->priority, "min_nodes", t->min_nodes, "max_nodes", t->max_nodes,
                  "idle_minutes", t->idle_minutes);
    char *ap = json_dumps(applied, JSON_COMPACT);
    json_decref(applied);
    PQclear(db_exec(c,
                    "UPDATE compute_targets SET state = $2, outputs = $3::jsonb, arm_id = $4,"
                    " applied = $5::jsonb, failure = NULL, updated_at = now(),"
                    " version = version + 1 WHERE id = $1::uuid",
                    5, (const char *[]){t->id, state, out, arm, ap}, NULL));
    free(out);
    free(ap);
}

static json_t *tf_commands(const char *dir, int destroy)
{
    return json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "command",
                     "terraform init -input=false", "dir", dir, "command",
                     destroy ? "terraform plan -destroy -out=tfplan" : "terraform plan -out=tfplan",
                     "dir", dir, "command",
                     destroy ? "terraform destroy -auto-approve" : "terraform apply tfplan", "dir",
                     dir);
}

static ops_result provision(ops_ctx *ctx)
{
    PGconn *c = ops_conn(ctx);
    const char *id = json_string_value(json_object_get(ops_input(ctx), "compute_id"));
    target t;
    if (!id || load_target(c, id, &t)) {
        ops_set_error(ctx, "no_compute", "the compute request no longer exists");
        return OPS_FAIL;
    }
    if (strcmp(t.state, "approved") && strcmp(t.state, "provisioning")) {
        ops_set_output(ctx, json_pack("{s:s, s:s}", "compute_id", id, "skipped", t.state));
        return OPS_DONE; /* deleted or rejected meanwhile: nothing to do */
    }
    set_state(c, id, "provisioning");
    json_t *root = NULL;
    ops_result r = OPS_DONE;
    const char *module = compute_plan_module(t.kind);
    if (module) {
        json_t *req = json_pack("{s:s, s:s}", "module", module, "executor", t.executor);
        r = ops_step(ctx, "render", "terraform", "render main.tf.json", req, step_render, &t,
                     &root);
        json_decref(req);
    }
    json_t *outputs = NULL;
    const char *final = "ready";
    tf_job j = {.t = &t, .root = root, .dir = workdir_of(id)};
    if (r == OPS_DONE && (!module || !strcmp(t.executor, "local"))) {
        json_t *req = json_pack("{s:i}", "slots", t.max_nodes);
        r = ops_step(ctx, "provision", "local", "grant local training slots", req, step_slots, &t,
                     NULL);
        json_decref(req);
    } else if (r == OPS_DONE && !strcmp(t.executor, "dry-run")) {
        json_t *cmds = tf_commands(j.dir, 0);
        size_t i;
        json_t *cmd;
        const char *names[] = {"init", "plan", "apply"};
        json_array_foreach(cmds, i, cmd) ops_plan(ctx, names[i], "terraform",
                                                  json_string_value(json_object_get(cmd,
                                                                                    "command")),
                                                  cmd);
        json_decref(cmds);
        final = "planned";
    } else if (r == OPS_DONE) {
        j.root = json_object_get(root, "main.tf.json");
        json_t *req = json_pack("{s:s}", "dir", j.dir);
        r = ops_step(ctx, "plan", "terraform", "terraform init, plan -out, show -json", req,
                     step_plan, &j, NULL);
        if (r == OPS_DONE)
            r = ops_step(ctx, "apply", "terraform", "terraform apply of the saved plan", req,
                         step_apply, &j, &outputs);
        json_decref(req);
        remove_tree(j.dir);
    }
    if (r == OPS_DONE) {
        finish_ready(c, &t, final, json_object_get(outputs, "outputs"));
        ops_set_output(ctx, json_pack("{s:s, s:s}", "compute_id", id, "state", final));
    } else if (r == OPS_FAIL) {
        set_failed(c, id, j.failed_step ? j.failed_step : "provision",
                   j.failure ? j.failure : "provisioning failed");
    }
    free(j.dir);
    free(j.failure);
    return r;
}

static ops_result delete_compute(ops_ctx *ctx)
{
    PGconn *c = ops_conn(ctx);
    const char *id = json_string_value(json_object_get(ops_input(ctx), "compute_id"));
    target t;
    if (!id || load_target(c, id, &t)) {
        ops_set_error(ctx, "no_compute", "the compute request no longer exists");
        return OPS_FAIL;
    }
    if (!strcmp(t.state, "deleted")) {
        ops_set_output(ctx, json_pack("{s:s, s:s}", "compute_id", id, "state", "deleted"));
        return OPS_DONE;
    }
    const char *module = compute_plan_module(t.kind);
    tf_job j = {.t = &t, .dir = workdir_of(id)};
    ops_result r = OPS_DONE;
    if (module && !strcmp(t.executor, "azure")) {
        compute_spec s = spec_of(&t);
        j.root = compute_plan_render(&s, cfg);
        json_t *req = json_pack("{s:s, s:O}", "dir", j.dir, "main.tf.json", j.root);
        r = ops_step(ctx, "destroy", "terraform", "terraform init, destroy -auto-approve", req,
                     step_destroy, &j, NULL);
        json_decref(req);
        json_decref(j.root);
        remove_tree(j.dir);
    } else if (module && !strcmp(t.executor, "dry-run")) {
        json_t *cmds = tf_commands(j.dir, 1);
        ops_plan(ctx, "destroy", "terraform", "terraform destroy -auto-approve",
                 json_array_get(cmds, 2));
        json_decref(cmds);
    } else {
        r = ops_step(ctx, "release", "local", "release local training slots", NULL, step_release,
                     &t, NULL);
    }
    if (r == OPS_DONE) {
        PQclear(db_exec(c,
                        "UPDATE compute_targets SET state = 'deleted', deleted_at = now(),"
                        " updated_at = now(), version = version + 1 WHERE id = $1::uuid",
                        1, (const char *[]){id}, NULL));
        ops_set_output(ctx, json_pack("{s:s, s:s}", "compute_id", id, "state", "deleted"));
    } else if (r == OPS_FAIL) {
        set_failed(c, id, "destroy", j.failure ? j.failure : "deletion failed");
    }
    free(j.dir);
    free(j.failure);
    return r;
}

int compute_expire_due(PGconn *conn)
{
    PGresult *r = db_exec(conn, "BEGIN", 0, NULL, NULL);
    if (!r)
        return -1;
    PQclear(r);
    r = db_exec(conn,
                "WITH due AS (SELECT id FROM compute_targets WHERE expires_at <= now()"
                " AND state IN ('ready', 'planned', 'failed') ORDER BY expires_at"
                " LIMIT 20 FOR UPDATE SKIP LOCKED)"
                " UPDATE compute_targets t SET state = 'deleting', updated_at = now(),"
                " version = t.version + 1 FROM due WHERE t.id = due.id"
                " RETURNING t.id::text, t.project_id, t.name",
                0, NULL, NULL);
    int n = r ? PQntuples(r) : -1;
    for (int i = 0; r && i < n; i++) {
        const char *id = PQgetvalue(r, i, 0);
        char subject[200], opsubject[200], op[37];
        snprintf(subject, sizeof subject, "compute/%s", id);
        snprintf(opsubject, sizeof opsubject, "projects/%s/compute/%s", PQgetvalue(r, i, 1), id);
        json_t *in = json_pack("{s:s, s:s}", "compute_id", id, "reason", "expired");
        int rc = ops_enqueue(conn, "compute.delete", opsubject, in, "system:expiry", 5, op);
        json_decref(in);
        PGresult *u = rc ? NULL
                         : db_exec(conn,
                                   "UPDATE compute_targets SET operation_id = $2::uuid"
                                   " WHERE id = $1::uuid",
                                   2, (const char *[]){id, op}, NULL);
        PGresult *a = u ? db_exec(conn,
                                  "INSERT INTO audit_log(actor_oid, actor_name, action, subject,"
                                  " outcome, reason) VALUES ('system', 'expiry', 'compute.expire',"
                                  " $1, 'succeeded', 'the compute reached its expiry')",
                                  1, (const char *[]){subject}, NULL)
                        : NULL;
        PQclear(u);
        if (!a) {
            n = -1;
            break;
        }
        PQclear(a);
        log_fields(LOG_INFO, "compute expired",
                   json_pack("{s:s, s:s, s:s, s:s}", "compute_id", id, "project",
                             PQgetvalue(r, i, 1), "name", PQgetvalue(r, i, 2), "operation_id",
                             op));
    }
    PQclear(r);
    PQclear(db_exec(conn, n < 0 ? "ROLLBACK" : "COMMIT", 0, NULL, NULL));
    return n;
}

static void expire_sweep(PGconn *conn)
{
    compute_expire_due(conn);
}

int compute_local_slots(PGconn *conn, const char *project)
{
    PGresult *r = db_exec(conn,
                          "SELECT coalesce(sum(max_nodes), 0) FROM compute_targets"
                          " WHERE project_id = $1 AND state = 'ready'"
                          " AND (kind = 'local' OR executor = 'local')",
                          1, (const char *[]){project}, NULL);
    long n = 0;
    if (r && PQntuples(r) == 1)
        parse_long(PQgetvalue(r, 0, 0), 0, 1000000, &n);
    PQclear(r);
    return (int)n;
}

void compute_ops_register(const config *c)
{
    cfg = c;
    ops_register("compute.provision", provision);
    ops_register("compute.delete", delete_compute);
    ops_register_periodic(expire_sweep);
}
