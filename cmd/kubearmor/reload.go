package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/api/client"
)

// Reload timing: how often the daemon's counter is read, and how long a
// rescan may take (the unit's TimeoutStartSec= bounds it too).
const (
	reloadPoll    = 50 * time.Millisecond
	reloadTimeout = 60 * time.Second
)

// errRejected makes the reload fail, so that systemctl reload says so, when
// a policy file was refused (what was in force for it stays).
var errRejected = errors.New("policy files were rejected; see above")

// errReloadFailed: the rescan failed as a whole; the set above stays.
var errReloadFailed = errors.New("the daemon could not apply the policy directory; the set above stays in force (see the daemon's log)")

// reload signals the daemon at pid with SIGHUP and waits until it has
// rescanned its policy directory (its policy/reloads counter moved): the
// SIGHUP alone returns at once, and systemd 252 takes ExecReload='s exit as
// the end of the reload, so that systemctl reload would return before
// the new set is in force.
func reload(ctx context.Context, socket string, pid int, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	c, err := client.Dial(socket)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	defer c.Close()
	before, err := c.Probe(ctx)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload: signal %d: %w", pid, err)
	}
	tick := time.NewTicker(reloadPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("reload: the daemon did not rescan its policies within %v", reloadTimeout)
		case <-tick.C:
		}
		after, err := c.Probe(ctx)
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		if after.Counter("policy", "reloads") == before.Counter("policy", "reloads") {
			continue
		}
		fmt.Fprintf(out, "policy set %d in force: %d rules with %s\n", after.PolicyVersion, after.Rules, after.Enforcer)
		if after.Counter("policy", "reload_failures") != before.Counter("policy", "reload_failures") {
			// The directory could not be read or the enforcer refused the
			// set: the daemon's log says which.
			return errReloadFailed
		}
		rejected := false
		for _, f := range after.PolicyFiles {
			if f.Error != "" {
				rejected = true
				fmt.Fprintf(out, "%s: %s: %s\n", f.Path, f.State, f.Error)
			}
		}
		if rejected {
			return errRejected
		}
		return nil
	}
}
