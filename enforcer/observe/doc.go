// Package observe is the enforcer for hosts with no usable LSM: it cannot
// stop anything, so it says so, and still shows the policy working. Exec
// events come from tracepoints (bpf/monitor.bpf.c); a process table gives
// each exec its caller's executable; the reference matcher decides; and what
// would have been blocked is alerted as "Audit (Block)".
package observe
