// Command compare runs the same scenarios against Gatehouse (SQLite and
// PostgreSQL), node-oidc-provider and zitadel/oidc's example server on this
// machine, and writes one Markdown report: rates with ratios to the best
// peer, latency, server CPU per operation, memory, and the machine's raw
// signature, argon2id and pgbench rates. bench/compare.sh builds the
// servers and runs it; see bench/README.md.
//
// Everything listens on 127.0.0.1 and every load is bounded in time. The
// driver starts every server itself (so it knows the process to read CPU and
// memory from /proc), creates a scratch PostgreSQL database and drops it at
// the end, also when interrupted.
package main

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// maxDuration caps -d: a benchmark, not a soak test.
const maxDuration = 60 * time.Second

type config struct {
	gatehouse, zitadel, node, nodeDir string
	pgURL                             string
	systems, scenarios                []string
	duration, warmup                  time.Duration
	runs, conc, flows, browsers       int
	floodRate, pgbenchScale           int
	out, commit, command              string
	keep, refs                        bool
	profileDir                        string // Gatehouse CPU profiles per run; "" for none

	nodeVersion, zitadelVersion, nodeRuntime string // found out
}

// refDuration is how long each raw reference runs.
func (c config) refDuration() time.Duration { return c.duration }

var allSystems = []string{"gatehouse-sqlite", "gatehouse-postgres", "node", "zitadel"}

// lab is the systems under test and what was measured.
type lab struct {
	cfg          config
	tmp          string
	procs        []*proc
	pg           *pgScratch
	perClientAlg bool
	targets      []*target // one per column
	extra        []*target // Gatehouse ES256 instances, when needed
	prepared     map[string]*prepared
	skips        []string
	failed       []string // scenarios that could not be set up on a system
	results      []result
	refs         []reference
}

func main() {
	var cfg config
	var systems, scens string
	flag.StringVar(&cfg.gatehouse, "gatehouse", "", "gatehouse binary")
	flag.StringVar(&cfg.zitadel, "zitadel", "", "zitadel-example binary (bench/peers/zitadel-example)")
	flag.StringVar(&cfg.node, "node", "node", "node binary")
	flag.StringVar(&cfg.nodeDir, "node-dir", "", "bench/peers/node-oidc-provider, after npm ci")
	flag.StringVar(&cfg.pgURL, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server to create a scratch database on (a URL of any database there, to connect to); off: no PostgreSQL")
	flag.StringVar(&systems, "systems", strings.Join(allSystems, ","), "systems to run")
	flag.StringVar(&scens, "scenarios", "all", "scenarios to run: all, or some of "+scenarioIDs())
	flag.DurationVar(&cfg.duration, "d", 5*time.Second, "measured duration of each run (at most 60s)")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured warm-up before each run")
	flag.IntVar(&cfg.runs, "runs", 2, "runs per scenario and system")
	flag.IntVar(&cfg.conc, "c", 32, "concurrent requests (discovery, JWKS, client_credentials) and refresh chains; pgbench clients")
	flag.IntVar(&cfg.flows, "flows", 8, "concurrent browsers in the SSO code flow")
	flag.IntVar(&cfg.browsers, "browsers", 16, "concurrent browsers signing in with passwords")
	flag.IntVar(&cfg.floodRate, "flood-rate", 200, "client_credentials requests per second in the latency rows")
	flag.IntVar(&cfg.pgbenchScale, "pgbench-scale", 10, "pgbench -i scale")
	flag.StringVar(&cfg.out, "out", "", "also write the report to this file")
	flag.StringVar(&cfg.commit, "commit", "(unknown commit)", "Gatehouse's commit, for the report")
	flag.StringVar(&cfg.command, "command", "bench/compare.sh", "the command that ran this, for the report")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (server logs)")
	flag.BoolVar(&cfg.refs, "refs", true, "measure the raw references (signatures, argon2id, pgbench)")
	flag.StringVar(&cfg.profileDir, "profile-dir", "", "write a CPU profile of Gatehouse for each measured run to this directory (GATEHOUSE_PPROF on a loopback metrics listener)")
	flag.Parse()
	cfg.systems = strings.Split(systems, ",")
	if scens != "all" {
		cfg.scenarios = strings.Split(scens, ",")
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		stop()
		os.Exit(1)
	}
}

func scenarioIDs() string {
	var ids []string
	for _, s := range scenarios {
		ids = append(ids, s.id)
	}
	return strings.Join(ids, ",")
}

func (c *config) check() error {
	for _, s := range c.systems {
		if !slices.Contains(allSystems, s) {
			return fmt.Errorf("-systems: unknown %q (use %s)", s, strings.Join(allSystems, ","))
		}
	}
	for _, s := range c.scenarios {
		if !strings.Contains(","+scenarioIDs()+",", ","+s+",") {
			return fmt.Errorf("-scenarios: unknown %q (use %s)", s, scenarioIDs())
		}
	}
	if c.duration <= 0 || c.runs < 1 || c.conc < 1 || c.flows < 1 || c.browsers < 1 || c.floodRate < 1 || c.pgbenchScale < 1 {
		return errors.New("-d, -runs, -c, -flows, -browsers, -flood-rate and -pgbench-scale must be positive")
	}
	if c.duration > maxDuration {
		fmt.Fprintf(os.Stderr, "compare: -d %v capped at %v\n", c.duration, maxDuration)
		c.duration = maxDuration
	}
	c.warmup = min(max(c.warmup, 0), 10*time.Second)
	c.conc, c.flows, c.browsers = min(c.conc, 1024), min(c.flows, 256), min(c.browsers, 256)
	need := map[string]string{"gatehouse-sqlite": c.gatehouse, "gatehouse-postgres": c.gatehouse, "node": c.nodeDir, "zitadel": c.zitadel}
	for _, s := range c.systems {
		if need[s] == "" {
			return fmt.Errorf("system %s: give -gatehouse, -node-dir or -zitadel", s)
		}
	}
	return nil
}

func (l *lab) has(system string) bool { return slices.Contains(l.cfg.systems, system) }

func (l *lab) selected(sc scenario) bool { return l.selectedID(sc.id) }

func (l *lab) selectedID(id string) bool {
	return len(l.cfg.scenarios) == 0 || slices.Contains(l.cfg.scenarios, id)
}

func run(ctx context.Context, cfg config) (err error) {
	started := time.Now()
	tmp, err := os.MkdirTemp("", "gatehouse-compare-")
	if err != nil {
		return err
	}
	l := &lab{cfg: cfg, tmp: tmp, prepared: map[string]*prepared{}}
	defer func() {
		for _, p := range slices.Backward(l.procs) {
			p.stop()
		}
		if l.pg != nil {
			if dropErr := l.pg.drop(); dropErr != nil {
				fmt.Fprintf(os.Stderr, "compare: drop the scratch database %s: %v\n", l.pg.name, dropErr)
			}
		}
		if cfg.keep {
			fmt.Fprintln(os.Stderr, "compare: logs kept in", tmp)
		} else {
			os.RemoveAll(tmp)
		}
	}()
	l.findVersions()

	if cfg.pgURL != "off" && (l.has("gatehouse-postgres") || cfg.refs) {
		if l.pg, err = newPGScratch(ctx, cfg.pgURL); err != nil {
			l.skips = append(l.skips, fmt.Sprintf("PostgreSQL (%v): Gatehouse PostgreSQL and pgbench", err))
			l.cfg.systems = slices.DeleteFunc(l.cfg.systems, func(s string) bool { return s == "gatehouse-postgres" })
			l.pg = nil
		} else {
			progress("scratch database %s on PostgreSQL %s", l.pg.name, l.pg.version)
		}
	}
	if l.has("gatehouse-sqlite") || l.has("gatehouse-postgres") {
		l.perClientAlg = supportsPerClientAlg(cfg.gatehouse)
	}
	if err := l.start(ctx); err != nil {
		return err
	}
	if cfg.refs {
		if err := l.measureRefs(ctx); err != nil {
			return err
		}
	}
	if err := l.runScenarios(ctx); err != nil {
		return err
	}
	for _, t := range append(append([]*target{}, l.targets...), l.extra...) {
		if t.final, err = readMemory(t.proc.pid()); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	var w io.Writer = os.Stdout
	if cfg.out != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
			return err
		}
		f, err := os.Create(cfg.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	l.report(w, started)
	progress("done in %v", time.Since(started).Round(time.Second))
	if len(l.failed) > 0 {
		return fmt.Errorf("%d scenarios could not be set up (see Failed in the report)", len(l.failed))
	}
	return nil
}

// start starts the selected systems and records their idle memory.
func (l *lab) start(ctx context.Context) error {
	type starter struct {
		system string
		start  func() (*target, error)
	}
	starters := []starter{
		{"gatehouse-sqlite", func() (*target, error) {
			return l.startGatehouse(ctx, gatehouseInstance{name: "gatehouse-sqlite", column: "Gatehouse SQLite", signingAlg: "RS256"})
		}},
		{"gatehouse-postgres", func() (*target, error) {
			return l.startGatehouse(ctx, gatehouseInstance{name: "gatehouse-postgres", column: "Gatehouse PostgreSQL", signingAlg: "RS256", databaseURL: l.pg.url})
		}},
		{"node", func() (*target, error) { return l.startNode(ctx) }},
		{"zitadel", func() (*target, error) { return l.startZitadel(ctx) }},
	}
	for _, s := range starters {
		if !l.has(s.system) {
			continue
		}
		progress("starting %s", s.system)
		t, err := s.start()
		if err != nil {
			return fmt.Errorf("%s: %w", s.system, err)
		}
		if t.idle, err = readMemory(t.proc.pid()); err != nil {
			return err
		}
		l.targets = append(l.targets, t)
	}
	return nil
}

func (l *lab) measureRefs(ctx context.Context) error {
	progress("raw references: signatures, argon2id, pgbench")
	sigs, err := signatureRefs(ctx, l.cfg)
	if err != nil {
		return err
	}
	l.refs = append(l.refs, sigs...)
	l.refs = append(l.refs, argon2Ref(ctx, l.cfg))
	if l.pg != nil {
		r, err := pgbenchRef(ctx, l.cfg, l.pg)
		switch {
		case errors.Is(err, errSkipped):
			l.skips = append(l.skips, "pgbench: "+err.Error())
		case err != nil:
			return err
		default:
			l.refs = append(l.refs, r)
		}
	}
	return ctx.Err()
}

// runScenarios runs each scenario's runs, the systems alternating (the
// first system of a run is the second of the run before), so that a slow
// moment of the machine does not always hit the same system.
func (l *lab) runScenarios(ctx context.Context) error {
	for _, sc := range scenarios {
		if !l.selected(sc) {
			continue
		}
		for run := range l.cfg.runs {
			for i := range l.targets {
				t := l.targets[(i+run)%len(l.targets)]
				if err := ctx.Err(); err != nil {
					return err
				}
				p, err := l.prepare(ctx, sc, t)
				if errors.Is(err, errSkipped) {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					// Reported, and the other scenarios still run: a
					// setup failure late in a long run must not lose
					// the rest. The command fails at the end.
					progress("%s on %s FAILED: %v", sc.id, t.name, err)
					l.failed = append(l.failed, fmt.Sprintf("%s on %s: %v", sc.label(l.cfg), t.column, err))
					l.prepared[sc.id+"\x00"+t.name] = nil
					continue
				}
				r, err := l.measure(ctx, sc, t, p, run+1)
				if err != nil {
					return err
				}
				l.results = append(l.results, r)
				msg := fmt.Sprintf("%-14s run %d  %-22s %9s/s  p50 %-9s p99 %-9s cpu/op %s",
					sc.id, run+1, r.proc, fmtRate(r.s.rate()), fmtLatency(r.s.percentile(50)), fmtLatency(r.s.percentile(99)), fmtCPU(r.cpuPerOp()))
				if p.bg != nil {
					msg += fmt.Sprintf("  sign-ins %s/s", fmtRate(r.bgRate))
				}
				if r.s.errs > 0 {
					msg += fmt.Sprintf("  %d errors (first: %v)", r.s.errs, r.s.firstErr)
				}
				progress("%s", msg)
			}
		}
	}
	return nil
}

// prepare sets the scenario up on t once, for all its runs.
func (l *lab) prepare(ctx context.Context, sc scenario, t *target) (*prepared, error) {
	key := sc.id + "\x00" + t.name
	if p, ok := l.prepared[key]; ok {
		if p == nil {
			return nil, errSkipped
		}
		return p, nil
	}
	p, err := sc.prepare(ctx, l, t)
	if errors.Is(err, errSkipped) {
		l.prepared[key] = nil
		l.skips = append(l.skips, fmt.Sprintf("%s on %s: %s", sc.label(l.cfg), t.column, strings.TrimPrefix(err.Error(), errSkipped.Error()+": ")))
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	l.prepared[key] = p
	return p, nil
}

// measure runs p once after a warm-up and reads the server's CPU and memory.
func (l *lab) measure(ctx context.Context, sc scenario, t *target, p *prepared, run int) (result, error) {
	var bg *background
	if p.bg != nil {
		bg = startBackground(ctx, *p.bg)
		defer bg.stop()
	}
	if l.cfg.warmup > 0 {
		// The first run of a scenario warms up twice as long: node's JIT
		// compiles the code path first (its first discovery run measured
		// a third of its second with one warm-up).
		if run == 1 {
			drive(ctx, p.main, l.cfg.warmup)
		}
		drive(ctx, p.main, l.cfg.warmup)
	}
	pid := p.t.proc.pid()
	cpu0, err := cpuTime(pid)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", p.t.name, err)
	}
	var db0 time.Duration
	dbOK := false
	if p.t.postgres {
		db0, dbOK = postgresCPU()
	}
	var bg0 int64
	if bg != nil {
		bg0 = bg.ops.Load()
	}
	var prof chan error
	if l.cfg.profileDir != "" && p.t.pprof != "" {
		prof = make(chan error, 1)
		name := fmt.Sprintf("%s-%s-%d.pprof", sc.id, t.column, run)
		go func() { prof <- saveProfile(ctx, p.t.pprof, l.cfg.duration, filepath.Join(l.cfg.profileDir, name)) }()
	}
	s := drive(ctx, p.main, l.cfg.duration)
	if prof != nil {
		if err := <-prof; err != nil {
			progress("profile of %s on %s: %v", sc.id, t.column, err)
		}
	}
	r := result{scenario: sc.id, column: t.column, proc: p.t.name, run: run, s: s}
	if bg != nil {
		r.bgRate = float64(bg.ops.Load()-bg0) / s.elapsed.Seconds()
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", p.t.name, err)
	}
	r.cpu = cpu1 - cpu0
	if dbOK {
		db1, ok := postgresCPU()
		r.dbCPU, r.dbOK = db1-db0, ok
	}
	if r.mem, err = readMemory(pid); err != nil {
		return result{}, err
	}
	if bg != nil {
		bg.stop()
		r.bgErrs = bg.errs.Load()
		if e := bg.firstErr.Load(); e != nil {
			r.bgErr = *e
		}
	}
	return r, ctx.Err()
}

// findVersions reads the peers' versions from what will run.
func (l *lab) findVersions() {
	l.cfg.nodeVersion, l.cfg.zitadelVersion, l.cfg.nodeRuntime = "?", "?", "?"
	if l.cfg.nodeDir != "" {
		raw, err := os.ReadFile(filepath.Join(l.cfg.nodeDir, "node_modules", "oidc-provider", "package.json"))
		var pkg struct {
			Version string `json:"version"`
		}
		if err == nil && json.Unmarshal(raw, &pkg) == nil {
			l.cfg.nodeVersion = pkg.Version
		}
		if out, err := exec.Command(l.cfg.node, "--version").Output(); err == nil {
			l.cfg.nodeRuntime = strings.TrimSpace(string(out))
		}
	}
	if l.cfg.zitadel != "" {
		if info, err := buildinfo.ReadFile(l.cfg.zitadel); err == nil {
			for _, d := range info.Deps {
				if d.Path == "github.com/zitadel/oidc/v3" {
					l.cfg.zitadelVersion = d.Version
				}
			}
		}
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// saveProfile fetches a CPU profile of d from a Gatehouse's pprof endpoint
// (base: its metrics listener) into path.
func saveProfile(ctx context.Context, base string, d time.Duration, path string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 64<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
