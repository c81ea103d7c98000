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
		return bpflsm.Load(bpflsm.Options{Logger: log, PinDir: cfg.BPFPinPath})
	case detect.AppArmor:
		return apparmor.Load(apparmor.Options{Logger: log})
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
