// Package vmtest runs Go tests inside QEMU guests that boot real Debian
// kernels, to prove behaviour this host's kernel cannot show (BPF-LSM
// enforcement, AppArmor): the development host refuses BPF-LSM programs.
//
// The pieces, each usable alone:
//   - FetchKernel downloads a Debian kernel image package with apt-get and
//     caches its vmlinuz under CacheDir()/vm/kernels/<package>_<version>/.
//   - BuildInitramfs writes a newc cpio with static busybox (applets as hard
//     links in /bin, so /bin/sleep execs as /bin/sleep), an /init that mounts
//     devtmpfs, proc, sysfs, securityfs, bpffs, tracefs, cgroup2 and tmpfs,
//     brings up lo, runs the commands and powers off, and the caller's files.
//   - FetchDebianRoot and BuildSystemImage make the other kind of guest: a
//     debootstrap'd Debian system booted with systemd as PID 1, which runs
//     the commands from a unit once it is up (Suite.Root).
//   - Machine.Run boots it under TCG, reads the commands' outputs from the
//     second serial port (the first is the kernel console) and fails on a
//     panic, a timeout or a guest that stops early.
//   - RunTests builds test binaries statically, runs them in every kernel's
//     guest with KUBEARMOR_VMTEST=1, and reports every guest test as a
//     subtest of the host test.
//
// TestGuests (guests_test.go) lists the packages whose tests run in the
// guests; see README.md for how to run them.
package vmtest
