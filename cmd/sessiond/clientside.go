package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/webhook"
)

// clientSide wires client-side sessions when a key-encryption key is
// configured: the shared signing keys (a first one is made when there is
// none), the refresh chain key derived from the same secret, and the issuer.
func (a *app) clientSide(ctx context.Context) (*flows.ClientSide, error) {
	c := a.cfg
	if c.kek == "" {
		return nil, nil
	}
	if a.backend.keys == nil {
		return nil, errors.New("client-side sessions need the signing keys in the database; this --database keeps none")
	}
	enc, err := accesstoken.NewKeyEncryption(c.kek)
	if err != nil {
		return nil, err
	}
	ring := accesstoken.NewKeyring(a.backend.keys, enc, nil)
	if err := ring.EnsureKey(ctx); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	chain, err := accesstoken.NewChain(enc.ChainKey())
	if err != nil {
		return nil, err
	}
	a.keyring = ring
	return &flows.ClientSide{
		Keys:         ring,
		Issuer:       accesstoken.Issuer{Name: c.jwtIssuer(), Audience: splitList(c.JWTAudience), TTL: c.AccessTokenTTL},
		Chain:        chain,
		RefreshGrace: c.RefreshGrace,
		Skew:         c.ClockSkew,
		JWKSMaxAge:   c.JWKSMaxAge,
	}, nil
}

// keysCmd manages the signing keys of client-side sessions.
func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: sessiond keys rotate|list|new-kek [flags]")
	}
	switch args[0] {
	case "new-kek":
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(k))
		return nil
	case "rotate", "list":
	default:
		return fmt.Errorf("keys: unknown command %q (rotate, list, new-kek)", args[0])
	}
	verb := args[0]
	c, err := subFlags("sessiond keys "+verb, args[1:], getenv, stderr, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	if c.kek == "" {
		return errors.New("keys: no key-encryption key (SESSIOND_KEY_ENCRYPTION_KEY or --key-encryption-key-file)")
	}
	a, err := newApp(ctx, c, c.logger(stderr), getenv)
	if err != nil {
		return err
	}
	defer a.backend.close()
	if verb == "rotate" {
		k, err := a.keyring.Rotate(ctx, c.KeyActivationDelay)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added signing key %s: published now, signs from %s\n", k.ID, k.ActiveAt.Format(time.RFC3339))
	}
	ring := a.keyring.Ring()
	now := time.Now()
	signing, _ := ring.Signing(now)
	published := map[string]bool{}
	for _, k := range ring.Published(now, c.AccessTokenTTL, c.ClockSkew) {
		published[k.ID] = true
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tCREATED\tSIGNS FROM\tSTATE")
	for _, k := range ring.Keys() {
		state := "retired, published until its tokens expire"
		switch {
		case signing != nil && k.ID == signing.ID:
			state = "signing"
		case now.Before(k.ActiveAt):
			state = "published, not yet signing"
		case !published[k.ID]:
			state = "expired, removed at the next prune"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.CreatedAt.Format(time.RFC3339), k.ActiveAt.Format(time.RFC3339), state)
	}
	return tw.Flush()
}

// notificationQueue is the queue of security notifications in the
// database, sealed with a key derived from the key-encryption key when one
// is configured (the messages may carry reset and email-change tokens).
func (a *app) notificationQueue() (webhook.Notifications, error) {
	q := webhook.Notifications{Queue: a.backend.notify}
	if a.cfg.kek == "" {
		return q, nil
	}
	enc, err := accesstoken.NewKeyEncryption(a.cfg.kek)
	if err != nil {
		return q, err
	}
	q.Key = enc.OutboxKey()
	return q, nil
}
