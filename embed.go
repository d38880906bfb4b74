// Package todogateway holds what the binary embeds from the repository root:
// the example configuration, which `todo-gateway serve` runs on when no
// --config is given.
package todogateway

import _ "embed"

// ExampleConfig is tenants.example.json, the configuration used when none is
// given. A test in package tenants keeps the file itself valid.
//
//go:embed tenants.example.json
var ExampleConfig []byte
