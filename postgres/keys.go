package postgres

import (
	"context"

	"github.com/sessiond/sessiond/accesstoken"
)

// Keys is an accesstoken.KeyStore in the Store's database (table
// signing_keys, migration 00004). Get it with Store.Keys; it shares the
// Store's pool and timeout and is closed with it.
type Keys struct{ s *Store }

var _ accesstoken.KeyStore = (*Keys)(nil)

// Keys returns the signing-key store kept in the same database (and
// schema), shared by every node that uses it.
func (s *Store) Keys() *Keys { return &Keys{s: s} }

// The statements of Keys.
const (
	qSigningKeys      = `SELECT id, sealed, created_at, active_at FROM signing_keys`
	qAddSigningKey    = `INSERT INTO signing_keys (id, sealed, created_at, active_at) VALUES ($1, $2, $3, $4)`
	qDeleteSigningKey = `DELETE FROM signing_keys WHERE id = $1`
)

// SigningKeys implements accesstoken.KeyStore.
func (k *Keys) SigningKeys(ctx context.Context) ([]accesstoken.StoredKey, error) {
	ctx, cancel := k.s.bound(ctx)
	defer cancel()
	rows, err := k.s.pool.Query(ctx, qSigningKeys)
	if err != nil {
		return nil, wrap("list signing keys", err)
	}
	defer rows.Close()
	var out []accesstoken.StoredKey
	for rows.Next() {
		var sk accesstoken.StoredKey
		if err := rows.Scan(&sk.ID, &sk.Sealed, &sk.CreatedAt, &sk.ActiveAt); err != nil {
			return nil, wrap("list signing keys", err)
		}
		sk.CreatedAt, sk.ActiveAt = sk.CreatedAt.UTC(), sk.ActiveAt.UTC()
		out = append(out, sk)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list signing keys", err)
	}
	return out, nil
}

// AddSigningKey implements accesstoken.KeyStore.
func (k *Keys) AddSigningKey(ctx context.Context, sk accesstoken.StoredKey) error {
	ctx, cancel := k.s.bound(ctx)
	defer cancel()
	_, err := k.s.pool.Exec(ctx, qAddSigningKey, sk.ID, blob(sk.Sealed), sk.CreatedAt, sk.ActiveAt)
	if isCode(err, codeUniqueViolation) {
		return accesstoken.ErrKeyExists
	}
	return wrap("add signing key", err)
}

// DeleteSigningKey implements accesstoken.KeyStore.
func (k *Keys) DeleteSigningKey(ctx context.Context, id string) error {
	ctx, cancel := k.s.bound(ctx)
	defer cancel()
	_, err := k.s.pool.Exec(ctx, qDeleteSigningKey, id)
	return wrap("delete signing key", err)
}
