// The forwarder's own tests: finding the socket as the plugin does, the exchange with an agent on a real
// unix socket (answers, refusals, an agent that takes the request and breaks off or never answers), and
// the built executable as a runtime runs it, with a stand-in for the TypeScript plugin beside it.

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVersionListMatchesThePlugin(t *testing.T) {
	source, err := os.ReadFile(filepath.Join("..", "src", "cni", "versions.ts"))
	if err != nil {
		t.Fatalf("reading versions.ts: %v", err)
	}
	list := regexp.MustCompile(`supportedVersions = \[([^\]]*)\]`).FindSubmatch(source)
	if list == nil {
		t.Fatal("no supportedVersions in versions.ts")
	}
	var theirs []string
	for _, v := range regexp.MustCompile(`'([^']+)'`).FindAllSubmatch(list[1], -1) {
		theirs = append(theirs, string(v[1]))
	}
	if strings.Join(theirs, ",") != strings.Join(supportedVersions, ",") {
		t.Fatalf("versions.ts says %v, the forwarder %v", theirs, supportedVersions)
	}
	if supportedVersions[len(supportedVersions)-1] != latestVersion {
		t.Fatalf("latest is %s, the list ends with %s", latestVersion, supportedVersions[len(supportedVersions)-1])
	}
}

func TestVersionAnswer(t *testing.T) {
	for stdin, version := range map[string]string{
		`{"cniVersion":"1.0.0"}`: "1.0.0",
		`{"cniVersion":"0.3.1"}`: "0.3.1",
		`{"cniVersion":"9.9.9"}`: "1.1.0",
		`{"cniVersion":7}`:       "1.1.0",
		`{"CNIVERSION":"1.0.0"}`: "1.1.0", // JSON.parse(...).cniVersion: exact key only
		`not json`:               "1.1.0",
		`null`:                   "1.1.0",
		`["1.0.0"]`:              "1.1.0",
		``:                       "1.1.0",
	} {
		want := `{"cniVersion":"` + version + `","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}` + "\n"
		if got := versionAnswer([]byte(stdin)); got != want {
			t.Errorf("VERSION for %q: %q, want %q", stdin, got, want)
		}
	}
}

func TestErrorObject(t *testing.T) {
	got := cniError("1.0.0", codeTryAgainLater, `a <b> & "c"`)
	want := `{"cniVersion":"1.0.0","code":11,"msg":"Try again later","details":"a <b> & \"c\""}` + "\n"
	if got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAgentSocket(t *testing.T) {
	dir := t.TempDir()
	flat := write(t, filepath.Join(dir, "a", "whereabouts.d", "whereabouts.conf"), `{"agent_socket":"/from/flat.sock"}`)
	emptyFlat := write(t, filepath.Join(dir, "b", "whereabouts.conf"), `{"agent_socket":"","datastore":"kubernetes"}`)
	twiceFlat := write(t, filepath.Join(dir, "c", "whereabouts.conf"), `{"agent_socket":"/x","AGENT_SOCKET":"/y"}`)
	notJSON := write(t, filepath.Join(dir, "d", "whereabouts.conf"), `{not json`)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "whereabouts.conf")
	nad := func(ipam string) []byte { return []byte(`{"cniVersion":"1.0.0","name":"n","ipam":` + ipam + `}`) }
	certain := []struct {
		name, stdin string
		defaults    []string
		want        string
	}{
		{"the NAD's own", `{"agent_socket":"/nad.sock"}`, []string{flat}, "/nad.sock"},
		{"any case, as Go's encoding/json", `{"Agent_Socket":"/nad.sock"}`, []string{flat}, "/nad.sock"},
		{"the NAD's wins over the flat file", `{"agent_socket":"/nad.sock","configuration_path":"` + flat + `"}`, nil, "/nad.sock"},
		{"empty in the NAD: the flat file's", `{"agent_socket":"","configuration_path":"` + flat + `"}`, nil, "/from/flat.sock"},
		{"null in the NAD: the flat file's", `{"agent_socket":null}`, []string{flat}, "/from/flat.sock"},
		{"configuration_path names the directory", `{"configuration_path":"` + filepath.Dir(flat) + `"}`, nil, "/from/flat.sock"},
		{"configuration_path first, then the defaults", `{"configuration_path":"` + emptyFlat + `"}`, []string{flat}, defaultAgentSocket},
		{"a missing candidate is skipped", `{"configuration_path":"` + missing + `"}`, []string{missing, flat}, "/from/flat.sock"},
		{"no flat file: the default", `{"range":"10.0.0.0/24"}`, []string{missing}, defaultAgentSocket},
		{"the flat file's empty value: the default", `{}`, []string{emptyFlat, flat}, defaultAgentSocket},
	}
	for _, c := range certain {
		got, err := agentSocket(nad(c.stdin), c.defaults)
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	uncertain := []struct {
		name, stdin string
		defaults    []string
	}{
		{"not JSON", `x`, nil},
		{"no ipam", `null`, nil},
		{"ipam not an object", `"whereabouts"`, nil},
		{"spelled twice", `{"agent_socket":"/a","AGENT_SOCKET":"/b"}`, nil},
		{"not a string", `{"agent_socket":7}`, nil},
		{"configuration_path not a string", `{"configuration_path":["x"]}`, nil},
		{"a key outside ASCII", `{"agent_ſocket":"/a"}`, nil},
		{"the flat file spells it twice", `{}`, []string{twiceFlat}},
		{"the flat file is not JSON", `{}`, []string{notJSON}},
		{"the flat file is a FIFO: refused without blocking", `{"configuration_path":"` + fifo + `"}`, []string{flat}},
		{"the flat file is a device", `{"configuration_path":"/dev/zero"}`, []string{flat}},
	}
	for _, c := range uncertain {
		stdin := nad(c.stdin)
		if c.name == "not JSON" {
			stdin = []byte(c.stdin)
		}
		if got, err := agentSocket(stdin, c.defaults); err == nil {
			t.Errorf("%s: %q, want uncertain", c.name, got)
		}
	}
}

// agent is a real unix socket server: each connection's request goes to `requests`, then `respond` acts.
type agent struct {
	path     string
	requests chan map[string]any
}

func startAgent(t *testing.T, respond func(conn net.Conn, request *http.Request)) *agent {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.sock")
	listener, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	a := &agent{path: path, requests: make(chan map[string]any, 16)}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				request, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				var body map[string]any
				if json.NewDecoder(request.Body).Decode(&body) != nil {
					return
				}
				if request.Method != "POST" || request.URL.Path != "/v1/cni" {
					body = map[string]any{"wrong": request.Method + " " + request.URL.Path}
				}
				a.requests <- body
				respond(conn, request)
			}()
		}
	}()
	return a
}

func respondWith(status int, body string) func(net.Conn, *http.Request) {
	return func(conn net.Conn, _ *http.Request) {
		_, _ = io.WriteString(conn, "HTTP/1.1 "+strconv.Itoa(status)+" X\r\nContent-Type: application/json\r\n"+
			"Content-Length: "+strconv.Itoa(len(body))+"\r\nConnection: close\r\n\r\n"+body)
	}
}

var quick = timeouts{connect: 2 * time.Second, answer: 5 * time.Second}

func TestForwardAnswered(t *testing.T) {
	a := startAgent(t, respondWith(200, `{"stdout":"{\"ips\":[]}\n","exitCode":0}`))
	env := cniEnvironment([]string{"CNI_COMMAND=ADD", "CNI_ARGS=K8S_POD_NAME=p;X=a=b", "PATH=/bin", "HOME=/root"})
	got := forward(a.path, env, []byte(`{"cniVersion":"1.0.0","x":"<&>"}`), quick)
	if got.kind != answered || got.stdout != "{\"ips\":[]}\n" || got.exitCode != 0 {
		t.Fatalf("%+v", got)
	}
	request := <-a.requests
	want := map[string]any{
		"env":   map[string]any{"CNI_COMMAND": "ADD", "CNI_ARGS": "K8S_POD_NAME=p;X=a=b"},
		"stdin": `{"cniVersion":"1.0.0","x":"<&>"}`,
	}
	if marshal(request) != marshal(want) {
		t.Fatalf("the agent got %s, want %s (the CNI variables only)", marshal(request), marshal(want))
	}
	failed := forward(startAgent(t, respondWith(200, `{"stdout":"err\n","exitCode":1}`)).path, env, nil, quick)
	if failed.kind != answered || failed.exitCode != 1 || failed.stdout != "err\n" {
		t.Fatalf("%+v", failed)
	}
}

func TestForwardNoAgent(t *testing.T) {
	dir := t.TempDir()
	notSocket := write(t, filepath.Join(dir, "file.sock"), "")
	// A socket nobody listens on any more (a killed agent's).
	stale := filepath.Join(dir, "stale.sock")
	listener, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	listener.(*net.UnixListener).SetUnlinkOnClose(false)
	listener.Close()
	for name, path := range map[string]string{
		"no socket":               filepath.Join(dir, "none.sock"),
		"a regular file":          notSocket,
		"a directory":             dir,
		"nobody listening":        stale,
		"a path too long to bind": "/" + strings.Repeat("x", 200),
	} {
		if got := forward(path, nil, nil, quick); got.kind != unavailable {
			t.Errorf("%s: %+v, want unavailable", name, got)
		}
	}
}

func TestForwardDeclinedOrRefused(t *testing.T) {
	for status, body := range map[int]string{
		421: `{"declined":"the network names the kubeconfig /a, not the node agent's /b"}`,
		400: `{"error":"the body must be..."}`,
		404: `{"error":"POST /v1/cni"}`,
	} {
		got := forward(startAgent(t, respondWith(status, body)).path, nil, []byte("{}"), quick)
		if got.kind != unavailable {
			t.Errorf("%d: %+v, want unavailable", status, got)
		}
	}
}

func TestForwardTookItAndDidNotAnswer(t *testing.T) {
	cases := map[string]func(net.Conn, *http.Request){
		"stopping (503)":           respondWith(503, `{"busy":"the node agent is stopping; not run, try again"}`),
		"closed without an answer": func(net.Conn, *http.Request) {},
		"half an answer": func(conn net.Conn, _ *http.Request) {
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"stdout\":")
		},
		"an unreadable answer": respondWith(200, `{"stdout":1}`),
		"an internal error":    respondWith(500, `{"error":"internal error"}`),
	}
	for name, respond := range cases {
		got := forward(startAgent(t, respond).path, nil, []byte("{}"), quick)
		if got.kind != busy {
			t.Errorf("%s: %+v, want busy", name, got)
		}
		if name == "stopping (503)" && got.reason != "the node agent is stopping; not run, try again" {
			t.Errorf("503: the agent's reason is passed on, got %q", got.reason)
		}
	}
	// Past the timeout: the agent holds the request and never answers.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	a := startAgent(t, func(net.Conn, *http.Request) { <-release })
	got := forward(a.path, nil, []byte("{}"), timeouts{connect: time.Second, answer: 200 * time.Millisecond})
	if got.kind != busy || !strings.Contains(got.reason, "did not answer within") {
		t.Fatalf("%+v", got)
	}
}

func TestParseHead(t *testing.T) {
	for head, want := range map[string][2]int{
		"HTTP/1.1 200 OK\r\nContent-Length: 12":                {200, 12},
		"HTTP/1.1 503 Service Unavailable\r\ncontent-length:3": {503, 3},
		"HTTP/1.1 200 OK":                   {200, -1},
		"SSH-2.0\r\nContent-Length: 1":      {0, 1},
		"HTTP/1.1 abc\r\nContent-Length: x": {0, -1},
	} {
		status, length := parseHead(head)
		if status != want[0] || length != want[1] {
			t.Errorf("%q: %d %d, want %v", head, status, length, want)
		}
	}
}

// built is the forwarder executable with a stand-in for the TypeScript plugin beside it, which prints its
// arguments, the CNI variables it got and its stdin, and exits 3.
func built(t *testing.T, withStandalone bool) string {
	t.Helper()
	dir := t.TempDir()
	executable := filepath.Join(dir, "whereabouts")
	build := exec.Command("go", "build", "-o", executable, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if withStandalone {
		script := "#!/bin/sh\necho \"standalone $# $* $CNI_COMMAND\"\ncat\nexit 3\n"
		if err := os.WriteFile(filepath.Join(dir, standaloneName), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return executable
}

func run(t *testing.T, executable string, args []string, env []string, stdin []byte) (string, int) {
	t.Helper()
	cmd := exec.Command(executable, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := cmd.Run()
	code := 0
	if exited, ok := err.(*exec.ExitError); ok {
		code = exited.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), code
}

func TestExecutable(t *testing.T) {
	executable := built(t, true)
	dir := t.TempDir()
	add := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0", "CNI_NETNS=/x"}

	out, code := run(t, executable, nil, []string{"CNI_COMMAND=VERSION"}, []byte(`{"cniVersion":"0.4.0"}`))
	if code != 0 || out != `{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}`+"\n" {
		t.Errorf("VERSION: %d %q", code, out)
	}

	// No agent: the plugin beside it runs with the same arguments, environment and stdin (a large one too).
	conf := `{"cniVersion":"1.0.0","name":"n","pad":"` + strings.Repeat("p", 300<<10) + `","ipam":{"agent_socket":"` +
		filepath.Join(dir, "none.sock") + `"}}`
	out, code = run(t, executable, []string{"x", "y"}, add, []byte(conf))
	if code != 3 || out != "standalone 2 x y ADD\n"+conf {
		t.Errorf("fallback: %d %.200q", code, out)
	}

	// The agent answers: printed, its exit code; the plugin beside it never runs.
	a := startAgent(t, respondWith(200, `{"stdout":"{\"cniVersion\":\"1.0.0\"}\n","exitCode":0}`))
	out, code = run(t, executable, nil, add, []byte(`{"cniVersion":"1.0.0","ipam":{"agent_socket":"`+a.path+`"}}`))
	if code != 0 || out != "{\"cniVersion\":\"1.0.0\"}\n" {
		t.Errorf("through the agent: %d %q", code, out)
	}

	// The agent took it and went away: code 11, not the plugin.
	gone := startAgent(t, func(net.Conn, *http.Request) {})
	out, code = run(t, executable, nil, add, []byte(`{"cniVersion":"0.4.0","ipam":{"agent_socket":"`+gone.path+`"}}`))
	var failure struct {
		CniVersion string
		Code       int
		Msg        string
		Details    string
	}
	if json.Unmarshal([]byte(out), &failure) != nil || code != 1 || failure.Code != 11 || failure.CniVersion != "0.4.0" ||
		!strings.Contains(failure.Details, "not repeated here") {
		t.Errorf("agent gone mid-request: %d %q", code, out)
	}

	// Over 1 MiB of stdin: code 7, nothing run.
	out, code = run(t, executable, nil, add, bytes.Repeat([]byte("x"), 2<<20))
	if json.Unmarshal([]byte(out), &failure) != nil || code != 1 || failure.Code != 7 {
		t.Errorf("oversized stdin: %d %q", code, out)
	}
}

func TestExecutableWithoutThePlugin(t *testing.T) {
	executable := built(t, false)
	out, code := run(t, executable, nil, []string{"CNI_COMMAND=DEL"}, []byte(`{"ipam":{"agent_socket":"/nonexistent/agent.sock"}}`))
	var failure struct {
		Code    int
		Details string
	}
	if json.Unmarshal([]byte(out), &failure) != nil || code != 1 || failure.Code != codeInternal ||
		!strings.Contains(failure.Details, standaloneName) {
		t.Errorf("%d %q", code, out)
	}
}

func TestExecutableLinkedIntoTheBinDir(t *testing.T) {
	// The bin dir holds a link to a forwarder elsewhere, and the plugin: the plugin beside the link runs.
	elsewhere := built(t, false)
	bin := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(bin, "whereabouts")); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho beside the link\n"
	if err := os.WriteFile(filepath.Join(bin, standaloneName), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, filepath.Join(bin, "whereabouts"), nil, []string{"CNI_COMMAND=DEL"},
		[]byte(`{"ipam":{"agent_socket":"/nonexistent/agent.sock"}}`))
	if code != 0 || out != "beside the link\n" {
		t.Errorf("%d %q", code, out)
	}
}
