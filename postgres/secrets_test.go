package postgres_test

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/postgres"
)

// TestNoTokensInDatabase creates, rotates, replaces and revokes sessions
// and creates and consumes reset tokens, then reads every column of every
// table of the store's schema as text and checks that no token appears:
// not its text, not its random base64 body, not the bytes that body encodes
// (as bytea's hex text, or as raw text). Only hashes are stored.
func TestNoTokensInDatabase(t *testing.T) {
	schema := postgres.TestSchema(t)
	st := postgres.OpenSchema(t, schema)
	ctx := t.Context()
	m, err := sessiond.NewManager(st, sessiond.Policy{MaxSessionsPerUser: 3})
	if err != nil {
		t.Fatal(err)
	}

	type secret struct{ tok, prefix string }
	var secrets []secret
	create := func(p sessiond.CreateParams) (*sessiond.Session, string) {
		t.Helper()
		s, tok, err := m.Create(ctx, p)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		secrets = append(secrets, secret{tok, sessiond.TokenPrefix})
		return s, tok
	}
	const marker = "marker-value-that-must-be-stored"
	for range 5 { // over the limit of 3: some are revoked with ReasonLimit
		create(sessiond.CreateParams{UserID: "u1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", IP: "192.0.2.1"})
	}
	anon, anonTok := create(sessiond.CreateParams{Data: map[string][]byte{"cart": []byte(marker)}})
	if err := m.SetData(ctx, anon.ID, "flash", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	upgraded, _ := create(sessiond.CreateParams{UserID: "u2", Replace: anonTok})
	if err := m.SetData(ctx, upgraded.ID, "csrf", []byte("not-a-session-token")); err != nil {
		t.Fatal(err)
	}
	_, tok := create(sessiond.CreateParams{UserID: "u3", RememberMe: true})
	for range 2 {
		_, next, err := m.Rotate(ctx, tok)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		secrets = append(secrets, secret{next, sessiond.TokenPrefix})
		tok = next
	}
	_, out := create(sessiond.CreateParams{UserID: "u4"})
	if _, err := m.RevokeToken(ctx, out, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	live := sessiond.HashToken(tok)

	// Reset tokens, as account.Service makes them: the first two of each
	// user are replaced, Bob's last one is used.
	now := time.Now().UTC().Truncate(time.Microsecond)
	const email = "marker-email@example.com"
	for _, e := range []string{email, "bob@example.com"} {
		u := &account.User{ID: "user-" + e, Email: e, PasswordHash: "h", Profile: []byte("{}"),
			CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			rt, err := sessiond.NewSecret(nil, account.ResetTokenPrefix)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, secret{rt, account.ResetTokenPrefix})
			if err := st.CreateResetToken(ctx, u.ID, sessiond.HashToken(rt), now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := st.ConsumeResetToken(ctx, sessiond.HashToken(secrets[len(secrets)-1].tok), now); err != nil {
		t.Fatalf("ConsumeResetToken: %v", err)
	}

	// Every row of every table of the schema, as text: a row's text form
	// holds every column, bytea as \x and hex.
	conn := postgres.AdminConn(t, schema)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{schema, table}.Sanitize()+` AS t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d rows", table, len(texts))
		for _, s := range texts {
			dump.WriteString(s)
			dump.WriteByte('\n')
		}
	}
	all := strings.ToLower(dump.String())

	// The check must be able to fail: what is stored is there.
	for what, needle := range map[string]string{
		"the live session's token hash": hex.EncodeToString(live[:]),
		"the session data":              hex.EncodeToString([]byte(marker)),
		"the user's email":              email,
	} {
		if !strings.Contains(all, needle) {
			t.Fatalf("%s is not in the tables: reading the wrong tables?", what)
		}
	}
	for _, s := range secrets {
		body := s.tok[len(s.prefix) : len(s.prefix)+base64.RawURLEncoding.EncodedLen(32)]
		raw, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range []string{s.tok, body, hex.EncodeToString(raw), hex.EncodeToString([]byte(s.tok)), string(raw)} {
			if strings.Contains(all, strings.ToLower(needle)) {
				t.Errorf("the tables hold a token (%q)", needle)
			}
		}
	}
}
