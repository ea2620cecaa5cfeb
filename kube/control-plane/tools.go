//go:build tools

// The commands this module builds; the build tag keeps it out of any ordinary build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
