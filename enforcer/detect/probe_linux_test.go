//go:build linux

package detect

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// TestProbeCoherent checks Probe against what the test finds out on its own
// on this machine (host or guest): the same kernel, BTF and LSM list, and a
// BPF-LSM status that agrees with a direct load and attach. On the
// development host the kernel refuses BPF-LSM programs, so this is where
// NotSupported-with-the-kernel's-error is proven.
func TestProbeCoherent(t *testing.T) {
	r := Probe(t.Context())
	t.Logf("report: %+v", r)

	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(release)); r.KernelRelease != want {
		t.Errorf("KernelRelease = %q, want %q", r.KernelRelease, want)
	}
	_, err = os.Stat("/sys/kernel/btf/vmlinux")
	if r.BTF != (err == nil) {
		t.Errorf("BTF = %v, but stat /sys/kernel/btf/vmlinux: %v", r.BTF, err)
	}

	if r.LSMs == nil {
		if r.LSMError == "" {
			t.Error("LSM list unknown and LSMError empty")
		}
		if r.BPFLSM.Status != Inconclusive {
			t.Errorf("BPFLSM = %v with an unknown LSM list, want Inconclusive", r.BPFLSM.Status)
		}
	} else {
		data, err := os.ReadFile("/sys/kernel/security/lsm")
		if err != nil {
			t.Fatalf("Probe read an LSM list, but: %v", err)
		}
		if got, want := strings.Join(r.LSMs, ","), strings.TrimSpace(string(data)); got != want {
			t.Errorf("LSMs = %q, want %q", got, want)
		}
	}

	if r.BPFLSM.Reason == "" {
		t.Error("BPFLSM has no reason")
	}
	switch {
	case r.LSMs != nil && !r.HasLSM("bpf"):
		if r.BPFLSM.Status != NotSupported || !strings.Contains(r.BPFLSM.Reason, "lsm=") {
			t.Errorf("bpf is not an active LSM, but BPFLSM = %v (%s)", r.BPFLSM.Status, r.BPFLSM.Reason)
		}
	case r.LSMs != nil && r.BTF && canLoadLSMPrograms():
		// The probe must agree with doing it ourselves.
		direct := attachBPFLSM()
		t.Logf("direct BPF-LSM attach: %v", direct)
		if direct == nil && r.BPFLSM.Status != Supported {
			t.Errorf("a direct attach works, but BPFLSM = %v (%s)", r.BPFLSM.Status, r.BPFLSM.Reason)
		}
		if direct != nil {
			if r.BPFLSM.Status != NotSupported {
				t.Errorf("a direct attach fails (%v), but BPFLSM = %v (%s)", direct, r.BPFLSM.Status, r.BPFLSM.Reason)
			}
			if !strings.Contains(r.BPFLSM.Reason, direct.Error()) {
				t.Errorf("BPFLSM reason %q does not carry the kernel's error %q", r.BPFLSM.Reason, direct)
			}
		}
	}
	if !testutils.InGuest() && r.BPFLSM.Status == Supported {
		// Not a law of nature, but true of the development hosts this
		// project runs on; if it changes, the host tier can test enforcement.
		t.Logf("note: BPF-LSM is Supported on this host")
	}

	enabled, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if r.AppArmorEnabled != (strings.TrimSpace(string(enabled)) == "Y") {
		t.Errorf("AppArmorEnabled = %v, but the parameter is %q", r.AppArmorEnabled, enabled)
	}
	if r.AppArmor.Reason == "" {
		t.Error("AppArmor has no reason")
	}
	if r.AppArmor.Status == Supported && (!r.AppArmorEnabled || !r.HasLSM("apparmor") || r.AppArmorParser == "") {
		t.Errorf("AppArmor Supported, but enabled=%v listed=%v parser=%q", r.AppArmorEnabled, r.HasLSM("apparmor"), r.AppArmorParser)
	}

	c, err := Choose(ConfigAuto, r)
	if err != nil {
		t.Fatalf("Choose(auto): %v", err)
	}
	t.Logf("auto chooses %v: %s", c.Enforcer, c.Reason)
	if _, err := Choose(ConfigBPFLSM, r); (err == nil) != (r.BPFLSM.Status == Supported) {
		t.Errorf("Choose(bpflsm) error = %v with BPFLSM %v", err, r.BPFLSM.Status)
	}
}

// TestProbeHostRefusesBPFLSM pins down the development host: bpf is in its
// LSM list, but the kernel refuses BPF-LSM programs, so Probe must not
// claim support. Skipped where a direct attach works.
func TestProbeHostRefusesBPFLSM(t *testing.T) {
	if testutils.InGuest() {
		t.Skip("the guests support BPF-LSM; see TestProbeGuest")
	}
	testutils.RequireRoot(t)
	r := Probe(t.Context())
	if r.BPFLSM.Status == Supported {
		if err := attachBPFLSM(); err == nil {
			t.Skip("BPF-LSM works on this host")
		}
		t.Fatalf("BPFLSM = Supported (%s), but a direct attach fails", r.BPFLSM.Reason)
	}
	if r.BPFLSM.Reason == "" {
		t.Fatalf("BPFLSM = %v without a reason", r.BPFLSM.Status)
	}
	t.Logf("BPFLSM = %v: %s", r.BPFLSM.Status, r.BPFLSM.Reason)
	if _, err := Choose(ConfigBPFLSM, r); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Choose(bpflsm) error = %v, want ErrUnavailable", err)
	}
}

// TestProbeGuest runs in the QEMU guests, whose kernels boot with bpf and
// apparmor in lsm=: BPF-LSM must be Supported and chosen by auto.
func TestProbeGuest(t *testing.T) {
	testutils.RequireGuest(t)
	r := Probe(t.Context())
	t.Logf("kernel %s, LSMs %v, BTF %v", r.KernelRelease, r.LSMs, r.BTF)
	if !r.HasLSM("bpf") || !r.HasLSM("apparmor") {
		t.Errorf("LSMs = %v (%s), want bpf and apparmor", r.LSMs, r.LSMError)
	}
	if !r.BTF {
		t.Error("no BTF in the guest kernel")
	}
	if r.BPFLSM.Status != Supported {
		t.Fatalf("BPFLSM = %v: %s", r.BPFLSM.Status, r.BPFLSM.Reason)
	}
	if !r.AppArmorEnabled {
		t.Errorf("AppArmor is not enabled in the guest: %s", r.AppArmor.Reason)
	}
	c, err := Choose(ConfigAuto, r)
	if err != nil || c.Enforcer != BPFLSM {
		t.Fatalf("Choose(auto) = %v, %v; want BPFLSM", c, err)
	}
	t.Logf("auto: %s", c.Reason)
}
