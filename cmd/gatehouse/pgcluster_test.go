package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgCluster is a throwaway PostgreSQL server (initdb + pg_ctl in a temporary
// directory, on a free loopback port) that a test may stop and start: the
// shared server on 5432 is never touched. As root, the server runs as the
// postgres user (PostgreSQL refuses to run as root).
type pgCluster struct {
	t      *testing.T
	bin    string // directory of initdb and pg_ctl
	dir    string // owned by the server's user: data/, the log and the socket
	port   int
	runAs  string // "" or the user to run the binaries as
	pgUser string
}

// startPGCluster creates and starts a cluster, or skips the test (fails it
// under CI=true) when PostgreSQL's server binaries are not installed.
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("throwaway PostgreSQL cluster (CI=true): "+format, args...)
		}
		t.Skipf("throwaway PostgreSQL cluster: "+format, args...)
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		unavailable("initdb not found under /usr/lib/postgresql/*/bin (install the postgresql server package)")
		return nil
	}
	sort.Slice(found, func(i, j int) bool { return pgMajor(found[i]) < pgMajor(found[j]) })
	c := &pgCluster{t: t, bin: filepath.Dir(found[len(found)-1]), pgUser: "postgres"}

	// Not t.TempDir: its parent is private to this user, and the server may
	// run as another.
	dir, err := os.MkdirTemp("", "gatehouse-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() {
		_ = c.pgctl("stop", "-m", "immediate") // if still running; errors mean it is not
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable("running as root and there is no postgres user to run the server as: %v", err)
			return nil
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.runAs = "postgres"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	if out, err := c.run("initdb", "-D", c.data(), "-U", c.pgUser, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.start()
	return c
}

func pgMajor(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// url is the cluster's postgres database.
func (c *pgCluster) url() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", c.pgUser, c.port)
}

// run runs a PostgreSQL binary (as the server's user when needed).
func (c *pgCluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	cmd := exec.Command(path, args...)
	if c.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	}
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func (c *pgCluster) pgctl(args ...string) error {
	out, err := c.run("pg_ctl", append([]string{"-D", c.data(), "-w", "-t", "60"}, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %v\n%s", args, err, out)
	}
	return nil
}

// start starts the server and waits until it accepts connections. fsync is
// off: the test stops the server cleanly or not at all, never the machine.
func (c *pgCluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", c.port, c.dir)
	if err := c.pgctl("-l", filepath.Join(c.dir, "server.log"), "-o", opts, "start"); err != nil {
		if log, rerr := os.ReadFile(filepath.Join(c.dir, "server.log")); rerr == nil {
			c.t.Logf("server log:\n%s", log)
		}
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url())
	if err != nil {
		c.t.Fatalf("throwaway cluster does not accept connections: %v", err)
	}
	conn.Close(ctx)
}

// stop shuts the server down the way a restart does: every session is
// terminated, running transactions are rolled back.
func (c *pgCluster) stop() {
	c.t.Helper()
	if err := c.pgctl("stop", "-m", "fast"); err != nil {
		c.t.Fatal(err)
	}
}
