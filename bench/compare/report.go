package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// result is one measured run of a scenario on a system.
type result struct {
	scenario string
	column   string
	proc     string // the process measured
	run      int
	s        sample
	cpu      time.Duration // the server process's CPU during the run
	dbCPU    time.Duration // PostgreSQL's processes' CPU, when dbOK
	dbOK     bool
	mem      memory // after the run
	bgRate   float64
	bgErrs   int64
	bgErr    error
}

func (r result) cpuPerOp() time.Duration {
	if r.s.ops == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.s.ops)
}

// best is the better of a scenario's runs on a column: the highest rate,
// or for latency rows the lowest p99.
func (l *lab) best(sc scenario, column string) (result, bool) {
	var best result
	found := false
	for _, r := range l.results {
		if r.scenario != sc.id || r.column != column || r.s.ops == 0 {
			continue
		}
		better := r.s.rate() > best.s.rate()
		if sc.latency {
			better = r.s.percentile(99) < best.s.percentile(99)
		}
		if !found || better {
			best, found = r, true
		}
	}
	return best, found
}

func (l *lab) scenarioByID(id string) scenario {
	for _, sc := range scenarios {
		if sc.id == id {
			return sc
		}
	}
	panic("no scenario " + id)
}

// report writes the whole Markdown report.
func (l *lab) report(w io.Writer, started time.Time) {
	cfg := l.cfg
	fmt.Fprintf(w, "# Side by side, %s, Gatehouse %s\n\n", started.Format("2006-01-02"), cfg.commit)
	fmt.Fprintf(w, "Machine: %d CPUs (%s), Linux %s, %s RAM. %s (driver and Gatehouse), Node %s, PostgreSQL %s.\n",
		runtime.NumCPU(), cpuModel(), readTrim("/proc/sys/kernel/osrelease"), memTotal(),
		runtime.Version(), cfg.nodeRuntime, l.pgVersion())
	fmt.Fprintf(w, "Peers: node-oidc-provider %s (in memory, its dev sign-in), zitadel/oidc %s example server (in memory).\n",
		cfg.nodeVersion, cfg.zitadelVersion)
	fmt.Fprintf(w, "The load generator shares the CPUs with the servers. Each run: %v after %v of warm-up; %d runs per system, "+
		"systems alternating; %d concurrent requests (or refresh chains), %d browsers for the SSO code flow, %d for sign-ins; "+
		"the latency rows send client_credentials at %d/s. Gatehouse's ES256 rows: %s.\n\n",
		cfg.duration, cfg.warmup, cfg.runs, cfg.conc, cfg.flows, cfg.browsers, cfg.floodRate, l.es256Mode())
	fmt.Fprintf(w, "Command: `%s`\n\n", cfg.command)

	columns := l.columns()
	argon := l.refByPrefix("argon2id")
	fmt.Fprintf(w, "## Summary\n\n| scenario |")
	for _, c := range columns {
		fmt.Fprintf(w, " %s |", c)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(columns)))
	for _, sc := range scenarios {
		if !l.selected(sc) {
			continue
		}
		title := sc.label(cfg)
		if sc.unit != "" {
			title += " (" + sc.unit + ")"
		}
		fmt.Fprintf(w, "| %s |", title)
		bestPeer := 0.0
		for _, c := range columns {
			if r, ok := l.best(sc, c); ok && !l.isGatehouse(c) {
				bestPeer = max(bestPeer, r.s.rate())
			}
		}
		for _, c := range columns {
			r, ok := l.best(sc, c)
			if !ok {
				if l.errors(sc.id, c) > 0 || l.hasFailed(sc, c) {
					fmt.Fprint(w, " failed ⚠ |")
				} else {
					fmt.Fprint(w, " – |")
				}
				continue
			}
			var cell string
			switch {
			case sc.id == "cc-flood":
				cell = "p99 " + fmtLatency(r.s.percentile(99))
				if idle, ok := l.best(l.scenarioByID("cc-idle"), c); ok && idle.s.percentile(99) > 0 {
					cell += fmt.Sprintf(" (%.1f× idle)", float64(r.s.percentile(99))/float64(idle.s.percentile(99)))
				}
				cell += fmt.Sprintf("; %s sign-ins/s", fmtRate(r.bgRate))
			case sc.latency:
				cell = fmt.Sprintf("p99 %s (p50 %s)", fmtLatency(r.s.percentile(99)), fmtLatency(r.s.percentile(50)))
			case sc.hashedOnly && !l.isGatehouse(c):
				cell = fmtRate(r.s.rate()) + " †"
			case sc.hashedOnly && argon.best() > 0:
				cell = fmt.Sprintf("%s (%.0f%% of raw argon2id)", fmtRate(r.s.rate()), 100*r.s.rate()/argon.best())
			case l.isGatehouse(c) && bestPeer > 0:
				cell = fmt.Sprintf("%s (%.2f×)", fmtRate(r.s.rate()), r.s.rate()/bestPeer)
			default:
				cell = fmtRate(r.s.rate())
			}
			if l.errors(sc.id, c) > 0 {
				cell += " ⚠"
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nBest of %d runs. (×): Gatehouse ÷ the best peer. †: no password hashing in that system's sign-in "+
		"(node-oidc-provider's dev login accepts any password; zitadel's example compares plain text). "+
		"⚠: some requests failed (see Errors and Failed). –: not measured (see Not measured).\n\n", cfg.runs)

	l.writeTargets(w)

	fmt.Fprintf(w, "## Per run\n\n")
	fmt.Fprintf(w, "CPU per operation: utime+stime of the server process (every thread) over the run ÷ the operations; "+
		"PostgreSQL: every `postgres` process on the machine. HTTP requests per operation: the browser's and the token request.\n\n")
	fmt.Fprintf(w, "| scenario | system | run | rate | p50 | p99 | errors | server CPU/op | PostgreSQL CPU/op | HTTP req/op | RSS after |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range l.results {
		db := "–"
		if r.dbOK && r.s.ops > 0 {
			db = fmtCPU(r.dbCPU / time.Duration(r.s.ops))
		}
		rate := fmtRate(r.s.rate()) + "/s"
		if r.bgRate > 0 {
			rate += fmt.Sprintf(" (+%s sign-ins/s)", fmtRate(r.bgRate))
		}
		reqs := "–"
		if r.s.ops > 0 {
			reqs = fmt.Sprintf("%.1f", float64(r.s.requests)/float64(r.s.ops))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %d | %s | %s | %s | %s |\n",
			r.scenario, r.proc, r.run, rate, fmtLatency(r.s.percentile(50)), fmtLatency(r.s.percentile(99)),
			r.s.errs+int(r.bgErrs), fmtCPU(r.cpuPerOp()), db, reqs, fmtMB(r.mem.RSS))
	}

	fmt.Fprintf(w, "\n## Memory\n\n| process | idle, after start | peak (VmHWM) | at the end |\n|---|---:|---:|---:|\n")
	for _, t := range append(append([]*target{}, l.targets...), l.extra...) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.name, fmtMB(t.idle.RSS), fmtMB(t.final.HWM), fmtMB(t.final.RSS))
	}

	fmt.Fprintf(w, "\n## Raw references\n\n| reference | %s | note |\n|---|%s---|\n", runHeads(cfg.runs), strings.Repeat("---:|", cfg.runs))
	for _, r := range l.refs {
		fmt.Fprintf(w, "| %s |", r.name)
		for i := range cfg.runs {
			if i < len(r.rates) {
				fmt.Fprintf(w, " %s%s |", fmtRate(r.rates[i]), r.unit)
			} else {
				fmt.Fprint(w, " – |")
			}
		}
		fmt.Fprintf(w, " %s |\n", r.note)
	}

	if len(l.failed) > 0 {
		fmt.Fprintf(w, "\n## Failed\n\n")
		for _, f := range l.failed {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
	if len(l.skips) > 0 {
		fmt.Fprintf(w, "\n## Not measured\n\n")
		for _, s := range l.skips {
			fmt.Fprintf(w, "- %s\n", s)
		}
	}
	var errs []string
	for _, r := range l.results {
		if r.s.firstErr != nil {
			errs = append(errs, fmt.Sprintf("- %s, %s, run %d: %d errors, first: %v", r.scenario, r.proc, r.run, r.s.errs, r.s.firstErr))
		}
		if r.bgErr != nil {
			errs = append(errs, fmt.Sprintf("- %s, %s, run %d, sign-ins: %d errors, first: %v", r.scenario, r.proc, r.run, r.bgErrs, r.bgErr))
		}
		if r.s.dropped > 0 {
			errs = append(errs, fmt.Sprintf("- %s, %s, run %d: %d paced requests not sent (64 already in flight)", r.scenario, r.proc, r.run, r.s.dropped))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\n## Errors\n\n%s\n", strings.Join(errs, "\n"))
	}
}

// writeTargets spells out issue 14's targets with this run's numbers.
func (l *lab) writeTargets(w io.Writer) {
	sqlite, pg := "Gatehouse SQLite", "Gatehouse PostgreSQL"
	node := l.nodeColumn()
	rate := func(id, col string) float64 {
		if !l.selectedID(id) {
			return 0
		}
		r, ok := l.best(l.scenarioByID(id), col)
		if !ok {
			return 0
		}
		return r.s.rate()
	}
	var lines []string
	ratio := func(what string, a, b float64, goal string) {
		if a > 0 && b > 0 {
			lines = append(lines, fmt.Sprintf("- %s: %.2f (goal %s)", what, a/b, goal))
		}
	}
	for _, id := range []string{"flow-rs256", "refresh-rs256"} {
		title := l.scenarioByID(id).label(l.cfg)
		ratio(title+", Gatehouse SQLite ÷ node-oidc-provider", rate(id, sqlite), rate(id, node), "> 1")
		ratio(title+", Gatehouse PostgreSQL ÷ SQLite", rate(id, pg), rate(id, sqlite), "≥ 0.8")
	}
	if pgb := l.refByPrefix("pgbench"); pgb.best() > 0 {
		ratio("refresh rotation ES256 on PostgreSQL ÷ pgbench -N TPS", rate("refresh-es256", pg), pgb.best(), "≥ 0.5")
	}
	for _, c := range []string{sqlite, pg} {
		idle, ok1 := l.best(l.scenarioByID("cc-idle"), c)
		flood, ok2 := l.best(l.scenarioByID("cc-flood"), c)
		if ok1 && ok2 && idle.s.percentile(99) > 0 {
			lines = append(lines, fmt.Sprintf("- %s: client_credentials p99 during the sign-in flood ÷ idle p99: %.1f (goal ≤ 5)",
				c, float64(flood.s.percentile(99))/float64(idle.s.percentile(99))))
		}
		if argon := l.refByPrefix("argon2id").best(); argon > 0 {
			if ok2 {
				lines = append(lines, fmt.Sprintf("- %s: sign-ins/s during the flood ÷ raw argon2id hashes/s: %.0f%% (goal ≥ 60%%)", c, 100*flood.bgRate/argon))
			}
			ratio(c+": sign-ins/s alone ÷ raw argon2id hashes/s", rate("signin", c), argon, "≥ 0.9")
		}
	}
	for _, t := range append(append([]*target{}, l.targets...), l.extra...) {
		if strings.HasPrefix(t.name, "gatehouse") {
			lines = append(lines, fmt.Sprintf("- %s RSS: peak %s (goal ≤ 100 MB), idle %s (goal ≤ 25 MB)", t.name, fmtMB(t.final.HWM), fmtMB(t.idle.RSS)))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "## Against issue 14's goals\n\n%s\n\n", strings.Join(lines, "\n"))
	}
}

func runHeads(n int) string {
	var h []string
	for i := range n {
		h = append(h, fmt.Sprintf("run %d", i+1))
	}
	return strings.Join(h, " | ")
}

func (l *lab) refByPrefix(prefix string) reference {
	for _, r := range l.refs {
		if strings.HasPrefix(r.name, prefix) {
			return r
		}
	}
	return reference{}
}

func (l *lab) errors(id, column string) int {
	n := 0
	for _, r := range l.results {
		if r.scenario == id && r.column == column {
			n += r.s.errs + int(r.bgErrs)
		}
	}
	return n
}

func (l *lab) hasFailed(sc scenario, column string) bool {
	for _, f := range l.failed {
		if strings.HasPrefix(f, sc.label(l.cfg)+" on "+column+":") {
			return true
		}
	}
	return false
}

func (l *lab) columns() []string {
	var cols []string
	for _, t := range l.targets {
		cols = append(cols, t.column)
	}
	return cols
}

func (l *lab) isGatehouse(column string) bool { return strings.HasPrefix(column, "Gatehouse") }

func (l *lab) nodeColumn() string {
	for _, t := range l.targets {
		if t.name == "node-oidc-provider" {
			return t.column
		}
	}
	return ""
}

func (l *lab) pgVersion() string {
	if l.pg == nil {
		return "not used"
	}
	return l.pg.version + " (same machine)"
}

func (l *lab) es256Mode() string {
	if l.perClientAlg {
		return "a client with --id-token-signing-alg ES256 on the same server"
	}
	return "a second server with GATEHOUSE_SIGNING_ALG=ES256 (this build has no per-client algorithm)"
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(raw), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	raw, _ := os.ReadFile("/proc/meminfo")
	for line := range strings.SplitSeq(string(raw), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "? GiB"
}

func readTrim(path string) string {
	raw, _ := os.ReadFile(path)
	return strings.TrimSpace(string(raw))
}

// fmtRate prints a rate with thousands separators, as the tables do.
func fmtRate(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%d", int64(math.Round(v)))
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

func fmtCPU(d time.Duration) string {
	return fmt.Sprintf("%d µs", d.Microseconds())
}

func fmtMB(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
