package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,, ::1, 2001:db8::/32, 172.16.5.4/12, ::ffff:100.64.0.0/106 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128", "2001:db8::/32", "172.16.0.0/12", "100.64.0.0/10"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("[%d] = %s, want %s", i, got[i], want[i])
		}
	}

	if got, err := ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Fatalf(`ParseTrustedProxies("") = %v, %v`, got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.internal", "10.0.0.1, nope", "fe80::1%eth0", "1.2.3.4:80"} {
		if _, err := ParseTrustedProxies(bad); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_TRUSTED_PROXIES") {
			t.Errorf("ParseTrustedProxies(%q) error = %v; want one naming GATEHOUSE_TRUSTED_PROXIES", bad, err)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8:ffff::/48, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string // header lines
		trusted []netip.Prefix
		want    string
	}{
		{"peer only", "203.0.113.9:5555", nil, trusted, "203.0.113.9"},
		{"peer IPv6", "[2001:db8::9]:5555", nil, trusted, "2001:db8::9"},
		{"peer IPv4-mapped", "[::ffff:203.0.113.9]:5555", nil, trusted, "203.0.113.9"},
		{"peer without port", "203.0.113.9", nil, trusted, "203.0.113.9"},
		{"peer with zone", "[fe80::1%eth0]:80", nil, trusted, "fe80::1"},
		{"untrusted peer: XFF ignored", "203.0.113.9:5555", []string{"198.51.100.1"}, trusted, "203.0.113.9"},
		{"no trusted proxies: XFF ignored", "10.0.0.5:5555", []string{"198.51.100.1"}, nil, "10.0.0.5"},
		{"trusted peer, no XFF", "10.0.0.5:5555", nil, trusted, "10.0.0.5"},
		{"trusted peer, empty XFF", "10.0.0.5:5555", []string{" , "}, trusted, "10.0.0.5"},
		{"trusted peer", "10.0.0.5:5555", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"single trusted IP", "192.0.2.1:5555", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"trusted IPv6 peer", "[2001:db8:ffff::2]:443", []string{"2001:db8:1::7"}, trusted, "2001:db8:1::7"},
		{"spoofed left entries ignored", "10.0.0.5:5555", []string{"1.1.1.1, 8.8.8.8, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"right-most untrusted hop", "10.0.0.5:5555", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9, 10.1.1.1"}, trusted, "198.51.100.1"},
		{"several header lines", "10.0.0.5:5555", []string{"1.1.1.1, 198.51.100.1", "10.9.9.9"}, trusted, "198.51.100.1"},
		{"hop with port", "10.0.0.5:5555", []string{"198.51.100.1:4711"}, trusted, "198.51.100.1"},
		{"IPv6 hop bracketed", "10.0.0.5:5555", []string{"[2001:db8:1::7]"}, trusted, "2001:db8:1::7"},
		{"IPv6 hop with port", "10.0.0.5:5555", []string{"[2001:db8:1::7]:80"}, trusted, "2001:db8:1::7"},
		{"all hops trusted", "10.0.0.5:5555", []string{"10.3.3.3, 10.2.2.2"}, trusted, "10.3.3.3"},
		{"garbage hop", "10.0.0.5:5555", []string{"not-an-ip"}, trusted, "10.0.0.5"},
		{"garbage left of untrusted hop", "10.0.0.5:5555", []string{"<script>, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"garbage right of untrusted hop", "10.0.0.5:5555", []string{"198.51.100.1, unknown, 10.2.2.2"}, trusted, "10.2.2.2"},
		{"unknown token", "10.0.0.5:5555", []string{"unknown"}, trusted, "10.0.0.5"},
		{"overlong garbage", "10.0.0.5:5555", []string{strings.Repeat("[", 10000) + strings.Repeat("]", 10000)}, trusted, "10.0.0.5"},
		{"control characters", "10.0.0.5:5555", []string{"198.51.100.1\x00"}, trusted, "10.0.0.5"},
		{"unparseable peer", "pipe", []string{"198.51.100.1"}, trusted, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/login", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tc.trusted).String(); got != tc.want {
				t.Fatalf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFromTrustedProxy(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3:443": true, "[::1]:80": true, "[::ffff:10.0.0.9]:80": true,
		"192.0.2.1:80": false, "pipe": false, "": false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		if got := FromTrustedProxy(r, trusted); got != want {
			t.Errorf("FromTrustedProxy(%q) = %v, want %v", addr, got, want)
		}
	}
}
