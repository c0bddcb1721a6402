package server

import (
	"encoding/json"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

// sessionView is the contract's session object.
type sessionView struct {
	ID                string    `json:"id"`
	UserID            *string   `json:"user_id"`
	Anonymous         bool      `json:"anonymous"`
	RememberMe        bool      `json:"remember_me"`
	CreatedAt         time.Time `json:"created_at"`
	LastSeenAt        time.Time `json:"last_seen_at"`
	ExpiresAt         time.Time `json:"expires_at"`
	IdleExpiresAt     time.Time `json:"idle_expires_at"`
	AbsoluteExpiresAt time.Time `json:"absolute_expires_at"`
	// AuthenticatedAt is when the user last proved the password in this
	// session; null when never (anonymous, administrator-made).
	AuthenticatedAt *time.Time `json:"authenticated_at"`
	Device          deviceView `json:"device"`
	IP              string     `json:"ip"`
	Current         bool       `json:"current"`
}

type deviceView struct {
	UserAgent string `json:"user_agent"`
	Browser   string `json:"browser"`
	OS        string `json:"os"`
}

func viewSession(s *sessiond.Session, current bool) sessionView {
	v := sessionView{
		ID:                s.ID,
		Anonymous:         s.Anonymous(),
		RememberMe:        s.RememberMe,
		CreatedAt:         s.CreatedAt.UTC(),
		LastSeenAt:        s.LastSeenAt.UTC(),
		ExpiresAt:         s.ExpiresAt().UTC(),
		IdleExpiresAt:     s.IdleExpiresAt.UTC(),
		AbsoluteExpiresAt: s.AbsoluteExpiresAt.UTC(),
		Device:            deviceView{UserAgent: s.Device.UserAgent, Browser: s.Device.Browser, OS: s.Device.OS},
		IP:                s.IP,
		Current:           current,
	}
	if !s.Anonymous() {
		uid := s.UserID
		v.UserID = &uid
	}
	if !s.AuthenticatedAt.IsZero() {
		at := s.AuthenticatedAt.UTC()
		v.AuthenticatedAt = &at
	}
	return v
}

func viewSessions(list []*sessiond.Session, currentID string) []sessionView {
	out := make([]sessionView, len(list))
	for i, s := range list {
		out[i] = viewSession(s, s.ID == currentID)
	}
	return out
}

// userView is the contract's user object: never a password hash.
type userView struct {
	ID        string          `json:"id"`
	Email     string          `json:"email"`
	Profile   json.RawMessage `json:"profile"`
	CreatedAt time.Time       `json:"created_at"`
}

func viewUser(u *account.User) *userView {
	if u == nil {
		return nil
	}
	p := json.RawMessage(u.Profile)
	if len(p) == 0 {
		p = json.RawMessage("{}")
	}
	return &userView{ID: u.ID, Email: u.Email, Profile: p, CreatedAt: u.CreatedAt.UTC()}
}
