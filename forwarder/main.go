// The `whereabouts` executable in the CNI bin dir: a small static program that the container runtime runs
// for every pod, so that what each ADD costs the node is a native process's start, not a Node runtime's.
// It answers VERSION itself, hands every other verb to the node agent over its unix socket (forward.go),
// and when there is no agent — or it cannot tell where the agent is (socket.go) — it execs the TypeScript
// plugin installed beside it (`whereabouts-ts-plugin`) with the same environment, arguments and stdin, which
// then does what the plugin always did. The limits are the plugin's (cni-plugin/main.ts): at most 1 MiB of
// stdin, an answer within 120 s whatever hangs, errors as CNI error objects on stdout.
//
// Go, standard library only, built static (CGO_ENABLED=0): see docs/decisions.md.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// standaloneName is the TypeScript plugin's name beside the forwarder.
const standaloneName = "whereabouts-ts-plugin"

const (
	// maxStdinBytes: network configurations are a few KiB; anything near this is hostile.
	maxStdinBytes = 1 << 20
	// hardLimit: no invocation outlives this, whatever hangs.
	hardLimit = 120 * time.Second
	// agentTimeout: the agent's longest verb deadline (60 s) and some room, as the plugin waits.
	agentTimeout = 75 * time.Second
	// connectTimeout: how long a full backlog may keep the forwarder from connecting.
	connectTimeout = 10 * time.Second
)

// result is what the forwarder decided: print and exit, or run the standalone plugin.
type result struct {
	stdout   string
	exitCode int
	// standalone: exec the TypeScript plugin with this invocation instead (why says why, for tests).
	standalone bool
	why        string
}

type invocation struct {
	environ       []string
	stdin         []byte
	flatFilePaths []string
	limits        timeouts
}

// decide is everything between reading stdin and acting on it.
func decide(in invocation) result {
	env := cniEnvironment(in.environ)
	if env["CNI_COMMAND"] == "VERSION" {
		return result{stdout: versionAnswer(in.stdin)}
	}
	socket, err := agentSocket(in.stdin, in.flatFilePaths)
	if err != nil {
		return result{standalone: true, why: "the configuration says more than the forwarder reads"}
	}
	answer := forward(socket, env, in.stdin, in.limits)
	switch answer.kind {
	case answered:
		return result{stdout: answer.stdout, exitCode: answer.exitCode}
	case busy:
		return result{stdout: cniError(answerVersion(in.stdin), codeTryAgainLater, answer.reason), exitCode: 1}
	default:
		return result{standalone: true, why: answer.reason}
	}
}

// readStdin reads at most maxStdinBytes; a terminal is read as empty, as the plugin does.
func readStdin(stdin *os.File) ([]byte, string) {
	var termios syscall.Termios
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, stdin.Fd(), syscall.TCGETS,
		uintptr(unsafe.Pointer(&termios))); errno == 0 {
		return nil, ""
	}
	content, err := io.ReadAll(io.LimitReader(stdin, maxStdinBytes+1))
	if err != nil {
		return nil, cniError(latestVersion, codeIoFailure, "cannot read the configuration from stdin")
	}
	if len(content) > maxStdinBytes {
		return nil, cniError(latestVersion, codeInvalidConfig,
			fmt.Sprintf("the configuration on stdin is larger than %d bytes", maxStdinBytes))
	}
	return content, ""
}

// output writes the answer once: the hard limit and the normal end race for it.
type output struct {
	mu   sync.Mutex
	done bool
}

func (o *output) finish(stdout string, code int) {
	o.mu.Lock()
	if o.done {
		o.mu.Unlock()
		select {} // the other writer exits the process
	}
	o.done = true
	_, _ = os.Stdout.WriteString(stdout)
	os.Exit(code)
}

// claim stops the hard limit from writing (before the process is replaced by the plugin).
func (o *output) claim() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return false
	}
	o.done = true
	return true
}

func main() {
	var out output
	time.AfterFunc(hardLimit, func() {
		out.finish(cniError(latestVersion, codeTryAgainLater,
			fmt.Sprintf("the plugin did not finish within %d s", int(hardLimit/time.Second))), 1)
	})
	stdin, failure := readStdin(os.Stdin)
	if failure != "" {
		out.finish(failure, 1)
	}
	decided := decide(invocation{
		environ:       os.Environ(),
		stdin:         stdin,
		flatFilePaths: defaultFlatFilePaths,
		limits:        timeouts{connect: connectTimeout, answer: agentTimeout},
	})
	if !decided.standalone {
		out.finish(decided.stdout, decided.exitCode)
	}
	if !out.claim() {
		select {}
	}
	code, failure := runStandalone(stdin)
	if failure != "" {
		_, _ = os.Stdout.WriteString(failure)
	}
	os.Exit(code)
}

// standalonePath is the TypeScript plugin beside this executable: beside the file it is (symbolic links
// resolved), else beside the path the runtime ran (a link in the bin dir to a forwarder elsewhere).
func standalonePath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	path := filepath.Join(filepath.Dir(self), standaloneName)
	if _, err := os.Stat(path); err != nil && len(os.Args) > 0 && filepath.IsAbs(os.Args[0]) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(os.Args[0]), standaloneName)); err == nil {
			return filepath.Join(filepath.Dir(os.Args[0]), standaloneName), nil
		}
	}
	return path, nil
}

// runStandalone replaces this process by the TypeScript plugin, its stdin the configuration already read
// (in an anonymous memory file). Where that cannot be done it runs the plugin as a child and passes its
// exit code on. It returns only on failure, or with the child's code.
func runStandalone(stdin []byte) (int, string) {
	path, err := standalonePath()
	if err != nil {
		return 1, cniError(answerVersion(stdin), codeInternal, "cannot find the forwarder's own path to run the standalone plugin")
	}
	cannotRun := func(err error) (int, string) {
		return 1, cniError(answerVersion(stdin), codeInternal,
			fmt.Sprintf("no agent, and the standalone plugin %s cannot be run (%s)", path, reasonOfExec(err)))
	}
	if err := syscall.Access(path, 0x1 /* X_OK */); err != nil {
		return cannotRun(err)
	}
	if fd, err := memoryFile(stdin); err == nil {
		if err := syscall.Dup2(fd, 0); err == nil {
			err = syscall.Exec(path, append([]string{path}, os.Args[1:]...), os.Environ())
			return cannotRun(err)
		}
	}
	child := exec.Command(path, os.Args[1:]...)
	child.Stdin = bytes.NewReader(stdin)
	child.Stdout = os.Stdout
	child.Stderr = os.Stderr
	if err := child.Run(); err != nil {
		if exited, ok := err.(*exec.ExitError); ok {
			return exited.ExitCode(), ""
		}
		return cannotRun(err)
	}
	return 0, ""
}

func reasonOfExec(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errnoName(errno)
	}
	return "exec failed"
}

// memfdCreate is the memfd_create system call's number on this architecture (not in package syscall for
// all of them); 0 where unknown.
func memfdCreate() uintptr {
	switch runtime.GOARCH {
	case "amd64":
		return 319
	case "arm64", "riscv64", "loong64":
		return 279
	case "386":
		return 356
	case "arm":
		return 385
	case "ppc64", "ppc64le":
		return 360
	case "s390x":
		return 350
	}
	return 0
}

// memoryFile is an anonymous file holding content, read from its start.
func memoryFile(content []byte) (int, error) {
	number := memfdCreate()
	if number == 0 {
		return -1, syscall.ENOSYS
	}
	const closeOnExec = 1 // MFD_CLOEXEC: the descriptor dup'ed onto stdin is what the plugin gets
	name := []byte("whereabouts-stdin\x00")
	fd, _, errno := syscall.Syscall(number, uintptr(unsafe.Pointer(&name[0])), closeOnExec, 0)
	if errno != 0 {
		return -1, errno
	}
	for written := 0; written < len(content); {
		n, err := syscall.Write(int(fd), content[written:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			syscall.Close(int(fd))
			return -1, err
		}
		written += n
	}
	if _, err := syscall.Seek(int(fd), 0, io.SeekStart); err != nil {
		syscall.Close(int(fd))
		return -1, err
	}
	return int(fd), nil
}
