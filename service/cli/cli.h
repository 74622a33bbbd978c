/* The recon5t command line: one function per subcommand, each taking its own argv (argv[0] is
 * the subcommand name) and returning the process exit status (0 ok, 1 failure, 2 usage). */
#ifndef R5_CLI_CLI_H
#define R5_CLI_CLI_H

int r5_cli_phantom(int argc, char **argv);
int r5_cli_mask(int argc, char **argv);
int r5_cli_recon(int argc, char **argv);
int r5_cli_compare(int argc, char **argv);
int r5_cli_send(int argc, char **argv);
/* recon5t send --protocol mrd (cmd_send_mrd.c); config_text: key=value lines, may be "" */
int r5_cli_send_mrd(const char *scan, const char *server, const char *out, const char *pipeline,
		    const char *config_text, int quiet);
int r5_cli_health(int argc, char **argv);
int r5_cli_openrecon_label(int argc, char **argv); /* cmd_openrecon.c */
int r5_cli_token(int argc, char **argv); /* cli_tls.c */
int r5_cli_seq_report(int argc, char **argv); /* cmd_seq_report.c */

#endif
