//go:build tools

// The release of Whereabouts the interop tests and benchmarks run beside whereabouts-ts.
package tools

import _ "github.com/k8snetworkplumbingwg/whereabouts/cmd"
