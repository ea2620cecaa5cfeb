// What the forwarder says on its own, in the words the TypeScript plugin uses: the VERSION answer (the same
// list as src/cni/versions.ts) and CNI error objects (code, msg, details; never a stack trace, never the
// network configuration's content).

package main

import (
	"bytes"
	"encoding/json"
)

// supportedVersions is src/cni/versions.ts's list; a Go test checks that the two agree.
var supportedVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

const latestVersion = "1.1.0"

// CNI error codes (CNI specification 1.1, "Error"), as src/errors.ts names them.
const (
	codeIoFailure     = 5
	codeInvalidConfig = 7
	codeTryAgainLater = 11
	codeInternal      = 999
)

var titles = map[int]string{
	codeIoFailure:     "I/O failure",
	codeInvalidConfig: "Invalid network configuration",
	codeTryAgainLater: "Try again later",
	codeInternal:      "Internal error",
}

// marshal writes JSON as JavaScript's JSON.stringify does (no HTML escaping), with a final newline.
func marshal(value any) string {
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		// Only strings, numbers and lists of them are encoded here: this cannot happen.
		return "{}\n"
	}
	return out.String()
}

// answerVersion is the cniVersion of the configuration on stdin when it is one we speak, else the latest.
func answerVersion(stdin []byte) string {
	var conf map[string]json.RawMessage
	if json.Unmarshal(stdin, &conf) != nil {
		return latestVersion
	}
	var version string
	if json.Unmarshal(conf["cniVersion"], &version) != nil {
		return latestVersion
	}
	for _, v := range supportedVersions {
		if v == version {
			return version
		}
	}
	return latestVersion
}

// versionAnswer is the VERSION result.
func versionAnswer(stdin []byte) string {
	return marshal(struct {
		CniVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}{answerVersion(stdin), supportedVersions})
}

// cniError is a CNI error object, key order as the TypeScript plugin prints it.
func cniError(version string, code int, details string) string {
	return marshal(struct {
		CniVersion string `json:"cniVersion"`
		Code       int    `json:"code"`
		Msg        string `json:"msg"`
		Details    string `json:"details"`
	}{version, code, titles[code], details})
}
