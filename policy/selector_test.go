package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestSelectorSelects(t *testing.T) {
	host := Host{Name: "web1", Labels: map[string]string{"env": "prod", "zone": "a"}}
	tests := []struct {
		name   string
		labels map[string]string
		host   Host
		want   bool
		reason string
	}{
		{name: "no selector means this host", labels: nil, host: host, want: true},
		{name: "no selector, host without labels", labels: map[string]string{}, host: Host{}, want: true},

		{name: "hostname exact", labels: map[string]string{LabelHostname: "web1"}, host: host, want: true},
		{name: "hostname in another case", labels: map[string]string{LabelHostname: "WEB1"}, host: host, want: true},
		{name: "hostname is not a prefix match", labels: map[string]string{LabelHostname: "web"}, host: host,
			reason: `nodeSelector kubearmor.io/hostname=web does not name this host "web1"`},
		{name: "hostname is not a suffix match", labels: map[string]string{LabelHostname: "web1"}, host: Host{Name: "web10"},
			reason: `nodeSelector kubearmor.io/hostname=web1 does not name this host "web10"`},
		{name: "hostname star", labels: map[string]string{LabelHostname: "*"}, host: host, want: true},
		{name: "hostname star in a list", labels: map[string]string{LabelHostname: "db1,*"}, host: host, want: true},
		{name: "hostname star is not a glob", labels: map[string]string{LabelHostname: "web*"}, host: host,
			reason: `nodeSelector kubearmor.io/hostname=web* does not name this host "web1"`},
		{name: "hostname list with spaces", labels: map[string]string{LabelHostname: "db1, web1 ,db2"}, host: host, want: true},
		{name: "hostname list without this host", labels: map[string]string{LabelHostname: "db1,db2"}, host: host,
			reason: `nodeSelector kubearmor.io/hostname=db1,db2 does not name this host "web1"`},
		{name: "kubernetes hostname alias", labels: map[string]string{LabelK8sHostname: "web1"}, host: host, want: true},
		{name: "kubernetes hostname alias, other host", labels: map[string]string{LabelK8sHostname: "db1"}, host: host,
			reason: `nodeSelector kubernetes.io/hostname=db1 does not name this host "web1"`},
		{name: "both hostname labels must match", labels: map[string]string{LabelHostname: "web1", LabelK8sHostname: "db1"}, host: host,
			reason: `nodeSelector kubernetes.io/hostname=db1 does not name this host "web1"`},

		{name: "hostnamereg anchored", labels: map[string]string{LabelHostnameRegex: "^web[0-9]+$"}, host: host, want: true},
		{name: "hostnamereg is unanchored", labels: map[string]string{LabelHostnameRegex: "eb"}, host: host, want: true},
		{name: "hostnamereg unanchored matches inside", labels: map[string]string{LabelHostnameRegex: "web"}, host: Host{Name: "myweb2"}, want: true},
		{name: "hostnamereg no match", labels: map[string]string{LabelHostnameRegex: "^db"}, host: host,
			reason: `nodeSelector kubearmor.io/hostnamereg=^db does not match this host "web1"`},
		{name: "hostnamereg is case-sensitive", labels: map[string]string{LabelHostnameRegex: "WEB"}, host: host,
			reason: `nodeSelector kubearmor.io/hostnamereg=WEB does not match this host "web1"`},
		{name: "hostnamereg and hostname together", labels: map[string]string{LabelHostnameRegex: "^web", LabelHostname: "web1"}, host: host, want: true},

		{name: "other label matches", labels: map[string]string{"env": "prod"}, host: host, want: true},
		{name: "other labels all match", labels: map[string]string{"env": "prod", "zone": "a", LabelHostname: "web1"}, host: host, want: true},
		{name: "other label differs", labels: map[string]string{"env": "dev"}, host: host,
			reason: "nodeSelector env=dev does not match this host's env=prod"},
		{name: "other label values are case-sensitive", labels: map[string]string{"env": "Prod"}, host: host,
			reason: "nodeSelector env=Prod does not match this host's env=prod"},
		{name: "other label missing", labels: map[string]string{"rack": "12"}, host: host,
			reason: "nodeSelector label rack is not set on this host (see the nodeLabels setting)"},
		{name: "empty label value needs the label set", labels: map[string]string{"rack": ""}, host: host,
			reason: "nodeSelector label rack is not set on this host (see the nodeLabels setting)"},
		{name: "first failing label in key order is reported", labels: map[string]string{"zone": "b", "env": "dev", LabelHostname: "db1"}, host: host,
			reason: "nodeSelector env=dev does not match this host's env=prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &errs{file: "s.yaml"}
			s := compileSelector(NodeSelector{MatchLabels: tt.labels}, e, "spec.nodeSelector")
			if err := e.err(); err != nil {
				t.Fatalf("compileSelector: %v", err)
			}
			if s.Empty() != (len(tt.labels) == 0) {
				t.Errorf("Empty() = %v with %d labels", s.Empty(), len(tt.labels))
			}
			ok, why := s.Selects(tt.host)
			if ok != tt.want || why != tt.reason {
				t.Errorf("Selects(%+v) = %v, %q; want %v, %q", tt.host, ok, why, tt.want, tt.reason)
			}
		})
	}
}

func TestSelectorString(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{LabelHostname: "a,b"}, "kubearmor.io/hostname=a,b"},
		{map[string]string{"z": "1", "a": "2", LabelHostnameRegex: "^w"}, "a=2,kubearmor.io/hostnamereg=^w,z=1"},
	}
	for _, tt := range tests {
		s := compileSelector(NodeSelector{MatchLabels: tt.labels}, &errs{}, "spec.nodeSelector")
		if got := s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// TestSelectorFromPolicy goes through Parse: the selector a document carries
// is the one written in its nodeSelector.
func TestSelectorFromPolicy(t *testing.T) {
	tests := []struct {
		name   string
		labels []string
		hosts  map[string]bool
	}{
		{"none", nil, map[string]bool{"a": true, "b": true}},
		{"list", []string{"kubearmor.io/hostname: a, c"}, map[string]bool{"a": true, "b": false, "c": true}},
		{"regex", []string{`kubearmor.io/hostnamereg: "^(a|b)$"`}, map[string]bool{"a": true, "b": true, "ab": false}},
		{"numbers are label strings", []string{"rack: 12"}, map[string]bool{"a": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []string
			if tt.labels != nil {
				body = append(body, "  nodeSelector:", "    matchLabels:")
				for _, l := range tt.labels {
					body = append(body, "      "+l)
				}
			}
			docs := mustParse(t, "s.yaml", spec(slices.Concat(body, procRule)...))
			sel := docs[0].Selector
			for h, want := range tt.hosts {
				if ok, why := sel.Selects(Host{Name: h, Labels: map[string]string{"rack": "12"}}); ok != want {
					t.Errorf("Selects(%s) = %v (%s), want %v", h, ok, why, want)
				}
			}
			if strings.Contains(tt.name, "none") && !sel.Empty() {
				t.Errorf("selector %q not empty", sel)
			}
		})
	}
}
