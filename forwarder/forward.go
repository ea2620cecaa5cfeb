// One CNI invocation handed to the node agent over its unix socket: `POST /v1/cni` with
// {"env": {CNI_*}, "stdin": "..."} (src/agent/server.ts), one hand-written HTTP/1.1 exchange, as
// src/cni/agent-client.ts does it. What comes back decides what the forwarder does:
//
//   - the agent's answer (200 {stdout, exitCode}): printed, and the forwarder exits with its code;
//   - no agent (no socket, nothing listening, not a socket, the request not delivered whole), or an answer
//     that says nothing was run (421: the agent does not serve this network; 400, 404): `unavailable`,
//     the TypeScript plugin runs instead;
//   - the agent took the request and then did not answer (it was killed, it broke the connection off, it is
//     past the timeout, it answered something unreadable) or said it is stopping (503): `busy`, code 11 —
//     never a second attempt standalone, which could run a transaction of the same attachment beside the
//     agent's.

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type outcomeKind int

const (
	answered outcomeKind = iota
	unavailable
	busy
)

type forwarded struct {
	kind     outcomeKind
	stdout   string
	exitCode int
	// reason says why, for `unavailable` and `busy`.
	reason string
}

// maxAnswerBytes bounds what is read back: a CNI result is a few KiB.
const maxAnswerBytes = 16 << 20

type timeouts struct {
	// connect bounds the wait for the agent to accept the connection (its backlog may be full).
	connect time.Duration
	// answer bounds the wait for the whole exchange, from the connection on.
	answer time.Duration
}

// cniEnvironment is the environment a plugin passes on: the CNI variables, nothing else of the runtime's.
func cniEnvironment(environ []string) map[string]string {
	env := map[string]string{}
	for _, entry := range environ {
		name, value, ok := strings.Cut(entry, "=")
		if ok && strings.HasPrefix(name, "CNI_") {
			env[name] = value
		}
	}
	return env
}

// dial connects to the agent. A unix socket whose backlog is full refuses a non-blocking connect with
// EAGAIN rather than making it wait: that is "busy for a moment", not "no agent", so it is tried again
// until the connect timeout.
func dial(socketPath string, limit time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(limit)
	pause := time.Millisecond
	for {
		conn, err := net.DialTimeout("unix", socketPath, time.Until(deadline))
		if err == nil || !errors.Is(err, syscall.EAGAIN) || time.Now().Add(pause).After(deadline) {
			return conn, err
		}
		time.Sleep(pause)
		pause = min(pause*2, 50*time.Millisecond)
	}
}

// reasonOf names a network error by its errno (ECONNREFUSED, ENOENT, …), never more.
func reasonOf(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errnoName(errno)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed"
	}
	return "connection error"
}

var errnoNames = map[syscall.Errno]string{
	syscall.ENOENT:       "ENOENT",
	syscall.ECONNREFUSED: "ECONNREFUSED",
	syscall.ECONNRESET:   "ECONNRESET",
	syscall.EPIPE:        "EPIPE",
	syscall.EACCES:       "EACCES",
	syscall.ENOTSOCK:     "ENOTSOCK",
	syscall.ENOTDIR:      "ENOTDIR",
	syscall.EAGAIN:       "EAGAIN",
	syscall.EINVAL:       "EINVAL",
	syscall.ETIMEDOUT:    "ETIMEDOUT",
}

func errnoName(errno syscall.Errno) string {
	if name, ok := errnoNames[errno]; ok {
		return name
	}
	return fmt.Sprintf("errno %d", int(errno))
}

// forward runs one exchange with the agent at socketPath.
func forward(socketPath string, env map[string]string, stdin []byte, limits timeouts) forwarded {
	var body bytes.Buffer
	encoder := json.NewEncoder(&body)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(struct {
		Env   map[string]string `json:"env"`
		Stdin string            `json:"stdin"`
	}{env, string(stdin)}); err != nil {
		return forwarded{kind: unavailable, reason: "the request could not be encoded"}
	}
	request := fmt.Sprintf("POST /v1/cni HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n", body.Len())

	conn, err := dial(socketPath, limits.connect)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return forwarded{kind: unavailable, reason: "no agent socket at " + socketPath}
		}
		return forwarded{kind: unavailable, reason: fmt.Sprintf("the agent at %s did not answer (%s)", socketPath, reasonOf(err))}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(limits.answer))
	// Not half-closed after the request: the agent's server drops a half-closed connection. The agent runs
	// nothing before it has the whole body, so a request that could not be written whole was not run.
	if _, err := conn.Write(append([]byte(request), body.Bytes()...)); err != nil {
		return forwarded{kind: unavailable, reason: fmt.Sprintf("the agent at %s did not take the request (%s)", socketPath, reasonOf(err))}
	}
	tookIt := func(what string) forwarded {
		return forwarded{kind: busy, reason: fmt.Sprintf(
			"the node agent at %s took the request but %s; not repeated here, so that two transactions never run for one attachment",
			socketPath, what)}
	}
	status, answer, err := readResponse(conn)
	if err != nil {
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return tookIt(fmt.Sprintf("did not answer within %d s", int(limits.answer/time.Second)))
		}
		return tookIt(fmt.Sprintf("did not answer (%s)", reasonOf(err)))
	}
	switch status {
	case 200:
		var output struct {
			Stdout   *string  `json:"stdout"`
			ExitCode *float64 `json:"exitCode"`
		}
		if json.Unmarshal(answer, &output) != nil || output.Stdout == nil || output.ExitCode == nil {
			return tookIt("its answer could not be read")
		}
		code := int(*output.ExitCode)
		if float64(code) != *output.ExitCode || code < 0 || code > 255 {
			code = 1
		}
		return forwarded{kind: answered, stdout: *output.Stdout, exitCode: code}
	case 503:
		// Stopping: it may still run a transaction of this attachment, so never standalone.
		var reason struct {
			Busy string `json:"busy"`
		}
		if json.Unmarshal(answer, &reason) != nil || reason.Busy == "" {
			reason.Busy = "the node agent is stopping (503); try again"
		}
		return forwarded{kind: busy, reason: reason.Busy}
	case 421:
		var declined struct {
			Declined string `json:"declined"`
		}
		_ = json.Unmarshal(answer, &declined)
		return forwarded{kind: unavailable, reason: "the node agent does not serve it: " + declined.Declined}
	case 400, 404:
		return forwarded{kind: unavailable, reason: fmt.Sprintf("the agent refused the request (%d)", status)}
	default:
		return tookIt(fmt.Sprintf("answered %d", status))
	}
}

var errMalformed = errors.New("malformed answer")

// readResponse reads one HTTP/1.1 response with a Content-Length (the agent always sends one), and no
// more: the forwarder does not wait for the agent to close the connection.
func readResponse(conn net.Conn) (int, []byte, error) {
	var received []byte
	buffer := make([]byte, 16<<10)
	headerEnd, length, status := -1, -1, 0
	for {
		if headerEnd >= 0 && len(received)-headerEnd >= length {
			return status, received[headerEnd : headerEnd+length], nil
		}
		n, err := conn.Read(buffer)
		received = append(received, buffer[:n]...)
		if len(received) > maxAnswerBytes {
			return 0, nil, errMalformed
		}
		if headerEnd < 0 {
			if end := bytes.Index(received, []byte("\r\n\r\n")); end >= 0 {
				headerEnd = end + 4
				status, length = parseHead(string(received[:end]))
				if status == 0 || length < 0 || length > maxAnswerBytes {
					return 0, nil, errMalformed
				}
				continue
			}
		}
		if err != nil {
			if err == io.EOF {
				return 0, nil, io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
}

// parseHead is the status code and Content-Length of a response head; 0 and -1 when missing.
func parseHead(head string) (int, int) {
	lines := strings.Split(head, "\r\n")
	status := 0
	if fields := strings.Fields(lines[0]); len(fields) >= 2 && strings.HasPrefix(fields[0], "HTTP/1.") {
		if code, err := strconv.Atoi(fields[1]); err == nil && code >= 100 && code <= 999 {
			status = code
		}
	}
	length := -1
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "content-length") {
			if n, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && n >= 0 {
				length = n
			}
		}
	}
	return status, length
}
