// Package alertloss measures what an alert path loses: a generator makes a
// known number of policy violations at a fixed rate, each timed, and the
// benchmark (BenchmarkAlertLoss, in the QEMU guests: `make bench-loss`)
// sets what each path delivered and counted as lost against it, for
// BPF-LSM with its ring buffer and for AppArmor with the audit log and with
// the eBPF path, on the same rules. What is neither delivered nor counted
// was lost without a trace: the number the comparison is about.
package alertloss
