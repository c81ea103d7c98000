package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubearmor/kubearmor-host/enforcer/detect"
)

func newProbeCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Show what this host can enforce with, and why",
		Long: `Probes this host as the daemon does at start: kernel, BTF, the active LSMs,
whether BPF-LSM programs really attach, whether AppArmor works, and which
enforcer the daemon would choose, with the reason and how to enable what is
missing. Run it as root: loading the probe program needs privileges.`,
		Example: `  sudo karmor probe
  sudo karmor probe -o json | jq .Choice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := detect.Probe(cmd.Context())
			choice, err := detect.Choose(detect.ConfigAuto, r)
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Report detect.Report
					Choice detect.Choice
				}{r, choice})
			case "text":
				printProbe(cmd.OutOrStdout(), r, choice)
				return nil
			}
			return fmt.Errorf("-o: unknown format %q (text or json)", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printProbe(w io.Writer, r detect.Report, c detect.Choice) {
	lsms := strings.Join(r.LSMs, ",")
	if lsms == "" {
		lsms = "unknown: " + r.LSMError
	}
	fmt.Fprintf(w, "Kernel:      %s\n", r.KernelRelease)
	fmt.Fprintf(w, "BTF:         %v\n", r.BTF)
	fmt.Fprintf(w, "Active LSMs: %s\n", lsms)
	fmt.Fprintf(w, "BPF-LSM:     %s: %s\n", r.BPFLSM.Status, r.BPFLSM.Reason)
	fmt.Fprintf(w, "AppArmor:    %s: %s\n", r.AppArmor.Status, r.AppArmor.Reason)
	fmt.Fprintf(w, "Enforcer:    %s\n", c.Enforcer)
	fmt.Fprintf(w, "Why:         %s\n", c.Reason)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note:        %s\n", n)
	}
}
