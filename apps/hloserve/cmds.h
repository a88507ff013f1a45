/* cmds.h - the subcommands of `hloserve`; each returns the process exit code. */
#ifndef HLOSERVE_APPS_CMDS_H
#define HLOSERVE_APPS_CMDS_H

int hs_cmd_check_hlo(int argc, char **argv);
int hs_cmd_run_hlo(int argc, char **argv);
int hs_cmd_serve(int argc, char **argv);
int hs_cmd_infer(int argc, char **argv);

#endif
