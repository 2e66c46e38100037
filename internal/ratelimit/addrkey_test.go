package ratelimit

import "testing"

// TestAddrKey: IPv4 addresses are their own key; IPv6 ones share their
// /64 (one subscriber's), IPv4-mapped IPv6 is the IPv4 address, and
// anything else is its own key.
func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"not an address":       "not an address",
		"":                     "",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
	} {
		if got := AddrKey(in); got != want {
			t.Errorf("AddrKey(%q) = %q, want %q", in, got, want)
		}
	}
}
