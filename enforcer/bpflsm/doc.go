// Package bpflsm enforces a policy.Set with BPF-LSM: the rules are compiled
// into BPF maps (compile.go, pure), and fixed programs in bpf/lsm.bpf.c decide
// in the kernel's LSM hooks (enforcer_linux.go, the thin kernel layer).
package bpflsm
