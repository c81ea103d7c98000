package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubearmor/kubearmor-host/enforcer/bpflsm"
	"github.com/kubearmor/kubearmor-host/enforcer/detect"
	"github.com/kubearmor/kubearmor-host/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Work with KubeArmorHostPolicy files"}
	cmd.AddCommand(newValidateCmd())
	return cmd
}

func newValidateCmd() *cobra.Command {
	var enforcerFlag, hostName string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check policy files with the daemon's own checks",
		Long: `Parses and validates each file exactly as the daemon does, including whether
the BPF-LSM enforcer can enforce every rule (--enforcer=none checks only what
observe-only mode needs). Errors name the file, line and field. Exit status: 0
when every file is good, 1 when any is not, 2 on usage errors.`,
		Example: `  karmor policy validate /etc/kubearmor/policies/*.yaml
  karmor policy validate --enforcer=bpflsm my-policy.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hostName == "" {
				hostName, _ = os.Hostname()
			}
			check, err := enforcerCheck(enforcerFlag)
			if err != nil {
				return err
			}
			if !validate(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, policy.Host{Name: hostName}, check) {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&enforcerFlag, "enforcer", detect.ConfigBPFLSM, "check against this enforcer: bpflsm or none")
	cmd.Flags().StringVar(&hostName, "hostName", "", "host name for nodeSelector checks (default: this host's)")
	return cmd
}

// enforcerCheck returns the compile check of an enforcer, or nil for
// observe-only, which accepts every valid rule. It does not probe the host:
// a file that passes here passes on every host this release supports.
func enforcerCheck(configured string) (func(*policy.Set) error, error) {
	switch configured {
	case detect.ConfigBPFLSM:
		return func(s *policy.Set) error { _, err := bpflsm.Compile(s); return err }, nil
	case detect.ConfigNone:
		return nil, nil
	}
	return nil, fmt.Errorf("--enforcer: %w %q (bpflsm or none)", detect.ErrUnknownEnforcer, configured)
}

// validate checks the files together, as the daemon loads a directory, and
// reports per file. It returns whether all were good.
func validate(out, errOut io.Writer, files []string, host policy.Host, check func(*policy.Set) error) bool {
	ok := true
	var docs []*policy.Document
	for _, f := range files {
		d, err := policy.ParseFile(f)
		if err != nil {
			ok = false
			fmt.Fprintln(errOut, err)
			continue
		}
		for _, doc := range d {
			if selected, why := doc.Selector.Selects(host); !selected {
				fmt.Fprintf(errOut, "%s:%d: warning: policy %s would not apply to host %q: %s\n", doc.File, doc.Line, doc.Name, host.Name, why)
			}
		}
		docs = append(docs, d...)
	}
	set, err := policy.NewSet(1, policy.Postures{File: policy.PostureAudit, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}, docs)
	if err == nil && check != nil {
		err = check(set)
	}
	if err != nil {
		ok = false
		fmt.Fprintln(errOut, err)
	}
	if ok {
		n := 0
		if set != nil {
			n = set.Len()
		}
		fmt.Fprintf(out, "%d file(s) valid: %d policies, %d rules\n", len(files), len(docs), n)
	}
	return ok
}
