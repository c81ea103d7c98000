// Package denials reports what the kernel's LSMs refused, seen by fexit
// programs at the exit of security_file_open, security_bprm_creds_for_exec,
// the security_path_* operations, security_socket_create and
// security_capable (bpf/denials.bpf.c). It is the
// eBPF alert path of an enforcer whose decisions no program of ours makes,
// AppArmor's: a refusal there is an LSM's, not a permission bit's, and the
// file is the kernel's own object, so its path is resolved.
//
// It says what was refused and by whom, not which rule refused it: the
// enforcer attributes each refusal with the reference matcher. Every
// refusal is either delivered or counted where it was dropped (Stats).
package denials
