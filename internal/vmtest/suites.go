package vmtest

import "time"

// GuestPackages are the packages whose tests also run in the QEMU guests
// (TestGuests), as go package patterns relative to the module root. Add
// yours here; use testutils.RequireGuest in tests that only make sense
// there. Every one runs on every kernel; see README.md for where a new
// guest test goes and how long it may take.
var guestPackages = []string{
	"./enforcer/detect",
	"./enforcer/bpflsm",
	"./enforcer/apparmor",
	"./enforcer/alertloss",
	"./enforcer/overlaylayout",
	"./cmd/kubearmor",
}

// guestBinaries are programs built statically and installed in the guests
// for the guest tests to run.
var guestBinaries = []Binary{
	{Package: "./cmd/kubearmor", GuestPath: "/usr/local/bin/kubearmor"},
}

// guestFiles are host files the guest tests use: apparmor_parser (from the
// apparmor package), for the AppArmor enforcer's tests and benchmark;
// setpriv (util-linux), to run the daemon with only the unit's capabilities;
// head (coreutils), a dynamically linked program that reads a file, for the
// tests of programs the dynamic loader runs.
var guestFiles = []File{
	{HostPath: "/usr/sbin/apparmor_parser", GuestPath: "/usr/sbin/apparmor_parser", Libraries: true},
	{HostPath: "/usr/bin/setpriv", GuestPath: "/usr/bin/setpriv", Libraries: true},
	{HostPath: "/usr/bin/head", GuestPath: "/opt/dyn/head", Libraries: true},
}

// guestShares are the guest tests allowed more than DefaultShare, with
// what they were measured to take on a cold machine (make test, both
// kernels) and why they need it. None needs more today: the slowest,
// enforcer/bpflsm.TestSwapUnderLoad, stays under a minute.
var guestShares = map[string]time.Duration{}

// guestLimit is one busybox guest's limit. Measured on a cold machine
// (2026-12-03, make test with empty caches): 6m21s on 6.1, 5m34s on 6.12,
// so each guest has more than half of it to spare.
const guestLimit = 16 * time.Minute

// GuestSuite is what TestGuests runs: every guest package on every kernel.
func GuestSuite() Suite {
	return Suite{Name: "guests", Packages: guestPackages, Binaries: guestBinaries, Files: guestFiles,
		Shares: guestShares, Timeout: guestLimit}
}

// SystemSuite is what packaging/build's TestSystem runs: TestInstalledSystem
// in Debian 12 booted with systemd as PID 1, on bookworm's own kernel only
// (it tests the package and its unit, not the kernel). The caller adds the
// packages to install (Files).
//
// Its limit is 5 minutes: the guest took 2m03s on a cold machine
// (2026-12-03), of which 19 s to boot Debian to multi-user.target.
// TestInstalledSystem is one test of dependent steps (install, reload,
// kill -9 and systemd's restart, a process allow-list (two restarts), the
// AppArmor drop-in and back, remove, purge): it took 1m43s before the
// allow-list step, and its share is 3 minutes.
func SystemSuite() Suite {
	root := DefaultDebianRoot()
	return Suite{
		Name:     "system",
		Packages: []string{"./packaging/build"},
		Kernels:  DefaultKernelPackages()[:1],
		Run:      "^TestInstalledSystem$",
		Root:     &root,
		Timeout:  5 * time.Minute,
		Shares:   map[string]time.Duration{"packaging/build.TestInstalledSystem": 3 * time.Minute},
	}
}
