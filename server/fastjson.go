package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sessiond/sessiond/account"
)

// The who-am-I answer is the hottest response sessiond writes, so it is
// encoded by hand into a pooled buffer instead of through reflection. The
// output is byte for byte what encoding/json writes for the same values
// (a test holds the two to each other).

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeWhoAmI answers {"session":…,"user":…}.
func writeWhoAmI(w http.ResponseWriter, v *sessionView, u *account.User) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"session":`...)
	b = appendSession(b, v)
	b = append(b, `,"user":`...)
	b = appendUser(b, u)
	b = append(b, "}\n"...)
	// No Content-Length: the body goes out in one Write, smaller than
	// net/http's buffer, so the server counts it and sets the header
	// itself rather than chunking.
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = cacheNoStore
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

var (
	contentTypeJSON = []string{"application/json"}
	cacheNoStore    = []string{"no-store"}
)

func appendSession(b []byte, v *sessionView) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, v.ID)
	b = append(b, `,"user_id":`...)
	if v.UserID == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *v.UserID)
	}
	b = append(b, `,"anonymous":`...)
	b = strconv.AppendBool(b, v.Anonymous)
	b = append(b, `,"remember_me":`...)
	b = strconv.AppendBool(b, v.RememberMe)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, v.CreatedAt)
	b = append(b, `,"last_seen_at":`...)
	b = appendTime(b, v.LastSeenAt)
	b = append(b, `,"expires_at":`...)
	b = appendTime(b, v.ExpiresAt)
	b = append(b, `,"idle_expires_at":`...)
	b = appendTime(b, v.IdleExpiresAt)
	b = append(b, `,"absolute_expires_at":`...)
	b = appendTime(b, v.AbsoluteExpiresAt)
	b = append(b, `,"authenticated_at":`...)
	if v.AuthenticatedAt == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, *v.AuthenticatedAt)
	}
	b = append(b, `,"device":{"user_agent":`...)
	b = appendString(b, v.Device.UserAgent)
	b = append(b, `,"browser":`...)
	b = appendString(b, v.Device.Browser)
	b = append(b, `,"os":`...)
	b = appendString(b, v.Device.OS)
	b = append(b, `},"ip":`...)
	b = appendString(b, v.IP)
	b = append(b, `,"current":`...)
	b = strconv.AppendBool(b, v.Current)
	return append(b, '}')
}

// appendUser appends u as viewUser(u) encodes it.
func appendUser(b []byte, u *account.User) []byte {
	if u == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"id":`...)
	b = appendString(b, u.ID)
	b = append(b, `,"email":`...)
	b = appendString(b, u.Email)
	b = append(b, `,"profile":`...)
	if len(u.Profile) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, u.Profile...) // compact JSON, checked when stored
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, u.CreatedAt.UTC())
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does by default: HTML-sensitive
// characters and U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// writeErrorBody answers the contract's error object,
// {"error":{"code":…,"message":…}}, as writeJSON would encode it: refusals
// (a dead token, a bad request) must cost no more than answers.
func writeErrorBody(w http.ResponseWriter, status int, code, message string) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"error":{"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	b = append(b, "}}\n"...)
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = cacheNoStore
	w.WriteHeader(status)
	_, _ = w.Write(b)
	*bp = b
	bufPool.Put(bp)
}
