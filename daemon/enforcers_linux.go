//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/kubearmor/kubearmor-host/daemon/config"
	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/apparmor"
	"github.com/kubearmor/kubearmor-host/enforcer/bpflsm"
	"github.com/kubearmor/kubearmor-host/enforcer/detect"
	"github.com/kubearmor/kubearmor-host/enforcer/observe"
)

// LoadEnforcer starts the enforcer detect chose.
func LoadEnforcer(e detect.Enforcer, cfg config.Config, log *slog.Logger) (enforcer.Enforcer, error) {
	switch e {
	case detect.BPFLSM:
		if cfg.AlertSource != enforcer.AlertEBPF {
			log.Warn("alertSource applies to the AppArmor enforcer only: BPF-LSM denials make no audit records, its alerts come from its own programs",
				"alertSource", string(cfg.AlertSource))
		}
		userns, err := bpflsm.ParseUserNS(cfg.UnprivilegedUserNamespaces)
		if err != nil {
			return nil, err
		}
		return bpflsm.Load(bpflsm.Options{Logger: log, PinDir: cfg.BPFPinPath, UserNamespaces: userns})
	case detect.AppArmor:
		e, err := apparmor.Load(apparmor.Options{Logger: log, Source: cfg.AlertSource})
		if err != nil {
			return nil, err
		}
		if e.Source() != "" {
			log.Info("AppArmor alerts", "alertSource", string(e.Source()))
		}
		return e, nil
	case detect.None:
		return observe.Load(log)
	}
	return nil, fmt.Errorf("no %s enforcer in this release", e)
}

// CleanupAppArmor removes the AppArmor enforcer's profiles left in the
// kernel, if AppArmor is there (kubearmor --cleanup).
func CleanupAppArmor() ([]string, error) {
	removed, err := apparmor.RemoveProfiles()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no AppArmor (or no securityfs): nothing of ours
	}
	return removed, err
}

// retireOthers deals with what a previous daemon's other enforcer left in
// the kernel, once this daemon's enforcer has its first set in force and
// pinned: after a switch both would decide, the stale one with a set no
// reload updates any more. BPF-LSM decides for every process, so it
// retires AppArmor's profiles. AppArmor confines only programs started
// after its profiles load, and observe-only enforces nothing: removing
// BPF-LSM's pins would leave every running process, or all of them,
// unenforced, so they stay, said loudly (a deliberate stop of the service
// before the switch, or kubearmor --cleanup, removes them).
func retireOthers(chosen detect.Enforcer, pinPath string, log *slog.Logger) {
	if chosen == detect.BPFLSM {
		removed, err := CleanupAppArmor()
		for _, p := range removed {
			log.Info("removed the AppArmor profile a previous daemon left: BPF-LSM enforces now", "profile", p)
		}
		if err != nil {
			log.Error("AppArmor profiles a previous daemon left still enforce its last set", "error", err)
		}
		return
	}
	if entries, _ := os.ReadDir(pinPath); len(entries) > 0 {
		log.Warn("a previous daemon's pinned BPF-LSM programs keep enforcing its last set beside this daemon's; they are left so that running processes stay enforced (kubearmor --cleanup removes them)",
			"pins", pinPath, "enforcer", chosen.String())
	}
	if chosen == detect.None {
		if profiles, _ := apparmor.Loaded(); len(profiles) > 0 {
			log.Warn("a previous daemon's AppArmor profiles keep enforcing its last set; observe-only cannot replace them (kubearmor --cleanup removes them)", "profiles", profiles)
		}
	}
}
