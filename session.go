package sessiond

import "time"

// Session is one session as the Manager and stores see it. The token itself
// is never part of it; only its hash is.
type Session struct {
	// ID is the public, non-secret id used in lists and revoke calls. It is
	// random and independent of the token.
	ID string
	// TokenHash is the hash of the session's current token.
	TokenHash TokenHash
	// UserID is the user the session belongs to, empty for an anonymous
	// session.
	UserID string
	// RememberMe selects the longer remember-me lifetimes.
	RememberMe bool

	CreatedAt  time.Time
	LastSeenAt time.Time
	// IdleExpiresAt is when the session ends unless it is used again.
	IdleExpiresAt time.Time
	// AbsoluteExpiresAt is when the session ends whatever happens.
	AbsoluteExpiresAt time.Time

	Device Device
	// IP is the client address the session was created from.
	IP string

	// AuthenticatedAt is when the session's user last proved their
	// password in it: the sign-in that started it, or the latest
	// reauthentication (Store.Reauthenticate). Zero when there was no such
	// proof (an anonymous session, or one an administrator created).
	// Sensitive actions need a recent one; see Manager.Fresh.
	AuthenticatedAt time.Time
	// Transport is how the session's first token was handed out
	// (TransportCookie, ...); empty when unknown (sessions created before
	// sessiond recorded it). It decides whether the session is bound to
	// the browser that started it (BrowserBound).
	Transport string

	// RotatedAt is when the session's token was last replaced (Rotate or
	// Reauthenticate), written in the same atomic step as the
	// replacement; zero when it never was (or only before sessiond
	// recorded it). The refresh grace window is measured from it.
	RotatedAt time.Time
	// PrevTokenHash is the hash of the token that the last Rotate replaced:
	// the immediate predecessor of the current token in its chain. Zero
	// when there is none: never rotated, or the last replacement was a
	// Reauthenticate, which starts a new chain.
	PrevTokenHash TokenHash

	// Data is the session's key/value data. Stores fill it only where a
	// method says so (Data); lookups leave it nil to keep validation cheap.
	Data map[string][]byte

	// RevokedAt is zero for a session that was not revoked.
	RevokedAt time.Time
	// RevokeReason says why the session ended (ReasonLogout, ...).
	RevokeReason string
}

// Anonymous reports whether the session belongs to no user.
func (s *Session) Anonymous() bool { return s.UserID == "" }

// ExpiresAt is the earlier of the idle and absolute deadlines.
func (s *Session) ExpiresAt() time.Time {
	if s.IdleExpiresAt.Before(s.AbsoluteExpiresAt) {
		return s.IdleExpiresAt
	}
	return s.AbsoluteExpiresAt
}

// AuthenticatedWithin reports whether the session's user proved their
// password less than window before now. A session without a proof never
// is; a proof dated after now (clocks of two nodes) counts as fresh.
func (s *Session) AuthenticatedWithin(now time.Time, window time.Duration) bool {
	return !s.AuthenticatedAt.IsZero() && now.Sub(s.AuthenticatedAt) < window
}

// Transports of a session's token, as the client asked for it at sign-in.
const (
	TransportCookie    = "cookie"     // the session cookie: a browser
	TransportToken     = "token"      // a bearer token in the body: an app or a server
	TransportJWT       = "jwt"        // client-side access and refresh token in the body
	TransportJWTCookie = "jwt_cookie" // the same pair in cookies: a browser
)

// BrowserBound reports whether the session belongs to the browser that
// started it: its token was handed out in a cookie, and that browser's
// User-Agent was recorded. Requests presenting the token of such a session
// must come from the same browser and OS family (see ClientMismatch).
// Sessions issued to bearer-token clients are not bound: servers and apps
// change their User-Agent honestly.
func (s *Session) BrowserBound() bool {
	return (s.Transport == TransportCookie || s.Transport == TransportJWTCookie) && s.Device.UserAgent != ""
}

// ClientMismatch reports whether a request with the given User-Agent header
// comes from another client than the one that started s, a browser-bound
// session: a missing User-Agent, another browser family, or another OS
// family. When the starting User-Agent was not recognised (neither family
// known) the whole header must match instead. Versions do not matter, so a
// browser update keeps its sessions. Sessions that are not browser-bound
// never mismatch.
//
// The usual request repeats the header the session started with, which
// matches without parsing. Otherwise both headers are parsed now, so the
// families compared come from the same parser even for a session stored
// by an older sessiond.
func (s *Session) ClientMismatch(userAgent string) bool {
	if !s.BrowserBound() {
		return false
	}
	if userAgent == "" {
		return true
	}
	if userAgent == s.Device.UserAgent {
		return false
	}
	d, started := ParseDevice(userAgent), ParseDevice(s.Device.UserAgent)
	if d.UserAgent == started.UserAgent {
		return false // equal once cut to the stored length and cleaned
	}
	if started.Browser == "" && started.OS == "" {
		return true
	}
	return d.Browser != started.Browser || d.OS != started.OS
}

// Revoked reports whether the session was ended.
func (s *Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// Check returns nil when the session is usable at now, ErrRevoked when it
// was ended, and ErrExpired when a deadline has passed. A deadline equal to
// now has passed.
func (s *Session) Check(now time.Time) error {
	switch {
	case s.Revoked():
		return ErrRevoked
	case !now.Before(s.ExpiresAt()):
		return ErrExpired
	}
	return nil
}

// Clone returns a deep copy of s.
func (s *Session) Clone() *Session {
	c := *s
	if s.Data != nil {
		c.Data = make(map[string][]byte, len(s.Data))
		for k, v := range s.Data {
			c.Data[k] = append([]byte(nil), v...)
		}
	}
	return &c
}

// Device describes the client a session was created from.
type Device struct {
	UserAgent string
	// Browser and OS are parsed from UserAgent ("Chrome", "Windows"); empty
	// when the parser did not recognise them.
	Browser string
	OS      string
}

// Reasons a session ended, kept with the revoked session.
const (
	ReasonLogout       = "logout"        // the user signed out of this session
	ReasonLogoutAll    = "logout_all"    // the user signed out everywhere
	ReasonRevoked      = "revoked"       // the user ended it from the session list
	ReasonForceLogout  = "force_logout"  // password change or reset
	ReasonAdmin        = "admin"         // an administrator ended it
	ReasonLimit        = "limit"         // over the per-user session limit
	ReasonReplaced     = "replaced"      // a login from the same client replaced it
	ReasonUserDeleted  = "user_deleted"  // the account was deleted
	ReasonRefreshReuse = "refresh_reuse" // a refresh token was presented twice
	ReasonHijack       = "hijack_suspected"
	ReasonEmailChanged = "email_changed" // the account's email address changed
)
