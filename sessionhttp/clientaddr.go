package sessionhttp

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr is the address of the client of r: the peer, or, when the
// peer is one of the trusted proxies, the right-most X-Forwarded-For entry
// that is not one. A garbled entry ends the search there: what comes
// before it is not believed. An unreadable peer is 0.0.0.0.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r)
	if !isTrusted(trusted, peer) {
		return peer
	}
	var all []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			break // a garbled hop: stop believing the chain
		}
		a = a.Unmap()
		if !isTrusted(trusted, a) {
			return a
		}
		peer = a
	}
	return peer
}

func isTrusted(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}
