package account

import (
	"time"

	"github.com/maypok86/otter/v2"
)

// WithUserCache keeps up to size users (without password hashes) in
// memory for maxAge, so the user lookup of every "who am I?" answer does
// not read the store. Changes through this Service drop the entry at once;
// changes made on another node show after maxAge at the latest. What is
// cached is display data (email, profile): whether a session is valid is
// never decided from it.
func WithUserCache(size int, maxAge time.Duration) Option {
	return func(s *Service) {
		if size <= 0 || maxAge <= 0 {
			return
		}
		s.users = &userCache{maxAge: maxAge, c: otter.Must(&otter.Options[string, cachedUser]{MaximumSize: size})}
	}
}

type userCache struct {
	maxAge time.Duration
	c      *otter.Cache[string, cachedUser]
}

type cachedUser struct {
	u        User
	loadedAt time.Time
}

func (uc *userCache) get(id string, now time.Time) (*User, bool) {
	if uc == nil {
		return nil, false
	}
	e, ok := uc.c.GetIfPresent(id)
	if !ok || now.Sub(e.loadedAt) >= uc.maxAge || now.Before(e.loadedAt) {
		return nil, false
	}
	u := e.u // Profile is shared: see Service.User
	return &u, true
}

func (uc *userCache) put(u *User, loadedAt time.Time) {
	if uc == nil {
		return
	}
	c := *u
	c.Profile = append([]byte(nil), u.Profile...)
	uc.c.Set(u.ID, cachedUser{u: c, loadedAt: loadedAt})
}

func (uc *userCache) drop(id string) {
	if uc != nil {
		uc.c.Invalidate(id)
	}
}
