package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubearmor/kubearmor-host/cmd/karmor/internal/render"
	"github.com/kubearmor/kubearmor-host/enforcer/bpflsm"
	"github.com/kubearmor/kubearmor-host/enforcer/detect"
	"github.com/kubearmor/kubearmor-host/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with KubeArmorHostPolicy files",
		Example: `  karmor policy validate my-policy.yaml
  sudo karmor policy list
  sudo karmor policy status`,
	}
	cmd.AddCommand(newValidateCmd(), newPolicyListCmd(), newPolicyStatusCmd())
	return cmd
}

func newPolicyListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the policies in force, by file",
		Long: `Lists the policies of every file the daemon loaded from its policy
directory, and whether each selects this host.`,
		Example: `  sudo karmor policy list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := daemonProbe(cmd)
			if err != nil {
				return err
			}
			if len(p.PolicyFiles) == 0 {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "No policy files in %s.\n", p.PolicyDir)
				return err
			}
			return render.Policies(cmd.OutOrStdout(), p.PolicyFiles)
		},
	}
}

func newPolicyStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each policy file's status in the daemon",
		Long: `Shows each file of the policy directory as the daemon sees it: active, stale
(its latest version was refused; the last good one stays in force) or
rejected, with the error naming the file, line and field, and the policy set
in force. Exit status 1 when any file is stale or rejected.`,
		Example: `  sudo karmor policy status`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := daemonProbe(cmd)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Policy set %d in force: %d rules from %s, enforced by %s.\n\n", p.PolicyVersion, p.Rules, p.PolicyDir, p.Enforcer)
			if err := render.PolicyFiles(cmd.OutOrStdout(), p.PolicyFiles); err != nil {
				return err
			}
			for _, f := range p.PolicyFiles {
				if f.State != "active" {
					return exitError{exitFailed}
				}
			}
			return nil
		},
	}
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
				return exitError{exitFailed}
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
