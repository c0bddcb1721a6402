package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sessiond/sessiond/account"
)

// Accounts is an in-memory account.Store, behind one lock. The zero value
// is not usable; call NewAccounts.
type Accounts struct {
	mu       sync.Mutex
	users    map[string]*account.User // by id
	byEmail  map[string]string        // email -> id
	lockouts map[string]account.Lockout
	resets   map[[32]byte]resetToken
	resetOf  map[string][32]byte // user id -> hash of its one reset token
	changes  map[[32]byte]emailChange
	changeOf map[string][32]byte       // user id -> hash of its one pending email change
	cancels  map[[32]byte][32]byte     // cancellation hash -> confirmation hash
	requests map[string][]resetRequest // user id -> counted reset requests, oldest first
}

type resetRequest struct {
	from string
	at   time.Time
}

type emailChange struct {
	userID, newEmail string
	cancelHash       [32]byte
	expiresAt        time.Time
}

type resetToken struct {
	userID    string
	expiresAt time.Time
}

var _ account.Store = (*Accounts)(nil)

// NewAccounts returns an empty account store.
func NewAccounts() *Accounts {
	return &Accounts{
		users:    make(map[string]*account.User),
		byEmail:  make(map[string]string),
		lockouts: make(map[string]account.Lockout),
		resets:   make(map[[32]byte]resetToken),
		resetOf:  make(map[string][32]byte),
		changes:  make(map[[32]byte]emailChange),
		changeOf: make(map[string][32]byte),
		cancels:  make(map[[32]byte][32]byte),
		requests: make(map[string][]resetRequest),
	}
}

func cloneUser(u *account.User) *account.User {
	c := *u
	c.Profile = slices.Clone(u.Profile)
	return &c
}

// CreateUser implements account.Store.
func (a *Accounts) CreateUser(ctx context.Context, u *account.User) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.byEmail[u.Email]; ok {
		return account.ErrEmailTaken
	}
	if _, ok := a.users[u.ID]; ok {
		return fmt.Errorf("memstore: user id %q exists", u.ID)
	}
	a.users[u.ID] = cloneUser(u)
	a.byEmail[u.Email] = u.ID
	return nil
}

// UserByID implements account.Store.
func (a *Accounts) UserByID(ctx context.Context, id string) (*account.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[id]
	if !ok {
		return nil, account.ErrUserNotFound
	}
	return cloneUser(u), nil
}

// UserByEmail implements account.Store.
func (a *Accounts) UserByEmail(ctx context.Context, email string) (*account.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.byEmail[email]
	if !ok {
		return nil, account.ErrUserNotFound
	}
	return cloneUser(a.users[id]), nil
}

// UpdateProfile implements account.Store. update runs under the store's
// lock, once.
func (a *Accounts) UpdateProfile(ctx context.Context, id string, now time.Time, update func([]byte) ([]byte, error)) (*account.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[id]
	if !ok {
		return nil, account.ErrUserNotFound
	}
	p, err := update(slices.Clone(u.Profile))
	if err != nil {
		return nil, err
	}
	u.Profile = slices.Clone(p)
	u.UpdatedAt = now
	return cloneUser(u), nil
}

// SetPasswordHash implements account.Store.
func (a *Accounts) SetPasswordHash(ctx context.Context, id, hash, ifHash string, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[id]
	if !ok {
		return false, account.ErrUserNotFound
	}
	if ifHash != "" && u.PasswordHash != ifHash {
		return false, nil
	}
	u.PasswordHash = hash
	u.PasswordChangedAt, u.UpdatedAt = now, now
	a.deleteResets(id)
	return true, nil
}

// DeleteUser implements account.Store.
func (a *Accounts) DeleteUser(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[id]
	if !ok {
		return account.ErrUserNotFound
	}
	delete(a.byEmail, u.Email)
	delete(a.users, id)
	delete(a.lockouts, id)
	a.deleteResets(id)
	a.deleteChanges(id)
	delete(a.requests, id)
	return nil
}

// TakeResetRequest implements account.Store, under the store's lock.
func (a *Accounts) TakeResetRequest(ctx context.Context, userID, from string, now time.Time, l account.ResetLimit) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.users[userID]; !ok {
		return false, account.ErrUserNotFound
	}
	since := now.Add(-l.Window)
	reqs := slices.DeleteFunc(a.requests[userID], func(r resetRequest) bool { return !r.at.After(since) })
	fromKey := 0
	for _, r := range reqs {
		if r.from == from {
			fromKey++
		}
	}
	ok := len(reqs) < l.Total && fromKey < l.PerKey
	if ok {
		reqs = append(reqs, resetRequest{from: from, at: now})
	}
	if len(reqs) == 0 {
		delete(a.requests, userID)
	} else {
		a.requests[userID] = reqs
	}
	return ok, nil
}

// UpdateLockout implements account.Store. update runs under the store's
// lock, once.
func (a *Accounts) UpdateLockout(ctx context.Context, id string, update func(account.Lockout) account.Lockout) (account.Lockout, error) {
	if err := ctx.Err(); err != nil {
		return account.Lockout{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.users[id]; !ok {
		return account.Lockout{}, account.ErrUserNotFound
	}
	l := update(a.lockouts[id])
	if l == (account.Lockout{}) {
		delete(a.lockouts, id)
	} else {
		a.lockouts[id] = l
	}
	return l, nil
}

// CreateResetToken implements account.Store.
func (a *Accounts) CreateResetToken(ctx context.Context, userID string, hash [32]byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.users[userID]; !ok {
		return account.ErrUserNotFound
	}
	a.deleteResets(userID)
	a.resets[hash] = resetToken{userID: userID, expiresAt: expiresAt}
	a.resetOf[userID] = hash
	return nil
}

// ConsumeResetToken implements account.Store.
func (a *Accounts) ConsumeResetToken(ctx context.Context, hash [32]byte, now time.Time) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.resets[hash]
	if !ok {
		return "", account.ErrInvalidResetToken
	}
	// Used or expired, it goes either way.
	a.deleteResets(t.userID)
	if !t.expiresAt.After(now) {
		return "", account.ErrInvalidResetToken
	}
	return t.userID, nil
}

// deleteResets removes the user's reset token, if any. Callers hold mu.
func (a *Accounts) deleteResets(userID string) {
	if h, ok := a.resetOf[userID]; ok {
		delete(a.resets, h)
		delete(a.resetOf, userID)
	}
}

// deleteChanges removes the user's pending email change, if any. Callers
// hold mu.
func (a *Accounts) deleteChanges(userID string) {
	if h, ok := a.changeOf[userID]; ok {
		delete(a.cancels, a.changes[h].cancelHash)
		delete(a.changes, h)
		delete(a.changeOf, userID)
	}
}

// CreateEmailChange implements account.Store.
func (a *Accounts) CreateEmailChange(ctx context.Context, userID, newEmail string, hash, cancelHash [32]byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.users[userID]; !ok {
		return account.ErrUserNotFound
	}
	a.deleteChanges(userID)
	a.changes[hash] = emailChange{userID: userID, newEmail: newEmail, cancelHash: cancelHash, expiresAt: expiresAt}
	a.changeOf[userID] = hash
	a.cancels[cancelHash] = hash
	return nil
}

// CancelEmailChanges implements account.Store.
func (a *Accounts) CancelEmailChanges(ctx context.Context, userID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, had := a.changeOf[userID]
	a.deleteChanges(userID)
	return had, nil
}

// CancelEmailChange implements account.Store.
func (a *Accounts) CancelEmailChange(ctx context.Context, cancelHash [32]byte, now time.Time) (string, string, error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.cancels[cancelHash]
	if !ok {
		return "", "", account.ErrInvalidEmailChangeToken
	}
	c := a.changes[h]
	a.deleteChanges(c.userID)
	if !c.expiresAt.After(now) {
		return "", "", account.ErrInvalidEmailChangeToken
	}
	return c.userID, c.newEmail, nil
}

// ApplyEmailChange implements account.Store.
func (a *Accounts) ApplyEmailChange(ctx context.Context, hash [32]byte, now time.Time) (*account.User, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.changes[hash]
	if !ok {
		return nil, "", account.ErrInvalidEmailChangeToken
	}
	if !c.expiresAt.After(now) {
		a.deleteChanges(c.userID)
		return nil, "", account.ErrInvalidEmailChangeToken
	}
	u, ok := a.users[c.userID]
	if !ok { // cannot happen: DeleteUser removes the changes
		a.deleteChanges(c.userID)
		return nil, "", account.ErrInvalidEmailChangeToken
	}
	if id, taken := a.byEmail[c.newEmail]; taken && id != u.ID {
		return nil, "", account.ErrEmailTaken
	}
	old := u.Email
	delete(a.byEmail, old)
	a.byEmail[c.newEmail] = u.ID
	u.Email, u.UpdatedAt = c.newEmail, now
	a.deleteChanges(u.ID)
	a.deleteResets(u.ID)
	return cloneUser(u), old, nil
}
