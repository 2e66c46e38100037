package ratelimit

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// FuzzParseTrustedProxies: GATEHOUSE_TRUSTED_PROXIES is refused with an
// error naming it, or gives valid, masked, zone-free prefixes with IPv4 never
// in IPv4-mapped form; printing them back and parsing again gives the same
// list (the output is normalised), and every listed single address is trusted.
func FuzzParseTrustedProxies(f *testing.F) {
	for _, s := range []string{
		"", " ", ",", "10.0.0.0/8", "10.1.2.3/8", "192.0.2.7", "::1", "2001:db8::/32", "::ffff:10.0.0.0/104",
		"::ffff:10.0.0.1", "::ffff:0:0/96", "::ffff:0:0/95", "0.0.0.0/0", "::/0", "fe80::1%eth0", "fe80::/10%eth0",
		"10.0.0.0/33", "1.2.3.4:80", "proxy.internal", "010.0.0.1", "1.2.3.4/08", " 10.0.0.0/8 ,, 192.0.2.7 ,::1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		got, err := ParseTrustedProxies(list)
		if err != nil {
			if got != nil || !strings.HasPrefix(err.Error(), "GATEHOUSE_TRUSTED_PROXIES: ") {
				t.Fatalf("ParseTrustedProxies(%q) = %v, %v", list, got, err)
			}
			return
		}
		strs := make([]string, len(got))
		for i, p := range got {
			if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
				t.Fatalf("ParseTrustedProxies(%q)[%d] = %v: not valid, masked, unzoned and unmapped", list, i, p)
			}
			strs[i] = p.String()
		}
		again, err := ParseTrustedProxies(strings.Join(strs, ","))
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("%q gave %v; printed and parsed again: %v, %v", list, got, again, err)
		}
		for _, field := range strings.Split(list, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(field)); err == nil && !isTrusted(a.Unmap(), got) {
				t.Fatalf("%q: listed address %v is not trusted by %v", list, a, got)
			}
		}
	})
}

// FuzzClientIP: the client address is the peer when the peer is not a trusted
// proxy; otherwise it is the right-most X-Forwarded-For hop (over all header
// lines) that is not a trusted proxy, stopping short of an unparseable hop,
// or the left-most one reached when all are trusted. It is returned without
// zone or IPv4 mapping, and the zero Addr exactly when RemoteAddr is not an
// address.
func FuzzClientIP(f *testing.F) {
	for _, s := range []struct{ trusted, remote, xff1, xff2 string }{
		{"", "192.0.2.1:1234", "", ""},
		{"", "192.0.2.1:1234", "203.0.113.9", ""},
		{"10.0.0.0/8", "10.0.0.1:1234", "203.0.113.9, 10.0.0.2", ""},
		{"10.0.0.0/8", "10.0.0.1:1234", "198.51.100.1, 203.0.113.9", "10.0.0.3"},
		{"10.0.0.0/8", "10.0.0.1:1234", "10.0.0.5", "10.0.0.6"},
		{"10.0.0.0/8", "10.0.0.1:1234", "garbage, 203.0.113.9", ""},
		{"10.0.0.0/8", "10.0.0.1:1234", "203.0.113.9, garbage", ""},
		{"10.0.0.0/8,::1", "[::1]:443", "[2001:db8::1]:5, ::ffff:10.0.0.9", ""},
		{"::/0,0.0.0.0/0", "[fe80::1%eth0]:1", "[fe80::2%lo], , ,", ""},
		{"10.0.0.0/8", "pipe", "203.0.113.9", ""},
		{"10.0.0.0/8", "10.0.0.1", "[]", "[::1"},
	} {
		f.Add(s.trusted, s.remote, s.xff1, s.xff2)
	}
	f.Fuzz(func(t *testing.T, trustedList, remote, xff1, xff2 string) {
		trusted, err := ParseTrustedProxies(trustedList)
		if err != nil {
			return
		}
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for _, v := range []string{xff1, xff2} {
			if v != "" {
				r.Header.Add("X-Forwarded-For", v)
			}
		}
		got := ClientIP(r, trusted)
		peer, peerOK := parseHop(remote)
		if got.IsValid() != peerOK {
			t.Fatalf("RemoteAddr %q (address: %v) gave %v", remote, peerOK, got)
		}
		if !peerOK {
			return
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("client %v has a zone or is IPv4-mapped", got)
		}
		if !isTrusted(peer, trusted) {
			if got != peer {
				t.Fatalf("untrusted peer %v, but client %v", peer, got)
			}
			return
		}
		// The hops from right to left, as the peer passed them on.
		var hops []string
		for _, v := range slices.Backward(r.Header.Values("X-Forwarded-For")) {
			parts := strings.Split(v, ",")
			for _, h := range slices.Backward(parts) {
				if h = strings.TrimSpace(h); h != "" {
					hops = append(hops, h)
				}
			}
		}
		// Safety: nothing left of an untrusted or unparseable hop is used, as
		// the client can write anything there. Liveness: the right-most
		// untrusted hop is used when it is reached.
		want := peer
		for _, h := range hops {
			a, ok := parseHop(h)
			if !ok {
				break
			}
			want = a
			if !isTrusted(a, trusted) {
				break
			}
		}
		if got != want {
			t.Fatalf("peer %v, hops (right to left) %q: client %v, want %v", peer, hops, got, want)
		}
	})
}
