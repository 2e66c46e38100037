package main

// Back-channel logout when the app is not there: retries until delivered,
// giving up after the 24-hour window, and a Gatehouse killed with deliveries
// pending. The in-process tests move the server's clock past each backoff
// and wake its sender, then wait (bounded) for the outbox row to change: no
// sleeping through real backoffs.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// A receiver that answers 503 twice, then 200, gets the token three times,
// freshly minted each time, and accepts the third; the outbox row ends
// delivered after 3 attempts, `logout-deliveries list --json` says so, the
// metrics count 2 retries and 1 delivery, and no log line carries a token.
func TestBackchannelLogoutRetriedUntilDelivered(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			logs := &syncBuffer{}
			ts := startServerLogging(t, backend, map[string]string{
				"GATEHOUSE_METRICS_ADDR": "127.0.0.1:0",
				"GATEHOUSE_LOG_LEVEL":    "debug",
				"GATEHOUSE_LOG_FORMAT":   "json",
			}, logs)
			a := ts.createClient("--name", "A", "--redirect-uri", redirectA)
			ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
			ra.now = ts.clock.now
			ra.unavailable.Store(2)
			setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
			u := ts.createUser("retry@example.com", testPassword)
			before := scrape(t, ts)

			sid := signInAndOut(t, ts, a, "retry@example.com", testPassword)
			d := waitDelivery(t, ts, a.ClientID, attemptsAtLeast(1)) // the sign-out's own round
			if d.DeliveredAt != nil || d.GaveUpAt != nil || d.LastStatus != 503 || d.SessionID != sid {
				t.Fatalf("after the first 503: %+v", d)
			}
			waitMetric(t, ts, "gatehouse_backchannel_logout_pending", nil, 1)
			// The n-th failure's backoff is at most BaseBackoff·2^(n-1): the
			// jitter only shortens it.
			for n := 1; n <= 2; n++ {
				ts.clock.advance(backchannel.DefaultBaseBackoff << (n - 1))
				ts.app.provider.WakeLogoutDeliveries()
				d = waitDelivery(t, ts, a.ClientID, attemptsAtLeast(n+1))
			}
			c := ra.next(t)
			if c["sub"] != u.ID || c["sid"] != sid {
				t.Fatalf("logout token sub %v sid %v, want %s %s", c["sub"], c["sid"], u.ID, sid)
			}
			d = waitDelivery(t, ts, a.ClientID, func(d storage.LogoutDelivery) bool { return d.DeliveredAt != nil })
			if d.Attempts != 3 || d.LastStatus != 200 || d.GaveUpAt != nil {
				t.Errorf("delivered row: attempts %d status %d gave up %v, want 3 200 never", d.Attempts, d.LastStatus, d.GaveUpAt)
			}
			posted := ra.posted()
			if len(posted) != 3 || posted[0] == posted[1] || posted[1] == posted[2] || posted[0] == posted[2] {
				t.Errorf("the receiver got %d POSTs, want 3 each with a token of its own", len(posted))
			}
			ra.noMoreTokens(t)

			list := cliDeliveries(t, ts, "--client", a.ClientID)
			if len(list) != 1 || list[0].State != storage.DeliveryDelivered || list[0].Attempts != 3 ||
				list[0].LastStatus != 200 || list[0].SessionID != sid || list[0].DeliveredAt == nil {
				t.Errorf("logout-deliveries list --json: %+v", list)
			}

			waitMetric(t, ts, "gatehouse_backchannel_logout_pending", nil, 0)
			after := waitMetricMoved(t, ts, before, "gatehouse_backchannel_logout_deliveries_total", l("outcome", "delivered"), 1)
			assertMoved(t, before, after, "gatehouse_backchannel_logout_deliveries_total", l("outcome", "retry"), 2)
			assertMoved(t, before, after, "gatehouse_backchannel_logout_deliveries_total", l("outcome", "given_up"), 0)

			lines := workerLines(t, logs.String())
			assertWorkerLines(t, lines, "WARN", "will retry", a.ClientID, sid, 2)
			assertWorkerLines(t, lines, "INFO", "delivered", a.ClientID, sid, 1)
			// Neither the tokens sent nor the one stored at sign-out.
			assertNoToken(t, logs.String(), append(posted, d.Token))
		})
	}
}

// A receiver that is down for the whole 24-hour window is tried throughout
// it, then given up: the row says gave_up after its last attempt, an error
// line names the client and the session, the metrics count it, and the
// receiver hears nothing more, even when a later round runs.
func TestBackchannelLogoutGivenUpAfterWindow(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			logs := &syncBuffer{}
			ts := startServerLogging(t, backend, map[string]string{
				"GATEHOUSE_METRICS_ADDR": "127.0.0.1:0",
				"GATEHOUSE_LOG_FORMAT":   "json",
			}, logs)
			a := ts.createClient("--name", "Down", "--redirect-uri", redirectA)
			ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
			ra.unavailable.Store(receiverDown)
			setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
			ts.createUser("down@example.com", testPassword)
			before := scrape(t, ts)

			sid := signInAndOut(t, ts, a, "down@example.com", testPassword)
			d := waitDelivery(t, ts, a.ClientID, attemptsAtLeast(1))
			// Move the clock to each retry as it comes due. The bound is
			// far above the schedule's ~30–60 attempts in 24 hours.
			for d.GaveUpAt == nil {
				if d.Attempts > 200 {
					t.Fatalf("still pending after %d attempts: %+v", d.Attempts, d)
				}
				if wait := d.NextAttemptAt.Sub(ts.clock.now()); wait > 0 {
					ts.clock.advance(wait + time.Millisecond)
				}
				ts.app.provider.WakeLogoutDeliveries()
				d = waitDelivery(t, ts, a.ClientID, attemptsAtLeast(d.Attempts+1))
			}
			if d.DeliveredAt != nil || d.LastStatus != 503 || !strings.Contains(d.LastError, "retries ended") {
				t.Errorf("given-up row: %+v", d)
			}
			t.Logf("given up after %d attempts, the last %v after sign-out", d.Attempts, d.LastAttemptAt.Sub(d.CreatedAt))
			// Tried until the end: the last attempt came within one (capped)
			// backoff of the window's end, which is 24 hours after sign-out.
			if !d.ExpiresAt.Equal(d.CreatedAt.Add(24*time.Hour)) || d.LastAttemptAt.Before(d.ExpiresAt.Add(-backchannel.DefaultMaxBackoff)) {
				t.Errorf("window %v to %v, last attempt at %v", d.CreatedAt, d.ExpiresAt, d.LastAttemptAt)
			}
			if n := len(ra.posted()); n != d.Attempts || n < 24 {
				t.Errorf("receiver got %d POSTs, the row counts %d attempts; want the same, and one an hour at least", n, d.Attempts)
			}
			list := cliDeliveries(t, ts, "--state", storage.DeliveryGaveUp)
			if len(list) != 1 || list[0].ClientID != a.ClientID || list[0].State != storage.DeliveryGaveUp || list[0].GaveUpAt == nil {
				t.Errorf("logout-deliveries list --state gave_up --json: %+v", list)
			}

			// Hours later, a round runs (it delivers another app's token,
			// enqueued after the clock moved): the given-up delivery is not
			// in it.
			postsAtGiveUp := len(ra.posted())
			ts.clock.advance(2 * time.Hour)
			b := ts.createClient("--name", "Up", "--redirect-uri", redirectA)
			rb := newLogoutReceiver(t, ts.issuer, b.ClientID)
			rb.now = ts.clock.now
			setBackchannel(t, ts, b.ClientID, rb.srv.URL+"/bc")
			signInAndOut(t, ts, b, "down@example.com", testPassword)
			rb.next(t)
			if n := len(ra.posted()); n != postsAtGiveUp {
				t.Errorf("the given-up receiver got %d more POSTs", n-postsAtGiveUp)
			}

			waitMetric(t, ts, "gatehouse_backchannel_logout_pending", nil, 0)
			after := waitMetricMoved(t, ts, before, "gatehouse_backchannel_logout_deliveries_total", l("outcome", "delivered"), 1)
			assertMoved(t, before, after, "gatehouse_backchannel_logout_deliveries_total", l("outcome", "given_up"), 1)
			assertMoved(t, before, after, "gatehouse_backchannel_logout_deliveries_total", l("outcome", "retry"), float64(d.Attempts-1))

			lines := workerLines(t, logs.String())
			assertWorkerLines(t, lines, "ERROR", "given up", a.ClientID, sid, 1)
			assertWorkerLines(t, lines, "WARN", "will retry", a.ClientID, sid, d.Attempts-1)
			assertNoToken(t, logs.String(), append(append(ra.posted(), rb.posted()...), d.Token))
		})
	}
}

// A Gatehouse killed with SIGKILL while a delivery waits for a retry loses
// nothing: the restarted server (a real `gatehouse serve` process, same
// store) sends it once the receiver is back, exactly once, with a token
// minted after the restart that verifies against the issuer's keys.
func TestBackchannelLogoutSurvivesKill(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			vars := serverVars(t, "", map[string]string{"GATEHOUSE_LOG_LEVEL": "info"})
			delete(vars, "GATEHOUSE_ISSUER") // the process's own address
			useBackend(t, backend, vars)
			srv := newGatehouseProcess(t, vars)
			admin := &testServer{t: t, issuer: srv.issuer, env: srv.env} // the CLI on the same store
			a := admin.createClient("--name", "A", "--redirect-uri", redirectA)
			ra := newLogoutReceiver(t, srv.issuer, a.ClientID)
			ra.unavailable.Store(receiverDown)
			setBackchannel(t, admin, a.ClientID, ra.srv.URL+"/bc")
			u := admin.createUser("kill@example.com", testPassword)
			srv.start()

			sid := signInAndOut(t, admin, a, "kill@example.com", testPassword)
			// A failed attempt is on record: the row is pending because the
			// app is down, not because nobody tried yet.
			d := waitCLIDelivery(t, admin, a.ClientID, func(d deliveryJSON) bool { return d.Attempts >= 1 })
			if d.State != storage.DeliveryPending || d.LastStatus != 503 || d.SessionID != sid || d.NextAttemptAt == nil {
				t.Fatalf("before the kill: %+v", d)
			}
			srv.kill()
			failed := ra.posted()
			ra.unavailable.Store(0)

			restarted := time.Now().Truncate(time.Second) // iat has whole seconds
			srv.start()
			// Due within the backoff (at most 10 s after the failure), then
			// sent at the sender's next round (every 5 s).
			c := ra.nextWithin(t, 60*time.Second)
			if c["sub"] != u.ID || c["sid"] != sid {
				t.Errorf("logout token sub %v sid %v, want %s %s", c["sub"], c["sid"], u.ID, sid)
			}
			iat, _ := c["iat"].(float64)
			if time.Unix(int64(iat), 0).Before(restarted) {
				t.Errorf("logout token issued at %v, before the restart at %v: not freshly minted", time.Unix(int64(iat), 0), restarted)
			}
			for _, raw := range failed {
				if jti := tokenClaim(t, raw, "jti"); jti == c["jti"] {
					t.Errorf("the delivered token reuses jti %v of an attempt before the kill", jti)
				}
			}

			d = waitCLIDelivery(t, admin, a.ClientID, func(d deliveryJSON) bool { return d.State != storage.DeliveryPending })
			if d.State != storage.DeliveryDelivered || d.Attempts != len(failed)+1 || d.LastStatus != 200 {
				t.Errorf("after the restart: %+v, want delivered at attempt %d", d, len(failed)+1)
			}
			if n := len(ra.posted()) - len(failed); n != 1 {
				t.Errorf("%d POSTs after the restart, want exactly 1", n)
			}
			ra.noMoreTokens(t)
			log, err := os.ReadFile(srv.logf)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(log), "back-channel logout delivered") {
				t.Errorf("the restarted server logged no delivery")
			}
			assertNoToken(t, string(log), ra.posted())
		})
	}
}

// attemptsAtLeast is a waitDelivery condition.
func attemptsAtLeast(n int) func(storage.LogoutDelivery) bool {
	return func(d storage.LogoutDelivery) bool { return d.Attempts >= n }
}

// waitDelivery polls the server's store (bounded) until the one delivery to
// clientID meets cond, and returns it.
func waitDelivery(t *testing.T, ts *testServer, clientID string, cond func(storage.LogoutDelivery) bool) storage.LogoutDelivery {
	t.Helper()
	var last []storage.LogoutDelivery
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ds, err := ts.app.store.ListLogoutDeliveries(context.Background(), storage.LogoutDeliveryFilter{ClientID: clientID})
		if err != nil {
			t.Fatalf("list logout deliveries: %v", err)
		}
		if len(ds) > 1 {
			t.Fatalf("%d deliveries to %s, want one", len(ds), clientID)
		}
		if len(ds) == 1 && cond(ds[0]) {
			return ds[0]
		}
		last = ds
		time.Sleep(10 * time.Millisecond) // polling the outbox, with a deadline
	}
	t.Fatalf("the delivery to %s did not reach the expected state: %+v", clientID, last)
	return storage.LogoutDelivery{}
}

// cliDeliveries runs `gatehouse logout-deliveries list --json` with args.
func cliDeliveries(t *testing.T, ts *testServer, args ...string) []deliveryJSON {
	t.Helper()
	out := ts.cli("", append([]string{"logout-deliveries", "list", "--json"}, args...)...)
	var list []deliveryJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("logout-deliveries list --json printed %q: %v", out, err)
	}
	return list
}

// waitCLIDelivery is waitDelivery through the CLI, for a server in another
// process.
func waitCLIDelivery(t *testing.T, ts *testServer, clientID string, cond func(deliveryJSON) bool) deliveryJSON {
	t.Helper()
	var last []deliveryJSON
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		last = cliDeliveries(t, ts, "--client", clientID)
		if len(last) > 1 {
			t.Fatalf("%d deliveries to %s, want one", len(last), clientID)
		}
		if len(last) == 1 && cond(last[0]) {
			return last[0]
		}
		time.Sleep(50 * time.Millisecond) // polling the outbox, with a deadline
	}
	t.Fatalf("the delivery to %s did not reach the expected state: %+v", clientID, last)
	return deliveryJSON{}
}

// waitMetric polls /metrics (bounded) until name{labels} reads want: a
// counter moves, and a gauge is counted, just after the store changed.
func waitMetric(t *testing.T, ts *testServer, name string, labels map[string]string, want float64) {
	t.Helper()
	var got float64
	var ok bool
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if got, ok = metricSum(scrape(t, ts), name, labels); ok && got == want {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	t.Fatalf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
}

// waitMetricMoved polls /metrics (bounded) until name{labels} moved by want
// since before, and returns that scrape.
func waitMetricMoved(t *testing.T, ts *testServer, before map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) map[string]*dto.MetricFamily {
	t.Helper()
	was, _ := metricSum(before, name, labels)
	var after map[string]*dto.MetricFamily
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		after = scrape(t, ts)
		if now, ok := metricSum(after, name, labels); ok && now-was == want {
			return after
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	assertMoved(t, before, after, name, labels, want)
	return after
}

// assertMoved checks that name{labels} moved by want from before to after.
func assertMoved(t *testing.T, before, after map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	was, _ := metricSum(before, name, labels)
	now, ok := metricSum(after, name, labels)
	if !ok || now-was != want {
		t.Errorf("%s%v moved by %v (present %v), want %v", name, labels, now-was, ok, want)
	}
}

// workerLines are the back-channel logout sender's lines of a JSON log.
func workerLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range jsonLines(t, log) {
		if l["component"] == "backchannel-logout" {
			out = append(out, l)
		}
	}
	return out
}

// assertWorkerLines checks that want lines at level have msg containing
// msgPart, and that each names clientID and sid.
func assertWorkerLines(t *testing.T, lines []map[string]any, level, msgPart, clientID, sid string, want int) {
	t.Helper()
	n := 0
	for _, l := range lines {
		msg, _ := l["msg"].(string)
		if l["level"] != level || !strings.Contains(msg, msgPart) {
			continue
		}
		n++
		if l["client_id"] != clientID || l["session_id"] != sid {
			t.Errorf("%s line %q without client %s and session %s: %v", level, msg, clientID, sid, l)
		}
	}
	if n != want {
		t.Errorf("%d %s lines with %q, want %d", n, level, msgPart, want)
	}
}

// assertNoToken fails t if log holds any part of any of the tokens beyond
// the header (which every token signed with a key shares).
func assertNoToken(t *testing.T, log string, tokens []string) {
	t.Helper()
	if len(tokens) == 0 {
		t.Fatal("no tokens to look for")
	}
	for _, tok := range tokens {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("not a compact JWS: %q", tok)
		}
		if strings.Contains(log, parts[1]) || strings.Contains(log, parts[2]) {
			t.Errorf("the log contains a logout token (or its payload or signature)")
			return
		}
	}
}

// tokenClaim reads claim from a JWT's payload, unverified (the token was
// verified, or deliberately refused, by the receiver).
func tokenClaim(t *testing.T, raw, claim string) any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("token payload: %v", err)
	}
	return c[claim]
}
