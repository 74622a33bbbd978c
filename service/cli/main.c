/* recon5t: the command-line client. Subcommands are thin layers over library calls:
 *   phantom  write a numerical phantom scan as ISMRMRD (phantoms/)
 *   mask     write a ky-kz sampling mask as a BART .cfl (variable-density Poisson disc)
 *   recon    reconstruct an ISMRMRD or BART .cfl scan offline (recon/pipeline)
 *   compare  NRMSE / PSNR / SSIM of an image against a reference
 *   send     stream a scan to a recon5td server and save what comes back
 *   health   ask a server whether it is serving (grpc.health.v1)
 *   seq-report  what a Pulseq sequence samples and how recon5t would reconstruct it */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "recon/cpu/omp_env.h"

static void usage(FILE *out)
{
	fprintf(out,
		"recon5t %s: MRI reconstruction client\n"
		"usage: recon5t <command> [options]\n"
		"  phantom  --kind shepp-logan|shepp-logan-3d --matrix N[,N[,N]] --coils C --out f.h5 ...\n"
		"  mask     --poisson --accel R --calib N --seed S --dims Y,Z --out mask.cfl\n"
		"  recon    IN(.h5|.cfl) --out OUT(.h5|.cfl) [--png DIR] [--dicom DIR] [--backend cpu|gpu|auto]\n"
		"  compare  REF IMG [--scale]\n"
		"  send     SCAN.h5 --server HOST:PORT --out DIR\n"
		"  health   [--server HOST:PORT]\n"
		"  seq-report FILE.seq [--json] [--png FILE.png] [--png-size N] [--check-auto]\n"
		"  openrecon-label [--name N --version V] [--out FILE] [--base64]\n"
		"Run 'recon5t <command> --help' for a command's options.\n",
		R5_VERSION);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} commands[] = {
		{"phantom", r5_cli_phantom},
		{"mask", r5_cli_mask},
		{"recon", r5_cli_recon},
		{"compare", r5_cli_compare},
		{"send", r5_cli_send},
		{"health", r5_cli_health},
		{"token", r5_cli_token},
		{"openrecon-label", r5_cli_openrecon_label},
		{"seq-report", r5_cli_seq_report},
	};
	r5_cpu_passive_wait_reexec(argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("recon5t %s\n", R5_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "recon5t: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
