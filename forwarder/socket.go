// Where the node agent listens, found as the TypeScript plugin finds it (src/config/load.ts, merge.ts,
// validate.ts): the NAD's `ipam.agent_socket` if it says one; else the flat file's `agent_socket` — the
// flat file being the NAD's `ipam.configuration_path` (the file, or the directory holding
// whereabouts.conf), then Whereabouts' default paths; else /run/whereabouts/agent.sock. Keys match
// case-insensitively, as Go's encoding/json (and so Whereabouts and the plugin) match them.
//
// This is all the forwarder reads of the configuration. Wherever the answer is not certain — stdin that is
// not a JSON object, no `ipam`, a key spelled twice, a value of the wrong type, a flat file that cannot be
// used, a key outside ASCII (where case rules differ between languages) — it does not guess: the
// TypeScript plugin runs instead and does today's thing, which is either the right error or the same
// forwarding. So the fast path never changes an answer, it only skips Node's start.

package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

const defaultAgentSocket = "/run/whereabouts/agent.sock"

// defaultFlatFilePaths is Whereabouts' search order after the NAD's own configuration_path
// (src/config/flat-file.ts).
var defaultFlatFilePaths = []string{
	"/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf",
	"/etc/cni/net.d/whereabouts.d/whereabouts.conf",
	"/host/etc/cni/net.d/whereabouts.d/whereabouts.conf",
}

const flatFileName = "whereabouts.conf"

// maxFlatFileBytes is the plugin's limit: a larger flat file is refused unread.
const maxFlatFileBytes = 1 << 20

// errUncertain: the forwarder cannot tell where the agent is without interpreting more; the plugin decides.
var errUncertain = errors.New("not certain")

// field is the value of `name` in a JSON object: nil when absent or null. A key spelled twice (in any case),
// or any key outside ASCII, is uncertain.
func field(object map[string]json.RawMessage, name string) (json.RawMessage, error) {
	var found json.RawMessage
	seen := false
	for key, value := range object {
		for i := 0; i < len(key); i++ {
			if key[i] >= 0x80 {
				return nil, errUncertain
			}
		}
		if strings.ToLower(key) != name {
			continue
		}
		if seen {
			return nil, errUncertain
		}
		seen = true
		found = value
	}
	if !seen || string(found) == "null" {
		return nil, nil
	}
	return found, nil
}

// stringField is a string key's value ("" when absent or null); another type is uncertain.
func stringField(object map[string]json.RawMessage, name string) (string, error) {
	raw, err := field(object, name)
	if err != nil || raw == nil {
		return "", err
	}
	var value string
	if json.Unmarshal(raw, &value) != nil {
		return "", errUncertain
	}
	return value, nil
}

// object parses a JSON object; anything else is uncertain.
func object(text []byte) (map[string]json.RawMessage, error) {
	var parsed map[string]json.RawMessage
	if json.Unmarshal(text, &parsed) != nil || parsed == nil {
		return nil, errUncertain
	}
	return parsed, nil
}

// agentSocket is the socket the plugin would forward to for this configuration, or errUncertain.
func agentSocket(stdin []byte, flatFilePaths []string) (string, error) {
	conf, err := object(stdin)
	if err != nil {
		return "", err
	}
	rawIpam, ok := conf["ipam"]
	if !ok {
		return "", errUncertain
	}
	ipam, err := object(rawIpam)
	if err != nil {
		return "", err
	}
	socket, err := stringField(ipam, "agent_socket")
	if err != nil {
		return "", err
	}
	configurationPath, err := stringField(ipam, "configuration_path")
	if err != nil {
		return "", err
	}
	if socket != "" {
		return socket, nil
	}
	candidates := flatFilePaths
	if configurationPath != "" {
		candidates = append([]string{configurationPath}, flatFilePaths...)
	}
	for _, candidate := range candidates {
		content, err := readFlatFile(candidate)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", errUncertain
		}
		flat, err := object(content)
		if err != nil {
			return "", err
		}
		socket, err := stringField(flat, "agent_socket")
		if err != nil {
			return "", err
		}
		if socket == "" {
			return defaultAgentSocket, nil
		}
		return socket, nil
	}
	return defaultAgentSocket, nil
}

// readFlatFile reads a flat file as src/config/untrusted-file.ts does: a NAD names the path, so it may be a
// FIFO or a device. Anything but a regular file or a directory is refused before it is opened (opening a
// device can act), the open never blocks, the descriptor is checked again, and at most the limit is read.
// A directory means the whereabouts.conf in it. os.ErrNotExist: try the next candidate.
func readFlatFile(path string) ([]byte, error) {
	content, err := readRegular(path)
	if errors.Is(err, syscall.EISDIR) {
		content, err = readRegular(filepath.Join(path, flatFileName))
	}
	return content, err
}

func readRegular(path string) ([]byte, error) {
	var stat syscall.Stat_t
	if err := syscall.Stat(path, &stat); err == nil {
		if stat.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			return nil, syscall.EISDIR
		}
		if stat.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return nil, errUncertain
		}
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
		return nil, os.ErrNotExist
	}
	if err != nil {
		return nil, errUncertain
	}
	defer syscall.Close(fd)
	if err := syscall.Fstat(fd, &stat); err != nil {
		return nil, errUncertain
	}
	if stat.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return nil, syscall.EISDIR
	}
	if stat.Mode&syscall.S_IFMT != syscall.S_IFREG || stat.Size > maxFlatFileBytes {
		return nil, errUncertain
	}
	content := make([]byte, 0, stat.Size+1)
	buffer := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buffer)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, errUncertain
		}
		if n == 0 {
			return content, nil
		}
		content = append(content, buffer[:n]...)
		if len(content) > maxFlatFileBytes {
			return nil, errUncertain
		}
	}
}
