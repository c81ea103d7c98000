// Package daemon runs kubearmor: it chooses the enforcer, keeps the policy
// directory and the kernel in step, and turns the kernel's decisions into
// alerts.
//
// One goroutine, the reconcile loop, owns the policy loader and every call
// that changes kernel state (Apply); the enforcer's reader goroutine only
// reads events, and the pipeline goroutine only formats and writes alerts.
package daemon
