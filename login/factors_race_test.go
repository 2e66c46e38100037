package login

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-id/gatehouse/login/mfa"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Races on the second step (issue 10): parallel requests with one code,
// one recovery code, or many wrong codes. Rate limits are off, so only the
// store's single use and the lockout's reservation decide.

func noLimitsAtAll(c *Config) {
	noRateLimits(c)
	c.AccountPerUser = RateLimit{Limit: -1}
}

// enrolTOTPDirect gives user an authenticator app (and recovery codes)
// through the store, as enrolment leaves them.
func (e *env) enrolTOTPDirect(user *storage.User) (secret string, codes []string) {
	e.t.Helper()
	key, err := mfa.NewTOTPKey("Gatehouse", user.Email)
	if err != nil {
		e.t.Fatal(err)
	}
	enc, err := e.h.totpBox.Seal([]byte(key.Secret), user.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.SetTOTP(e.ctx, &storage.TOTPFactor{UserID: user.ID, SecretEnc: enc, CreatedAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	codes, hashes := mfa.NewRecoveryCodes()
	if err := e.store.ReplaceRecoveryCodes(e.ctx, user.ID, hashes, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
	return key.Secret, codes
}

// race posts to /login/factor from each browser at once and returns the
// answers.
func (e *env) race(browsers []*http.Client, ids []string, form func(i int) url.Values) []response {
	e.t.Helper()
	forms := make([]url.Values, len(browsers))
	for i, c := range browsers {
		forms[i] = form(i)
		forms[i].Set("csrf", e.csrfOf(c))
		forms[i].Set("authRequestID", ids[i])
	}
	out := make([]response, len(browsers))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range browsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/login/factor", strings.NewReader(forms[i].Encode()))
			if err != nil {
				panic(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := c.Do(req)
			if err != nil {
				panic(err)
			}
			defer res.Body.Close()
			var b strings.Builder
			_, _ = io.Copy(&b, res.Body)
			out[i] = response{res.StatusCode, res.Header, b.String()}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func (e *env) sessionsAtSecondStep(n int, email, pw string) ([]*http.Client, []string) {
	e.t.Helper()
	var bs []*http.Client
	var ids []string
	for range n {
		c, id := e.passwordStep(email, pw)
		bs, ids = append(bs, c), append(ids, id)
	}
	return bs, ids
}

func completed(res []response) int {
	n := 0
	for _, r := range res {
		if r.Status == http.StatusSeeOther && strings.Contains(r.Location(), "/authorize/callback") {
			n++
		}
	}
	return n
}

func TestSecondStepRacesSQLite(t *testing.T) { testSecondStepRaces(t, newEnv(t, noLimitsAtAll)) }

func TestSecondStepRacesPostgres(t *testing.T) {
	testSecondStepRaces(t, newPostgresEnv(t, noLimitsAtAll))
}

func testSecondStepRaces(t *testing.T, e *env) {
	// Each case has its own user: the losers of a race count as failures
	// towards that user's lockout.
	const n = 8
	userWithTOTP := func(name string) (*storage.User, string, []string) {
		u := e.createUser(name+"@example.com", alicePassword)
		secret, codes := e.enrolTOTPDirect(u)
		return u, secret, codes
	}

	t.Run("one code, many sessions: one sign-in", func(t *testing.T) {
		u, secret, _ := userWithTOTP("one-code")
		bs, ids := e.sessionsAtSecondStep(n, u.Email, alicePassword)
		code, err := totp.GenerateCode(secret, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		res := e.race(bs, ids, func(int) url.Values { return url.Values{"method": {"totp"}, "code": {code}} })
		if got := completed(res); got != 1 {
			t.Fatalf("one code completed %d sign-ins", got)
		}
		for _, r := range res {
			if r.Status >= 500 {
				t.Fatalf("status %d\n%s", r.Status, r.Body)
			}
		}
	})

	t.Run("one recovery code, many sessions: one sign-in", func(t *testing.T) {
		u, _, codes := userWithTOTP("one-recovery-code")
		bs, ids := e.sessionsAtSecondStep(n, u.Email, alicePassword)
		res := e.race(bs, ids, func(int) url.Values { return url.Values{"method": {"recovery"}, "code": {codes[0]}} })
		if got := completed(res); got != 1 {
			for _, r := range res {
				t.Logf("%d %q %s", r.Status, r.Location(), errorText(r.Body))
			}
			t.Fatalf("one recovery code completed %d sign-ins", got)
		}
		if left, err := e.store.CountRecoveryCodes(e.ctx, u.ID); err != nil || left != len(codes)-1 {
			t.Fatalf("recovery codes left: %d %v", left, err)
		}
	})

	t.Run("many wrong codes at once: no more than the threshold are checked", func(t *testing.T) {
		u, secret, _ := userWithTOTP("guesser")
		const guesses = 3 * n
		bs, ids := e.sessionsAtSecondStep(guesses, u.Email, alicePassword)
		res := e.race(bs, ids, func(i int) url.Values {
			return url.Values{"method": {"totp"}, "code": {wrongCode(t, secret, e, i)}}
		})
		checked := 0
		for _, r := range res {
			switch {
			case r.Status == http.StatusBadRequest && strings.Contains(r.Body, "That code is not right"):
				checked++
			case r.Status == http.StatusForbidden && strings.Contains(r.Body, "The second step is locked"):
			default:
				t.Fatalf("a wrong code: %d %q\n%s", r.Status, r.Location(), r.Body)
			}
		}
		// The fifth failure locks and says so; four say "not right".
		if checked != 4 {
			t.Fatalf("%d wrong codes were checked as such in parallel, want 4 then the lock", checked)
		}
		c, id := e.passwordStep(u.Email, alicePassword)
		e.clock.Advance(30 * time.Second)
		good, _ := totp.GenerateCode(secret, e.clock.Now())
		r := e.post(c, "/login/factor", url.Values{"csrf": {e.csrfOf(c)}, "authRequestID": {id}, "method": {"totp"}, "code": {good}})
		if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "The second step is locked") {
			t.Fatalf("the right code during the lock: %d %q", r.Status, r.Location())
		}
	})
}

// wrongCode is a 6-digit code that is not the code of any step near now
// (distinct per i).
func wrongCode(t *testing.T, secret string, e *env, i int) string {
	t.Helper()
	near := map[string]bool{}
	for d := -2; d <= 2; d++ {
		c, err := totp.GenerateCode(secret, e.clock.Now().Add(time.Duration(d)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		near[c] = true
	}
	for j := i; ; j += 1000 {
		c := fmt.Sprintf("%06d", j%1000000)
		if !near[c] {
			return c
		}
	}
}

// errorText is the page's alert or field error, for failure messages.
func errorText(body string) string {
	for _, marker := range []string{`class="field-error"`, `role="alert"`} {
		if i := strings.Index(body, marker); i >= 0 {
			return body[i:min(len(body), i+200)]
		}
	}
	return ""
}

// TestTOTPSetupWithColonInProductName: the otpauth:// label is
// "issuer:account", so the product name may not carry a colon into it;
// a GATEHOUSE_PRODUCT_NAME such as "Acme: Sign-in" must not turn every
// authenticator-app setup into a 500.
func TestTOTPSetupWithColonInProductName(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ProductName = "Acme: Sign-in" })
	c := e.accountBrowser(e.alice.Email, alicePassword)
	res := e.get(c, "/account/totp")
	if res.Status != http.StatusOK || !strings.Contains(res.Body, "otpauth://totp/") {
		t.Fatalf("authenticator app setup: %d\n%s", res.Status, res.Body)
	}
}
