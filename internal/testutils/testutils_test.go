package testutils

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	os.Exit(RunWithLeakCheck(m))
}

func TestInGuest(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"1", true},
		{"", false},
		{"0", false},
		{"yes", false},
	}
	for _, tt := range tests {
		t.Run("value="+tt.value, func(t *testing.T) {
			t.Setenv(GuestEnv, tt.value)
			if got := InGuest(); got != tt.want {
				t.Errorf("InGuest() with %s=%q = %v, want %v", GuestEnv, tt.value, got, tt.want)
			}
		})
	}
}

func TestRequireFeatureNil(t *testing.T) {
	// A nil error means the feature is there: the test goes on.
	RequireFeature(t, "nothing", nil)
}
