package ratelimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies parses GATEHOUSE_TRUSTED_PROXIES: comma-separated CIDRs
// ("10.0.0.0/8") or single addresses ("192.0.2.7", "::1"). Blank entries are
// skipped; "" trusts no proxy.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("GATEHOUSE_TRUSTED_PROXIES: %q is not a CIDR: %w", f, err)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 means 10.0.0.0/8
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("GATEHOUSE_TRUSTED_PROXIES: %q is not an IP address or CIDR: %w", f, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("GATEHOUSE_TRUSTED_PROXIES: %q: zoned addresses are not supported", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ClientIP returns the client address of r: the peer address, or — only when
// the peer is in trusted (CIDRs from GATEHOUSE_TRUSTED_PROXIES) — the
// right-most untrusted address of X-Forwarded-For.
//
// X-Forwarded-For is read right to left, skipping the hops that are trusted
// proxies; entries left of the first untrusted one can be forged by the
// client and are never used. When an entry cannot be parsed, or every entry
// is trusted, the left-most address reached so far is returned (a trusted
// proxy: coarser, but not forgeable). Addresses are returned without zone
// and with IPv4-mapped IPv6 unmapped. When r.RemoteAddr is not an IP address
// (a test pipe, a Unix socket) the zero netip.Addr is returned; its String is
// "invalid IP".
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok || !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	// Several header lines form one list, in order.
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			h := strings.TrimSpace(hops[j])
			if h == "" {
				continue // "a, , b" or a trailing comma: no hop
			}
			a, ok := parseHop(h)
			if !ok {
				return client
			}
			client = a
			if !isTrusted(a, trusted) {
				return client
			}
		}
	}
	return client
}

// FromTrustedProxy reports whether r's TCP peer is one of the trusted
// proxies, whose headers (X-Forwarded-For, X-Request-Id) are believed.
func FromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	peer, ok := parseHop(r.RemoteAddr)
	return ok && isTrusted(peer, trusted)
}

// parseHop parses an address as found in RemoteAddr or X-Forwarded-For:
// "192.0.2.1", "192.0.2.1:1234", "2001:db8::1", "[2001:db8::1]:1234" or
// "[2001:db8::1]".
func parseHop(s string) (netip.Addr, bool) {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.WithZone("").Unmap(), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// AddrKey is the rate-limit key of a client address (as a string, such as
// a request's recorded client IP): the address itself, but for IPv6 its
// /64, since one subscriber usually holds a whole /64 and could otherwise
// spend a fresh budget per address. A string that is no address is its own
// key.
func AddrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
