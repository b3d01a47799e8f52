/* The request-time rules of training runs. */
#include "trainer/train_params.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum { P_INT, P_NUM, P_OBJECTIVE } param_kind;

typedef struct {
    const char *name;
    param_kind kind;
    double min, max;
    int min_open; /* min excluded */
} param_rule;

/* The xgboost parameters `roastery train --params` accepts. */
static const param_rule xgb_rules[] = {
    {"max_depth", P_INT, 1, 20, 0},
    {"eta", P_NUM, 0, 1, 1},
    {"num_round", P_INT, 1, 5000, 0},
    {"subsample", P_NUM, 0, 1, 1},
    {"colsample_bytree", P_NUM, 0, 1, 1},
    {"min_child_weight", P_NUM, 0, 1e6, 0},
    {"lambda", P_NUM, 0, 1e6, 0},
    {"alpha", P_NUM, 0, 1e6, 0},
    {"max_bin", P_INT, 16, 1024, 0},
    {"early_stopping_rounds", P_INT, 1, 1000, 0},
    {"objective", P_OBJECTIVE, 0, 0, 0},
};

static const char *const objectives[] = {"reg:squarederror", "reg:tweedie", "count:poisson",
                                         "reg:pseudohubererror", NULL};

int train_params_check(const char *algorithm, json_t *params, char *field, size_t fieldlen,
                       char *reason, size_t reasonlen)
{
    const char *key;
    json_t *v;
    int xgb = !strcmp(algorithm, "xgboost");
    json_object_foreach(params, key, v)
    {
        snprintf(field, fieldlen, "params.%s", key);
        if (!xgb) {
            snprintf(reason, reasonlen, "%s takes no parameters", algorithm);
            return 1;
        }
        const param_rule *rule = NULL;
        for (size_t i = 0; i < sizeof xgb_rules / sizeof xgb_rules[0]; i++)
            if (!strcmp(xgb_rules[i].name, key))
                rule = &xgb_rules[i];
        if (!rule) {
            snprintf(reason, reasonlen,
                     "is not an xgboost parameter of this trainer (max_depth, eta, num_round, "
                     "subsample, colsample_bytree, min_child_weight, lambda, alpha, max_bin, "
                     "early_stopping_rounds, objective)");
            return 1;
        }
        if (rule->kind == P_OBJECTIVE) {
            const char *s = json_string_value(v);
            int ok = 0;
            for (int i = 0; s && objectives[i]; i++)
                ok |= !strcmp(s, objectives[i]);
            if (!ok) {
                snprintf(reason, reasonlen,
                         "must be reg:squarederror, reg:tweedie, count:poisson or "
                         "reg:pseudohubererror");
                return 1;
            }
            continue;
        }
        if (rule->kind == P_INT && !json_is_integer(v)) {
            snprintf(reason, reasonlen, "must be an integer from %.0f to %.0f", rule->min,
                     rule->max);
            return 1;
        }
        if (!json_is_number(v)) {
            snprintf(reason, reasonlen, "must be a number");
            return 1;
        }
        double x = json_number_value(v);
        if (!isfinite(x) || x > rule->max || x < rule->min || (rule->min_open && x == rule->min)) {
            snprintf(reason, reasonlen, "must be %s %g and at most %g",
                     rule->min_open ? "more than" : "at least", rule->min, rule->max);
            return 1;
        }
    }
    return 0;
}

long train_min_days(int horizon, int backtest_days, int rolling_origins)
{
    (void)rolling_origins; /* origins step back inside the backtest window */
    /* same weekday last year (364) ± 3 days of rolling window, a 28-day
     * validation window before the backtest, then the backtest itself */
    return 364 + 3 + 28 + (horizon > 28 ? horizon : 28) + backtest_days;
}
