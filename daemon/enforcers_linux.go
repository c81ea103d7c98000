//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

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
		return bpflsm.Load(bpflsm.Options{Logger: log, PinDir: cfg.BPFPinPath})
	case detect.AppArmor:
		e, err := apparmor.Load(apparmor.Options{Logger: log, Source: cfg.AlertSource})
		if err != nil {
			return nil, err
		}
		log.Info("AppArmor alerts", "alertSource", string(e.Source()))
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
