package mail

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseSMTPURL: SMTP_URL is refused with an error that never shows the
// password, or gives a usable configuration (host, port 1–65535, a known TLS
// mode, a user name whenever user info is given, loopback exactly for
// localhost and loopback IPs) that written back as a canonical URL parses to
// the same configuration.
func FuzzParseSMTPURL(f *testing.F) {
	for _, s := range []string{
		"smtp://mail.example.com", "smtp://mail.example.com:587?tls=starttls", "smtps://u:p@mail.example.com",
		"smtp://user:s3cret-pass@127.0.0.1:1025", "smtp://user:s3cret-pass@[::1]:25/", "SMTP://LOCALHOST:2525?TLS=Implicit",
		"smtp://u%40x:p%2Fq@host:25", "smtp://:pw@host", "smtp://u@host", "smtp://host:0", "smtp://host:65536",
		"smtp://host:+25", "smtp://host:025", "smtps://host?tls=starttls", "smtp://host?tls=a&tls=implicit",
		"smtp://host?x=1", "smtp://host/path", "smtp://host#frag", "smtp:host", "smtp:///", "http://host",
		"smtp://user:hunter22@host/x?tls=bad", "smtp://user:hunter22@host:99999", "smtp://user:hunter22@:25",
		"smtp://[fe80::1%25eth0]:25", "smtp://h%zz", "smtp://host?%zz", " smtp://host",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := parseSMTPURL(raw)
		if err != nil {
			if pw := secretIn(raw); pw != "" && strings.Contains(err.Error(), pw) {
				t.Fatalf("error for %q shows the password %q: %v", raw, pw, err)
			}
			return
		}
		if cfg.host == "" || cfg.port < 1 || cfg.port > 65535 {
			t.Fatalf("%q: host %q port %d", raw, cfg.host, cfg.port)
		}
		if cfg.tls != TLSOpportunistic && cfg.tls != TLSStartTLS && cfg.tls != TLSImplicit {
			t.Fatalf("%q: tls %q", raw, cfg.tls)
		}
		if cfg.hasUser != (cfg.user != "") || (!cfg.hasUser && cfg.password != "") {
			t.Fatalf("%q: user %q (%v), password set %v", raw, cfg.user, cfg.hasUser, cfg.password != "")
		}
		ip := net.ParseIP(cfg.host)
		if want := strings.EqualFold(cfg.host, "localhost") || (ip != nil && ip.IsLoopback()); cfg.loopback != want {
			t.Fatalf("%q: host %q loopback %v", raw, cfg.host, cfg.loopback)
		}
		// Written back canonically, it means the same.
		u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port)), RawQuery: "tls=" + cfg.tls}
		if cfg.hasUser {
			u.User = url.UserPassword(cfg.user, cfg.password)
		}
		again, err := parseSMTPURL(u.String())
		if err != nil || again != cfg {
			t.Fatalf("%q gave %+v; written back as %q it gives %+v, %v", raw, cfg, u.String(), again, err)
		}
	})
}

// secretIn returns the password of raw's user info when it is a secret worth
// checking for: long enough, and appearing nowhere else in raw, decoded or not,
// nor in the wording of any error.
func secretIn(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	if len(pw) < 6 {
		return ""
	}
	rest := strings.Replace(raw, u.User.String(), "", 1)
	for _, s := range []string{rest, u.Path, u.RawQuery, u.Host, u.Fragment, u.User.Username(), decodedQuery(u.RawQuery),
		"SMTP_URL is not a valid URL (expected smtp://[user:pass@]host:port[?tls=opportunistic|starttls|implicit])" +
			"scheme must be smtp or smtps no host (expected smtp://host:port) unexpected path unexpected fragment invalid port " +
			"invalid query smtps:// always uses implicit TLS; tls= needs smtp:// must be opportunistic, starttls or implicit " +
			"unknown parameter (only tls is supported) empty user name xxxxx"} {
		if strings.Contains(s, pw) {
			return ""
		}
	}
	return pw
}

func decodedQuery(q string) string {
	var b strings.Builder
	for _, kv := range strings.Split(q, "&") {
		for _, part := range strings.SplitN(kv, "=", 2) {
			s, _ := url.QueryUnescape(part)
			b.WriteString(s + " ")
		}
	}
	return b.String()
}
