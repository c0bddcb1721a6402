package flows

import (
	"context"
	"errors"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

// Authenticate validates tok, the token a request presented (a session
// token or a client-side access token), as a use of its session: it slides
// the idle deadline, and the hijack rule applies (CheckClient). Dead and
// unknown tokens are rejections (sessiond.IsRejection), and an empty one is
// ErrUnauthenticated; any other error is a store failure. Rejections are
// charged to c's address, which past its allowance gets
// *RateLimitedError for any token (Config.RejectedTokenRatePerIP).
func (f *Flows) Authenticate(ctx context.Context, c Client, tok string) (Caller, error) {
	if tok == "" {
		f.metrics.rejected.WithLabelValues("missing").Inc()
		return Caller{}, ErrUnauthenticated
	}
	if err := f.checkTokenLimit(c); err != nil {
		return Caller{}, err
	}
	jwt := LooksLikeJWT(tok)
	var sess *sessiond.Session
	var err error
	if jwt {
		sess, err = f.authenticateJWT(ctx, tok)
	} else {
		sess, err = f.sessions.Validate(ctx, tok)
	}
	if err == nil {
		err = f.CheckClient(ctx, c, sess)
	}
	if err != nil {
		f.metrics.countRejection(err)
		f.chargeRejectedToken(c, err)
		return Caller{}, err
	}
	return Caller{Session: sess, Token: tok, ClientSide: jwt}, nil
}

// AuthenticateUser is Authenticate for actions that need a signed-in user:
// an anonymous session is ErrUnauthenticated too, and so is a session
// whose account is gone. It also returns the user.
func (f *Flows) AuthenticateUser(ctx context.Context, c Client, tok string) (Caller, *account.User, error) {
	cl, err := f.Authenticate(ctx, c, tok)
	if err != nil {
		return Caller{}, nil, err
	}
	if cl.Session.Anonymous() {
		f.metrics.rejected.WithLabelValues("anonymous").Inc()
		return Caller{}, nil, ErrUnauthenticated
	}
	f.metrics.validated.Inc()
	u, err := f.accounts.User(ctx, cl.Session.UserID)
	if errors.Is(err, account.ErrUserNotFound) {
		return Caller{}, nil, ErrUnauthenticated
	}
	if err != nil {
		return Caller{}, nil, err
	}
	return cl, u, nil
}

// Introspection is what Introspect tells of a token.
type Introspection struct {
	// Active: the token is that of an active session (of an existing
	// user). Session and User are set only then; User is nil for an
	// anonymous session.
	Active  bool
	Session *sessiond.Session
	User    *account.User
}

// Introspect tells an administrator whether tok is the token of an active
// session. It is a use of the session, like Authenticate, but without the
// hijack rule: the administrator's caller is not the session's client. An
// error is a store failure.
func (f *Flows) Introspect(ctx context.Context, tok string) (Introspection, error) {
	sess, err := f.sessions.Validate(ctx, tok)
	if err != nil {
		f.metrics.countRejection(err)
		if sessiond.IsRejection(err) {
			return Introspection{}, nil
		}
		return Introspection{}, err
	}
	var u *account.User
	if !sess.Anonymous() {
		u, err = f.accounts.User(ctx, sess.UserID)
		switch {
		case errors.Is(err, account.ErrUserNotFound):
			return Introspection{}, nil
		case err != nil:
			return Introspection{}, err
		}
	}
	f.metrics.validated.Inc()
	return Introspection{Active: true, Session: sess, User: u}, nil
}

// IsUnauthenticated reports whether err means the request signs no one in
// (ErrUnauthenticated or a rejected token), as opposed to a failure.
func IsUnauthenticated(err error) bool {
	return errors.Is(err, ErrUnauthenticated) || sessiond.IsRejection(err)
}
