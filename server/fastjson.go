package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

// The who-am-I answer is the hottest response sessiond writes, so it is
// encoded by hand into a pooled buffer instead of through reflection. The
// output is byte for byte what encoding/json writes for the same values
// (a test holds the two to each other).

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeWhoAmI answers {"session":…,"user":…}: sess as viewSession shows
// the current session, u as viewUser shows it.
func writeWhoAmI(w http.ResponseWriter, sess *sessiond.Session, u *account.User) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"session":`...)
	b = appendSession(b, sess, true)
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

// appendSession appends s as viewSession(s, current) encodes it.
func appendSession(b []byte, s *sessiond.Session, current bool) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"user_id":`...)
	if s.Anonymous() {
		b = append(b, "null"...)
	} else {
		b = appendString(b, s.UserID)
	}
	b = append(b, `,"anonymous":`...)
	b = strconv.AppendBool(b, s.Anonymous())
	b = append(b, `,"remember_me":`...)
	b = strconv.AppendBool(b, s.RememberMe)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, s.CreatedAt)
	b = append(b, `,"last_seen_at":`...)
	b = appendTime(b, s.LastSeenAt)
	b = append(b, `,"expires_at":`...)
	b = appendTime(b, s.ExpiresAt())
	b = append(b, `,"idle_expires_at":`...)
	b = appendTime(b, s.IdleExpiresAt)
	b = append(b, `,"absolute_expires_at":`...)
	b = appendTime(b, s.AbsoluteExpiresAt)
	b = append(b, `,"authenticated_at":`...)
	if s.AuthenticatedAt.IsZero() {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, s.AuthenticatedAt)
	}
	b = append(b, `,"device":{"user_agent":`...)
	b = appendString(b, s.Device.UserAgent)
	b = append(b, `,"browser":`...)
	b = appendString(b, s.Device.Browser)
	b = append(b, `,"os":`...)
	b = appendString(b, s.Device.OS)
	b = append(b, `},"ip":`...)
	b = appendString(b, s.IP)
	b = append(b, `,"current":`...)
	b = strconv.AppendBool(b, current)
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

// appendTime appends t in UTC as encoding/json writes a time.Time: quoted
// RFC 3339 with the fraction of a second trimmed of trailing zeros. By hand
// from 1970 to 9999, which holds every time sessiond writes; any other goes
// through time.Format.
func appendTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	if sec < 0 || sec > maxFastUnix {
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	days, sod := sec/86400, int(sec%86400)
	year, month, day := civilDate(int(days))
	var a [32]byte
	a[0] = '"'
	putPair(a[1:], year/100)
	putPair(a[3:], year%100)
	a[5] = '-'
	putPair(a[6:], month)
	a[8] = '-'
	putPair(a[9:], day)
	a[11] = 'T'
	putPair(a[12:], sod/3600)
	a[14] = ':'
	putPair(a[15:], sod/60%60)
	a[17] = ':'
	putPair(a[18:], sod%60)
	n := 20
	if ns := t.Nanosecond(); ns != 0 {
		a[20] = '.'
		putPair(a[21:], ns/10000000)
		putPair(a[23:], ns/100000%100)
		putPair(a[25:], ns/1000%100)
		putPair(a[27:], ns/10%100)
		a[29] = byte('0' + ns%10)
		n = 30
		for a[n-1] == '0' {
			n--
		}
	}
	a[n], a[n+1] = 'Z', '"'
	return append(b, a[:n+2]...)
}

// maxFastUnix is 9999-12-31T23:59:59Z.
const maxFastUnix = 253402300799

// civilDate is the proleptic Gregorian date of the day that many days after
// 1970-01-01 (days >= 0), counted in 400-year eras from 0000-03-01.
func civilDate(days int) (year, month, day int) {
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		month = mp + 3
	} else {
		month = mp - 9
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

// putPair writes 0 <= n < 100 as two digits at the start of a.
func putPair(a []byte, n int) {
	a[0], a[1] = digitPairs[2*n], digitPairs[2*n+1]
}

const digitPairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" + "30313233343536373839" +
	"40414243444546474849" + "50515253545556575859" + "60616263646566676869" + "70717273747576777879" +
	"80818283848586878889" + "90919293949596979899"

const hexDigits = "0123456789abcdef"

// plainJSON tells the ASCII bytes appendString copies as they are.
var plainJSON = func() (t [utf8.RuneSelf]bool) {
	for c := byte(0x20); c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString quotes s as encoding/json does by default: HTML-sensitive
// characters and U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainJSON[c] {
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
