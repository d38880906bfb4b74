package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runAsProcessEnv makes this test binary the gateway: TestMain runs the
// arguments in it (tab-separated) as main would, so a test can start the real
// command in a process of its own and signal it.
const runAsProcessEnv = "TODO_GATEWAY_TEST_RUN"

func TestMain(m *testing.M) {
	if args := os.Getenv(runAsProcessEnv); args != "" {
		os.Exit(run(strings.Split(args, "\t"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startProcess runs the command in a child process and returns it with its
// stderr; the child is killed when the test ends if still running.
func startProcess(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runAsProcessEnv+"="+strings.Join(args, "\t"))
	cmd.Dir = t.TempDir() // the embedded configuration's store file lands here
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(stdout), stderr
}

// serve on the embedded configuration with --admin and --log-format text: the admin endpoints answer on
// the address given, the log is text, and what was logged is all written by
// the time the process has exited on SIGTERM (the log buffer is flushed).
func TestServeProcessAdminFlagAndLogFlush(t *testing.T) {
	ln, adminAddr := listen(t) // a free port, released for the child
	ln.Close()
	adminAddr = strings.TrimPrefix(adminAddr, "http://")
	cmd, stdout, stderr := startProcess(t, "serve", "--listen", "127.0.0.1:0", "--admin", adminAddr,
		"--log-format", "text", "--log-flush", "1h")
	line, err := stdout.ReadString('\n')
	if err != nil || !strings.Contains(line, "todo-gateway listening on") {
		t.Fatalf("first line %q, %v", line, err)
	}
	resp, err := http.Get("http://" + adminAddr + "/healthz")
	if err != nil {
		t.Fatalf("the admin endpoint at --admin %s: %v", adminAddr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(stderr); done <- b }()
	var logs string
	select {
	case b := <-done:
		logs = string(b)
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway did not exit within 30 s of SIGTERM")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v; log:\n%s", err, logs)
	}
	// With a one-hour flush interval, these info lines reach stderr only
	// because the buffer is written at exit.
	for _, want := range []string{"level=INFO msg=serving", "admin=" + adminAddr, "msg=\"shutting down\"", "issuers are placeholders"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	// The embedded example starts without errors: its missing secret is
	// part of the placeholder note, not an ERROR line.
	if strings.Contains(logs, "level=ERROR") {
		t.Errorf("the embedded configuration logged an error:\n%s", logs)
	}
}

func TestServeRefusesAdminOnTheListenAddress(t *testing.T) {
	code, _, stderr := runCLI("serve", "--listen", "127.0.0.1:3999", "--admin", "127.0.0.1:3999")
	if code != exitUsage || !strings.Contains(stderr, "the admin address must differ from the listen address") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
