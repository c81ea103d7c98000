// Package policy parses, validates and compiles KubeArmorHostPolicy YAML into
// the product's one policy model: an immutable, versioned [Set] of [Rule]s.
//
// Everything here is pure: no kernel, no daemon state. The BPF-LSM and AppArmor
// compilers and the reference matcher (package policy/match) all read the same
// Set, so what a rule means is decided in exactly one place.
//
// Parsing is strict: unknown fields, wrong types, YAML anchors and duplicate
// keys are errors, and every error names the file, the line and the field, so
// an administrator can fix a policy without guessing.
package policy
