/* `roastery train`: the demand-forecasting trainer (xgboost, seasonal_naive,
 * moving_average) with its backtest, as one child process of the server or
 * of an Azure ML job. The contract (flags, outputs, events, exit codes) is
 * in docs/trainer.md. */
#ifndef ROASTERY_TRAINER_H
#define ROASTERY_TRAINER_H

/* Exit statuses. */
#define TRAINER_EXIT_OK 0
#define TRAINER_EXIT_FAILED 1
#define TRAINER_EXIT_USAGE 2
#define TRAINER_EXIT_DATA 3 /* the data cannot support the request */

/* Runs "roastery train ..." (argv[0] is "train"; argv is borrowed) and returns
 * the process exit status; 128 + the signal number when SIGTERM or SIGINT
 * stopped it. Writes JSON events to stdout and diagnostics to stderr. */
int trainer_main(int argc, char **argv);

#endif
