package accesstoken

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Verifier checks sessiond access tokens in another Go service. It needs
// no store and no call to sessiond per request: it fetches sessiond's JWKS,
// caches it (for its Cache-Control max-age, default 5m), and fetches again
// when a token names a key it does not know (a rotation), at most once per
// MinRefetch.
//
//	v := accesstoken.NewVerifier(accesstoken.VerifierConfig{
//		JWKSURL: "https://login.example.com/.well-known/jwks.json",
//		Issuer:  "https://login.example.com", Audience: "orders",
//	})
//	http.Handle("/orders", v.Middleware(orders))
//	// in orders: c, _ := accesstoken.FromContext(r.Context()); c.Subject is the user
type Verifier struct {
	cfg VerifierConfig

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	fetchedAt time.Time
	maxAge    time.Duration
	lastTry   time.Time
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// JWKSURL is sessiond's /.well-known/jwks.json. Required.
	JWKSURL string
	// Issuer the tokens must name. Required.
	Issuer string
	// Audience that must be among the token's audiences (optional).
	Audience string
	// Leeway for clock skew. Default 30s.
	Leeway time.Duration
	// MinRefetch bounds JWKS fetches caused by unknown key ids. Default 10s.
	MinRefetch time.Duration
	// Client fetches the JWKS. Default: a client with a 5s timeout.
	Client *http.Client
	// CookieName, when set, also reads the token from this cookie.
	CookieName string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// NewVerifier returns a Verifier. It fetches nothing until the first token.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg}
}

// Verify checks a token and returns its claims.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	now := v.cfg.Now()
	if err := v.ensure(ctx, now, false); err != nil {
		return nil, err
	}
	c, err := Verify(token, v.key, Expected{Issuer: v.cfg.Issuer, Audience: v.cfg.Audience, Leeway: v.cfg.Leeway}, now)
	if errors.Is(err, ErrUnknownKey) {
		// A rotation may have added a key since the last fetch.
		if ferr := v.ensure(ctx, now, true); ferr != nil {
			return nil, ferr
		}
		c, err = Verify(token, v.key, Expected{Issuer: v.cfg.Issuer, Audience: v.cfg.Audience, Leeway: v.cfg.Leeway}, now)
	}
	return c, err
}

func (v *Verifier) key(kid string) (ed25519.PublicKey, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.keys[kid]
	return k, ok
}

// ensure fetches the JWKS when none was fetched yet, when the copy is
// older than its max-age, or when a token named an unknown key; never more
// than once per MinRefetch (or per max-age, at least a second, when that is
// shorter and the copy has expired), so a flood of bad tokens cannot make
// the verifier hammer sessiond.
func (v *Verifier) ensure(ctx context.Context, now time.Time, unknownKid bool) error {
	v.mu.Lock()
	expired := v.keys == nil || now.Sub(v.fetchedAt) >= v.maxAge
	stale := unknownKid || expired
	gap := v.cfg.MinRefetch
	if expired && v.maxAge < gap {
		// sessiond asked for a fresher copy than MinRefetch allows (a short
		// --jwks-max-age): honour its max-age, with a floor, or a key
		// published ahead of its activation would go unseen for MinRefetch.
		gap = max(v.maxAge, time.Second)
	}
	throttled := !v.lastTry.IsZero() && now.Sub(v.lastTry) < gap
	if !stale || throttled {
		missing := v.keys == nil
		v.mu.Unlock()
		if missing {
			return errJWKSUnavailable
		}
		return nil
	}
	v.lastTry = now
	v.mu.Unlock()

	keys, maxAge, err := v.fetch(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		if v.keys != nil {
			return nil // keep verifying with the keys we have
		}
		return err
	}
	v.keys, v.fetchedAt, v.maxAge = keys, now, maxAge
	return nil
}

var errJWKSUnavailable = errors.New("accesstoken: JWKS not fetched yet; retrying shortly")

func (v *Verifier) fetch(ctx context.Context) (map[string]ed25519.PublicKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("accesstoken: fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("accesstoken: fetching JWKS: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, fmt.Errorf("accesstoken: JWKS: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey)
	for _, k := range set.Keys {
		if pub, ok := k.Key.(ed25519.PublicKey); ok && k.KeyID != "" {
			keys[k.KeyID] = pub
		}
	}
	return keys, maxAge(resp.Header.Get("Cache-Control")), nil
}

func maxAge(cc string) time.Duration {
	for _, part := range strings.Split(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 5 * time.Minute
}

type ctxKey struct{}

// FromContext returns the claims Middleware verified.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// Middleware lets through requests with a valid access token (the
// Authorization Bearer header, or the configured cookie) and answers 401
// otherwise.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := ""
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			tok = strings.TrimSpace(h[7:])
		} else if v.cfg.CookieName != "" {
			if c, err := r.Cookie(v.cfg.CookieName); err == nil {
				tok = c.Value
			}
		}
		c, err := v.Verify(r.Context(), tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"invalid_token","message":"a valid access token is required"}}`+"\n")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}
