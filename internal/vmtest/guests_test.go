package vmtest

import "testing"

// guestPackages are the packages whose tests also run in the QEMU guests,
// as go package patterns relative to the module root. Add yours here; use
// testutils.RequireGuest in tests that only make sense there.
var guestPackages = []string{
	"./enforcer/detect",
	"./enforcer/bpflsm",
	"./enforcer/apparmor",
	"./enforcer/alertloss",
	"./cmd/kubearmor",
}

// guestBinaries are programs built statically and installed in the guests
// for the guest tests to run (e.g. {"./cmd/kubearmor", "/usr/local/bin/kubearmor"}).
var guestBinaries = []Binary{
	{Package: "./cmd/kubearmor", GuestPath: "/usr/local/bin/kubearmor"},
}

// guestFiles are host files the guest tests use: apparmor_parser (from the
// apparmor package), for the AppArmor side of the enforcement benchmark;
// setpriv (util-linux), to run the daemon with only the unit's capabilities.
var guestFiles = []File{
	{HostPath: "/usr/sbin/apparmor_parser", GuestPath: "/usr/sbin/apparmor_parser", Libraries: true},
	{HostPath: "/usr/bin/setpriv", GuestPath: "/usr/bin/setpriv", Libraries: true},
}

// TestGuests boots every kernel (KernelPackages) and runs the guest
// packages' tests there, as subtests <kernel release>/<package dir>/<test>.
// It needs root and qemu-system-x86_64; allow it several minutes
// (go test -timeout 30m), see README.md.
func TestGuests(t *testing.T) {
	RunTests(t, Suite{Packages: guestPackages, Binaries: guestBinaries, Files: guestFiles})
}
