package flows

import (
	"context"
	"errors"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
)

// ClientSide configures client-side sessions: short-lived signed access
// tokens that other services verify against the JWKS, renewed through a
// rotating refresh token. The server-side session stays the source of
// truth: a refresh succeeds only while it is active.
type ClientSide struct {
	// Keys are the signing keys (shared through the database).
	Keys *accesstoken.Keyring
	// Issuer names and times the tokens (iss, aud, TTL). Default TTL
	// DefaultAccessTokenTTL.
	Issuer accesstoken.Issuer
	// Chain derives refresh tokens.
	Chain *accesstoken.Chain
	// RefreshGrace is how long after a refresh its predecessor may be
	// presented again by an honest racing client and get the same answer.
	// Default DefaultRefreshGrace.
	RefreshGrace time.Duration
	// Skew is the clock skew allowed when checking tokens. Default
	// DefaultClockSkew.
	Skew time.Duration
	// JWKSMaxAge is the Cache-Control max-age of the JWKS. Default
	// DefaultJWKSMaxAge.
	JWKSMaxAge time.Duration
	// MaxChainSteps bounds the search for an earlier link of a refresh
	// chain. Default DefaultMaxChainSteps.
	MaxChainSteps int
}

// Defaults of ClientSide, as documented on its fields.
const (
	DefaultAccessTokenTTL = 5 * time.Minute
	DefaultRefreshGrace   = 10 * time.Second
	DefaultClockSkew      = 30 * time.Second
	DefaultJWKSMaxAge     = time.Minute
	DefaultMaxChainSteps  = 10000
)

func (cs *ClientSide) withDefaults() *ClientSide {
	c := *cs
	if c.RefreshGrace <= 0 {
		c.RefreshGrace = DefaultRefreshGrace
	}
	if c.Skew <= 0 {
		c.Skew = DefaultClockSkew
	}
	if c.JWKSMaxAge <= 0 {
		c.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if c.MaxChainSteps <= 0 {
		c.MaxChainSteps = DefaultMaxChainSteps
	}
	if c.Issuer.TTL <= 0 {
		c.Issuer.TTL = DefaultAccessTokenTTL
	}
	return &c
}

// AccessTokenTTL is the lifetime of an access token (0 with client-side
// sessions off).
func (f *Flows) AccessTokenTTL() time.Duration {
	if f.clientSide == nil {
		return 0
	}
	return f.clientSide.Issuer.TTL
}

// newRefreshChain is the CreateParams.NewToken of a client-side session.
func (f *Flows) newRefreshChain(id string) (string, error) {
	return f.clientSide.Chain.First(id, nil)
}

// AccessToken is a signed client-side access token.
type AccessToken struct {
	Token     string
	ExpiresAt time.Time
}

// IssueAccessToken signs an access token for sess; amr names how its user
// proved who they are this time (nil for a refresh).
func (f *Flows) IssueAccessToken(sess *sessiond.Session, amr []string) (AccessToken, error) {
	cs := f.clientSide
	if cs == nil {
		return AccessToken{}, ErrClientSideOff
	}
	access, claims, err := cs.Issuer.Issue(cs.Keys.Ring(), accesstoken.Params{
		UserID: sess.UserID, SessionID: sess.ID, RememberMe: sess.RememberMe, AMR: amr, AuthTime: sess.AuthenticatedAt}, f.Now())
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Token: access, ExpiresAt: claims.Expiry.Time()}, nil
}

// PublishedKeys are the public keys that may verify a live access token
// (none with client-side sessions off), and how long a JWKS of them may
// be cached.
func (f *Flows) PublishedKeys() ([]*accesstoken.Key, time.Duration) {
	cs := f.clientSide
	if cs == nil {
		return nil, DefaultJWKSMaxAge
	}
	return cs.Keys.Ring().Published(f.Now(), cs.Issuer.TTL, cs.Skew), cs.JWKSMaxAge
}

// authenticateJWT checks an access token presented to sessiond's own API.
// Unlike other services, sessiond also checks that the session behind it
// is still active: here the source of truth is at hand.
func (f *Flows) authenticateJWT(ctx context.Context, tok string) (*sessiond.Session, error) {
	cs := f.clientSide
	if cs == nil {
		return nil, sessiond.ErrMalformedToken
	}
	c, err := accesstoken.Verify(tok, cs.Keys.Ring().PublicKey,
		accesstoken.Expected{Issuer: cs.Issuer.Name, Leeway: cs.Skew}, f.Now())
	if err != nil {
		return nil, sessiond.ErrNotFound
	}
	sess, err := f.sessions.Get(ctx, c.SessionID, c.Subject)
	if err != nil {
		return nil, err
	}
	if superseded(c, sess) {
		return nil, sessiond.ErrNotFound
	}
	return sess, nil
}

// superseded reports whether an access token was issued before its
// session's latest proof of the password (a reauthentication, a change of
// password): the session got a new refresh chain and new access tokens
// then, and on sessiond's own API the older ones stop working at once, so
// that a copied token cannot pass the fresh-authentication check on the
// strength of the owner's proof. auth_time has whole seconds: a token
// issued in the same second as the proof is not told apart.
func superseded(c *accesstoken.Claims, sess *sessiond.Session) bool {
	if sess.AuthenticatedAt.IsZero() {
		return false
	}
	return c.AuthTime == nil || c.AuthTime.Time().Unix() < sess.AuthenticatedAt.Unix()
}

// Refreshed is a renewed client-side session.
type Refreshed struct {
	Session *sessiond.Session
	// RefreshToken is the next refresh token to hand out.
	RefreshToken string
	User         *account.User
}

// Refresh applies the refresh rule to tok, a refresh token presented by c
// (see accesstoken.Chain for the reuse rule and the grace window): the
// session and the next token of its chain, ErrInvalidRefreshToken, or
// ErrRefreshTokenReused after ending the session. Both are charged to c's
// address, as rejected tokens are in Authenticate.
func (f *Flows) Refresh(ctx context.Context, c Client, tok string) (*Refreshed, error) {
	if f.clientSide == nil {
		return nil, ErrClientSideOff
	}
	if tok != "" {
		if err := f.checkTokenLimit(c); err != nil {
			return nil, err
		}
	}
	sess, next, err := f.renewChain(ctx, c, tok)
	var u *account.User
	if err == nil {
		u, err = f.accounts.User(ctx, sess.UserID)
		if errors.Is(err, account.ErrUserNotFound) {
			err = ErrInvalidRefreshToken
		}
	}
	if err != nil {
		if tok != "" {
			f.chargeRejectedToken(c, err)
		}
		return nil, err
	}
	return &Refreshed{Session: sess, RefreshToken: next, User: u}, nil
}

// renewChain applies the refresh rule to tok and returns the session and
// the refresh token to hand out.
func (f *Flows) renewChain(ctx context.Context, c Client, tok string) (*sessiond.Session, string, error) {
	cs := f.clientSide
	id, err := accesstoken.RefreshSessionID(tok)
	if err != nil {
		f.metrics.rejected.WithLabelValues("malformed").Inc()
		return nil, "", ErrInvalidRefreshToken
	}
	for attempt := 0; attempt < 3; attempt++ {
		sess, err := f.sessions.Get(ctx, id, "")
		if err != nil {
			if sessiond.IsRejection(err) {
				f.metrics.countRejection(err)
				return nil, "", ErrInvalidRefreshToken
			}
			return nil, "", err
		}
		steps, ok := f.chainPlace(tok, sess)
		if ok && steps <= 1 {
			// A genuine link: the hijack rule of a browser's session
			// (jwt_cookie) holds at the refresh as everywhere.
			if err := f.CheckClient(ctx, c, sess); err != nil {
				f.metrics.countRejection(err)
				return nil, "", ErrInvalidRefreshToken
			}
		}
		switch {
		case !ok:
			f.metrics.rejected.WithLabelValues("unknown").Inc()
			return nil, "", ErrInvalidRefreshToken
		case steps == 0:
			next, err := cs.Chain.Next(tok)
			if err != nil {
				return nil, "", err
			}
			renewed, err := f.sessions.Renew(ctx, sess, next)
			if errors.Is(err, sessiond.ErrNotFound) {
				continue // a racing refresh won; look again (grace window)
			}
			if err != nil {
				if sessiond.IsRejection(err) {
					return nil, "", ErrInvalidRefreshToken
				}
				return nil, "", err
			}
			f.metrics.validated.Inc()
			return renewed, next, nil
		case steps == 1 && f.Now().Sub(rotatedAt(sess)) < cs.RefreshGrace:
			// An honest race: the same answer as the refresh that won.
			next, err := cs.Chain.Next(tok)
			if err != nil {
				return nil, "", err
			}
			return sess, next, nil
		default:
			// A used token, again: two parties hold this chain.
			if err := f.sessions.Revoke(ctx, sess.ID, sessiond.ReasonRefreshReuse); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
				return nil, "", err
			}
			f.metrics.revoked.WithLabelValues(sessiond.ReasonRefreshReuse).Inc()
			f.log.WarnContext(ctx, "refresh token reused: session revoked", "user_id", sess.UserID,
				"session_id", sess.ID, "steps_behind", steps, "ip", c.IP())
			f.audit.Record(f.auditContext(ctx, c), sess.UserID, audit.RefreshTokenReused, sess.ID, map[string]any{"steps_behind": steps})
			return nil, "", ErrRefreshTokenReused
		}
	}
	return nil, "", ErrInvalidRefreshToken
}

// chainPlace tells how many links tok is behind the current token of
// sess (ok false: no link of its chain) without walking the chain for the
// usual tokens (issue 20, forged refresh tokens): the current token and
// its predecessor are one hash compare each, and a token that sessiond did
// not mint for the session is refused with one HMAC (Chain.Genuine). Only
// a genuine older link (theft) or a link of a chain that ended
// (reauthentication) is walked, at most MaxChainSteps links.
func (f *Flows) chainPlace(tok string, sess *sessiond.Session) (int, bool) {
	cs := f.clientSide
	h := sessiond.HashToken(tok)
	switch {
	case h.Equal(sess.TokenHash):
		return 0, true
	case sess.PrevTokenHash != (sessiond.TokenHash{}) && h.Equal(sess.PrevTokenHash):
		return 1, true
	case !cs.Chain.Genuine(tok):
		return 0, false
	}
	return cs.Chain.Steps(tok, sess.TokenHash, cs.MaxChainSteps)
}

// rotatedAt is when tok's successor became current: the grace window of a
// refresh is measured from the rotation's own time, which the rotation's
// atomic step records, not from the last use, which a refresh racing on
// another node writes just before its rotation (issue 20). Sessions last
// rotated before sessiond recorded it fall back to their last use.
func rotatedAt(sess *sessiond.Session) time.Time {
	if sess.RotatedAt.IsZero() {
		return sess.LastSeenAt
	}
	return sess.RotatedAt
}

// RevokeRefreshToken ends the session behind a refresh token (RFC 7009
// style): the sign-out of a client-side session whose access token may
// already have expired. A token that is no genuine link of an active
// session's chain ends nothing and is no error, but is charged to c's
// address as a rejected token (and past the allowance, any token is
// refused with *RateLimitedError).
func (f *Flows) RevokeRefreshToken(ctx context.Context, c Client, tok string) error {
	cs := f.clientSide
	if cs == nil {
		return nil
	}
	if tok == "" {
		return nil
	}
	if err := f.checkTokenLimit(c); err != nil {
		return err
	}
	id, err := accesstoken.RefreshSessionID(tok)
	if err != nil {
		f.chargeRejectedToken(c, ErrInvalidRefreshToken)
		return nil
	}
	sess, err := f.sessions.Get(ctx, id, "")
	switch {
	case sessiond.IsRejection(err):
		f.chargeRejectedToken(c, err)
		return nil
	case err != nil:
		return err
	}
	if _, ok := f.chainPlace(tok, sess); !ok {
		f.chargeRejectedToken(c, ErrInvalidRefreshToken)
		return nil
	}
	if err := f.sessions.Revoke(ctx, sess.ID, sessiond.ReasonLogout); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
		return err
	}
	f.metrics.revoked.WithLabelValues(sessiond.ReasonLogout).Inc()
	f.audit.Record(f.auditContext(ctx, c), sess.UserID, audit.SignedOut, sess.ID, nil)
	return nil
}
