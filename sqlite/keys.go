package sqlite

import (
	"context"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sessiond/sessiond/accesstoken"
)

// Keys is an accesstoken.KeyStore in the Store's SQLite file (table
// signing_keys, migration 00004). Get it with Store.Keys.
type Keys struct{ s *Store }

var _ accesstoken.KeyStore = (*Keys)(nil)

// Keys returns the signing-key store kept in the same database file.
func (s *Store) Keys() *Keys { return &Keys{s: s} }

// SigningKeys implements accesstoken.KeyStore.
func (k *Keys) SigningKeys(ctx context.Context) ([]accesstoken.StoredKey, error) {
	rows, err := k.s.r.QueryContext(ctx, `SELECT id, sealed, created_at, active_at FROM signing_keys`)
	if err != nil {
		return nil, wrap("list signing keys", err)
	}
	defer rows.Close()
	var out []accesstoken.StoredKey
	for rows.Next() {
		var sk accesstoken.StoredKey
		if err := rows.Scan(&sk.ID, &sk.Sealed, microsDest{&sk.CreatedAt}, microsDest{&sk.ActiveAt}); err != nil {
			return nil, wrap("list signing keys", err)
		}
		out = append(out, sk)
	}
	return out, wrap("list signing keys", rows.Err())
}

// AddSigningKey implements accesstoken.KeyStore.
func (k *Keys) AddSigningKey(ctx context.Context, sk accesstoken.StoredKey) error {
	_, err := k.s.w.ExecContext(ctx, `INSERT INTO signing_keys (id, sealed, created_at, active_at) VALUES (?1, ?2, ?3, ?4)`,
		sk.ID, sk.Sealed, micros(sk.CreatedAt), micros(sk.ActiveAt))
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return accesstoken.ErrKeyExists
	}
	return wrap("add signing key", err)
}

// DeleteSigningKey implements accesstoken.KeyStore.
func (k *Keys) DeleteSigningKey(ctx context.Context, id string) error {
	_, err := k.s.w.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?1`, id)
	return wrap("delete signing key", err)
}
