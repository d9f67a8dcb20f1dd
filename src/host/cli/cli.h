/* thaw's subcommands, one file each. */
#ifndef THAW_CLI_H
#define THAW_CLI_H

int cmd_run(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_pager(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_trace_gen(int argc, char **argv);
int cmd_keepalive_sim(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_serve(int argc, char **argv);
/* deploy, invoke, ls, rm, stats, logs: the daemon's client (argv[0] says which). */
int cmd_client(int argc, char **argv);

#endif
