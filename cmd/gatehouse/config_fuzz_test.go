package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
)

// FuzzRate: a rate setting ("10/1m") is refused with one line naming the
// setting, or gives a rule the rate limiter can use (the first event is
// allowed, not an ErrInvalidRule at the first sign-in), and its canonical
// spelling N/period parses to the same rate.
func FuzzRate(f *testing.F) {
	for _, s := range []string{
		"10/1m", "30/1m", "5/1h", " 7 / 90s ", "1/1s", "1/999ms", "0/1m", "-1/1m", "10/", "/1m", "10",
		"10/1m/2", "10/1d", "1e3/1m", "+5/1m", "0x10/1m", "9223372036854775807/1s", "1/2562047h",
		"1000000000/1s", "1000000001/1s", "2000000000/1s", "1/-1m", "10/1m\n", "10/1m\x00",
	} {
		f.Add(s)
	}
	const flag, env = "rate-login-email", "GATEHOUSE_RATE_LOGIN_EMAIL"
	parse := func(v string) (rate, error) {
		p := parser{raw: map[string]string{flag: v}, names: map[string]string{flag: env}}
		r := p.rate(flag)
		return r, p.err
	}
	f.Fuzz(func(t *testing.T, v string) {
		r, err := parse(v)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, env+" (--"+flag+"): ") || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error for %q is not one line naming the setting: %q", v, msg)
			}
			if r != (rate{}) {
				t.Fatalf("refused %q but returned %+v", v, r)
			}
			return
		}
		if r.Limit < 1 || r.Period < time.Second {
			t.Fatalf("%q gave %+v: below 1 per 1s", v, r)
		}
		ok, _, err := ratelimit.NewMemory(1, nil).Allow(context.Background(), ratelimit.Rule{Name: "fuzz", Limit: r.Limit, Period: r.Period}, v)
		if err != nil || !ok {
			t.Fatalf("%q gave %+v, which the limiter refuses: ok=%v err=%v", v, r, ok, err)
		}
		canon := fmt.Sprintf("%d/%s", r.Limit, r.Period)
		if again, err := parse(canon); err != nil || again != r {
			t.Fatalf("%q gave %+v; its canonical form %q gave %+v, %v", v, r, canon, again, err)
		}
	})
}
