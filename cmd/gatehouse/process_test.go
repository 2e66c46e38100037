package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childArgsEnv, when set, makes the test binary run main() with these
// (space-separated) arguments instead of the tests: the fault tests start
// `gatehouse serve` as a real process (the same main, with its own signal
// handling and exit) that they can kill -9, without a `go build` per run.
const childArgsEnv = "GATEHOUSE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Args = append([]string{"gatehouse"}, strings.Fields(args)...)
		main() // exits
	}
	os.Exit(m.Run())
}

// gatehouseProcess is `gatehouse serve` running as a child process on a fixed
// loopback address, so that a restart keeps the issuer.
type gatehouseProcess struct {
	t      *testing.T
	env    map[string]string // the settings, as for the in-process CLI
	issuer string
	logf   string // stdout and stderr of every start, appended
	cmd    *exec.Cmd
	exited chan struct{}
}

// newGatehouseProcess prepares a server on a free loopback port with vars
// (GATEHOUSE_ADDR and GATEHOUSE_ISSUER are set here). It is not started.
func newGatehouseProcess(t *testing.T, vars map[string]string) *gatehouseProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the child binds it; a restart binds it again
	p := &gatehouseProcess{t: t, env: map[string]string{}, issuer: "http://" + addr,
		logf: filepath.Join(t.TempDir(), "gatehouse.log")}
	p.env["GATEHOUSE_METRICS_ADDR"] = "127.0.0.1:0" // the default port is shared by every test
	for k, v := range vars {
		p.env[k] = v
	}
	p.env["GATEHOUSE_ADDR"] = addr
	p.env["GATEHOUSE_ISSUER"] = p.issuer
	t.Cleanup(func() {
		if p.running() {
			p.kill()
		}
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

// start runs `gatehouse serve` and waits until /readyz answers 200.
func (p *gatehouseProcess) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.logf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close() // the child holds its own descriptor
	fmt.Fprintf(f, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(os.Args[0])
	cmd.Env = childEnv(p.env)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start gatehouse serve: %v", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(p.exited)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := hc.Get(p.issuer + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			p.t.Fatalf("gatehouse serve exited before it was ready: %s", p.cmd.ProcessState)
		case <-ctx.Done():
			p.t.Fatal("gatehouse serve was not ready within 60s")
		case <-tick.C:
		}
	}
}

func (p *gatehouseProcess) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL: no shutdown, no deferred close, nothing flushed.
func (p *gatehouseProcess) kill() {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("kill -9 gatehouse: %v", err)
	}
	<-p.exited
}

func (p *gatehouseProcess) dumpLog() {
	b, err := os.ReadFile(p.logf)
	if err != nil {
		return
	}
	const tail = 8 << 10
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	p.t.Logf("gatehouse serve log (tail):\n%s", b)
}

// childEnv is this process's environment without any Gatehouse setting (a
// developer's shell must not leak into the test), plus vars and the switch
// that makes the test binary run main().
func childEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GATEHOUSE_") || k == "DATABASE_URL" || k == "REDIS_URL" || k == "SMTP_URL" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return append(env, childArgsEnv+"=serve")
}
