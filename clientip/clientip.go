// Package clientip says which address a request comes from, behind
// reverse proxies the operator trusts (config trusted_proxies) and
// nowhere else. One rule for everything that records or limits by
// address: the throttle, the audit log, the mails, access logs.
//
// The peer of the connection is the client unless it is a trusted proxy.
// Then the client is the rightmost address in X-Forwarded-For (or, when a
// request has no X-Forwarded-For, in Forwarded's for= parameters, RFC
// 7239) that is not itself a trusted proxy: every trusted hop appended
// the address it received the request from, so walking from the right
// past trusted hops stops at the first address a client could have
// written. Anything to its left is the client's own claim and is never
// read. A hop that is not an IP address ("unknown", an obfuscated name,
// garbage) ends the walk at the trusted hop to its right.
//
// Without trusted proxies (the default) the headers are ignored
// altogether: a client cannot choose its address by sending them.
//
// The package is the standard library only, so that any package (op,
// login, cmd) may use it.
package clientip

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Parse reads trusted_proxies entries: CIDRs ("10.0.0.0/8") or single
// addresses ("192.0.2.1", "::1"). It reports the first entry that is
// neither.
func Parse(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		p, err := ParseEntry(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParseEntry reads one entry (see Parse).
func ParseEntry(e string) (netip.Prefix, error) {
	e = strings.TrimSpace(e)
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(e)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("an address with a zone cannot be a proxy's")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// TrustedPeer reports whether a request came straight from one of these
// trusted proxies (so that what it adds, e.g. a request id, may be
// believed).
func TrustedPeer(trusted []netip.Prefix) func(*http.Request) bool {
	trusted = append([]netip.Prefix(nil), trusted...)
	return func(r *http.Request) bool {
		peer, ok := parseHost(r.RemoteAddr)
		if !ok {
			return false
		}
		for _, p := range trusted {
			if p.Contains(peer) {
				return true
			}
		}
		return false
	}
}

// New returns the rule for these trusted proxies: the client address of
// a request, as text ("192.0.2.1", "2001:db8::1"; IPv4-mapped IPv6
// addresses in their IPv4 form).
func New(trusted []netip.Prefix) func(*http.Request) string {
	trusted = append([]netip.Prefix(nil), trusted...)
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer, ok := parseHost(r.RemoteAddr)
		if !ok {
			return hostOnly(r.RemoteAddr)
		}
		if len(trusted) == 0 || !isTrusted(peer) {
			return peer.String()
		}
		hops := forwardedFor(r.Header)
		client := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseHost(hops[i])
			if !ok {
				break
			}
			client = a
			if !isTrusted(a) {
				break
			}
		}
		return client.String()
	}
}

// forwardedFor lists the hops, leftmost first: X-Forwarded-For (all its
// lines, in order), or Forwarded's for= values when there is no
// X-Forwarded-For.
func forwardedFor(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, line := range xff {
			for _, v := range strings.Split(line, ",") {
				hops = append(hops, strings.TrimSpace(v))
			}
		}
		return hops
	}
	for _, line := range h.Values("Forwarded") {
		for _, elem := range strings.Split(line, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					hops = append(hops, strings.Trim(strings.TrimSpace(v), `"`))
				}
			}
		}
	}
	return hops
}

// parseHost reads "192.0.2.1", "192.0.2.1:1234", "2001:db8::1",
// "[2001:db8::1]:1234" or "[2001:db8::1]".
func parseHost(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func hostOnly(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}
