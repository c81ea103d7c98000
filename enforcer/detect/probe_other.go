//go:build !linux

package detect

import "context"

// Probe reports that nothing is supported: BPF-LSM and AppArmor are Linux's.
func Probe(ctx context.Context) Report {
	const reason = "not Linux"
	return Report{
		LSMError: reason,
		BPFLSM:   Feature{Status: NotSupported, Reason: reason},
		AppArmor: Feature{Status: NotSupported, Reason: reason},
	}
}
