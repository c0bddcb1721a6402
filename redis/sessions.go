package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessiond/sessiond"
)

// Record fields; see doc.go.
const (
	fHash      = "h"
	fID        = "id"
	fUser      = "u"
	fRemember  = "rm"
	fCreated   = "c"
	fLastSeen  = "l"
	fIdle      = "ie"
	fAbsolute  = "ae"
	fUserAgent = "ua"
	fBrowser   = "br"
	fOS        = "os"
	fIP        = "ip"
	fRevokedAt = "ra"
	fReason    = "rr"
	fAuthAt    = "aa" // AuthenticatedAt, absent when zero
	fTransport = "tr" // Transport, absent when empty
	fRotatedAt = "rt" // RotatedAt, absent when zero
	fPrevHash  = "ph" // PrevTokenHash, absent when zero

	// Data hash: user keys carry a prefix so that they can never clash with
	// the size counter.
	dataKeyPrefix = "="
	dataSizeField = "#"
)

func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// millisUp is t in Unix milliseconds, rounded up, for PEXPIREAT and PXAT:
// Redis must never drop a key before the deadline.
func millisUp(t time.Time) int64 {
	us := t.UnixMicro()
	ms := us / 1000
	if us%1000 > 0 {
		ms++
	}
	return ms
}

// tagOf is the hash tag of a session: its user, or itself when anonymous.
func tagOf(s *sessiond.Session) string {
	if s.UserID != "" {
		return esc(s.UserID)
	}
	return esc(s.ID)
}

// recordFields lists the record of s as field/value pairs.
func recordFields(s *sessiond.Session) []string {
	rm := "0"
	if s.RememberMe {
		rm = "1"
	}
	f := []string{
		fHash, string(s.TokenHash[:]),
		fID, s.ID,
		fUser, s.UserID,
		fRemember, rm,
		fCreated, micros(s.CreatedAt),
		fLastSeen, micros(s.LastSeenAt),
		fIdle, micros(s.IdleExpiresAt),
		fAbsolute, micros(s.AbsoluteExpiresAt),
		fUserAgent, s.Device.UserAgent,
		fBrowser, s.Device.Browser,
		fOS, s.Device.OS,
		fIP, s.IP,
	}
	if !s.AuthenticatedAt.IsZero() {
		f = append(f, fAuthAt, micros(s.AuthenticatedAt))
	}
	if s.Transport != "" {
		f = append(f, fTransport, s.Transport)
	}
	if !s.RotatedAt.IsZero() {
		f = append(f, fRotatedAt, micros(s.RotatedAt))
	}
	if s.PrevTokenHash != (sessiond.TokenHash{}) {
		f = append(f, fPrevHash, string(s.PrevTokenHash[:]))
	}
	if s.Revoked() {
		f = append(f, fRevokedAt, micros(s.RevokedAt), fReason, s.RevokeReason)
	}
	return f
}

// decodeRecord turns a record hash into a session; an empty hash is
// ErrNotFound.
func decodeRecord(m map[string]string) (*sessiond.Session, error) {
	if len(m) == 0 {
		return nil, sessiond.ErrNotFound
	}
	s := &sessiond.Session{
		ID:           m[fID],
		UserID:       m[fUser],
		RememberMe:   m[fRemember] == "1",
		Device:       sessiond.Device{UserAgent: m[fUserAgent], Browser: m[fBrowser], OS: m[fOS]},
		IP:           m[fIP],
		RevokeReason: m[fReason],
		Transport:    m[fTransport],
	}
	h := m[fHash]
	if len(h) != len(s.TokenHash) || s.ID == "" {
		return nil, fmt.Errorf("corrupt session record %q", s.ID)
	}
	copy(s.TokenHash[:], h)
	if ph, ok := m[fPrevHash]; ok {
		if len(ph) != len(s.PrevTokenHash) {
			return nil, fmt.Errorf("corrupt session record %q: field %s", s.ID, fPrevHash)
		}
		copy(s.PrevTokenHash[:], ph)
	}
	for _, t := range []struct {
		f   string
		dst *time.Time
		opt bool
	}{
		{fCreated, &s.CreatedAt, false},
		{fLastSeen, &s.LastSeenAt, false},
		{fIdle, &s.IdleExpiresAt, false},
		{fAbsolute, &s.AbsoluteExpiresAt, false},
		{fRevokedAt, &s.RevokedAt, true},
		{fAuthAt, &s.AuthenticatedAt, true},
		{fRotatedAt, &s.RotatedAt, true},
	} {
		v, ok := m[t.f]
		if !ok && t.opt {
			continue
		}
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("corrupt session record %q: field %s: %q", s.ID, t.f, v)
		}
		*t.dst = time.UnixMicro(us).UTC()
	}
	return s, nil
}

// pairsToMap turns a flat field/value list into a map.
func pairsToMap(l []string) map[string]string {
	m := make(map[string]string, len(l)/2)
	for i := 0; i+1 < len(l); i += 2 {
		m[l[i]] = l[i+1]
	}
	return m
}

// decodeData turns a data hash into the session's data map (never nil).
func decodeData(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for f, v := range m {
		if k, ok := strings.CutPrefix(f, dataKeyPrefix); ok {
			out[k] = []byte(v)
		}
	}
	return out
}

// splitMember splits a "tag:id" pointer value or sweep member.
func splitMember(v string) (tag, id string, ok bool) {
	tag, id, ok = strings.Cut(v, ":")
	return tag, id, ok && tag != "" && id != ""
}

// tag returns the hash tag of the session with escaped id eid, or
// ErrNotFound when there is no such session.
func (s *Store) tag(ctx context.Context, eid string) (string, error) {
	if eid == "" {
		return "", sessiond.ErrNotFound
	}
	tag, ok, err := s.get(ctx, s.k.id(eid))
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", sessiond.ErrNotFound
	}
	return tag, nil
}

// Create implements sessiond.Store. The new session's own keys need no
// care for caches: its id and token hash are new. See doc.go for Replace
// across slots.
func (s *Store) Create(ctx context.Context, sess *sessiond.Session, opts sessiond.CreateOptions) error {
	if sess.ID == "" {
		return errors.New("redis: create: empty session id")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	err := s.create(ctx, sess, opts)
	return wrap("create", err)
}

func (s *Store) create(ctx context.Context, sess *sessiond.Session, opts sessiond.CreateOptions) error {
	id, tag := esc(sess.ID), tagOf(sess)
	now := micros(sess.CreatedAt)
	exp := sess.ExpiresAt()
	expMS := millisUp(exp)
	member := tag + ":" + id
	b := s.c.B()

	// The pointers, and the sweep entry first, so that no session is ever
	// without one.
	idKey, tokKey := s.k.id(id), s.k.token(sess.TokenHash)
	res := s.c.DoMulti(ctx,
		b.Zadd().Key(s.k.sweep()).ScoreMember().ScoreMember(float64(exp.UnixMicro()), member).Build(),
		b.Set().Key(idKey).Value(tag).Nx().PxatMillisecondsTimestamp(expMS).Build(),
		b.Set().Key(tokKey).Value(member).Nx().PxatMillisecondsTimestamp(expMS).Build(),
	)
	if err := res[0].Error(); err != nil {
		return err
	}
	var set []string
	var inUse error
	for i, p := range []struct{ key, what string }{{idKey, "session id"}, {tokKey, "token hash"}} {
		switch err := res[i+1].Error(); {
		case err == nil:
			set = append(set, p.key)
		case rueidis.IsRedisNil(err):
			inUse = fmt.Errorf("%s in use", p.what)
		default:
			inUse = err
		}
	}
	if inUse != nil {
		for _, k := range set {
			s.c.Do(ctx, b.Del().Key(k).Build())
		}
		return inUse
	}

	// The expected generation: compared by the create script, and first
	// here when a replaced session in another slot is about to end, so
	// that a refusal known already does not end it (see doc.go).
	expect := ""
	if g := opts.ExpectGeneration; g != nil && sess.UserID != "" {
		expect = strconv.FormatUint(*g, 10)
	}
	refuse := func() error {
		s.c.DoMulti(ctx, b.Del().Key(idKey).Build(), b.Del().Key(tokKey).Build(),
			b.Zrem().Key(s.k.sweep()).Member(member).Build())
		return sessiond.ErrCredentialsChanged
	}

	// The session to replace: in this slot, the create script ends it; in
	// another, a script there ends it first and hands over its data.
	data := sess.Data
	sameSlot := ""
	if opts.Replace != "" && opts.Replace != sess.ID {
		rid := esc(opts.Replace)
		otag, err := s.tag(ctx, rid)
		switch {
		case errors.Is(err, sessiond.ErrNotFound):
		case err != nil:
			return err
		case otag == tag:
			sameSlot = rid
		default:
			if expect != "" {
				g, err := s.UserGeneration(ctx, sess.UserID)
				if err != nil {
					return err
				}
				if strconv.FormatUint(g, 10) != expect {
					return refuse()
				}
			}
			carried, err := s.revoke(ctx, otag, rid, now, opts.ReplaceReason, opts.CarryData)
			if err != nil && !errors.Is(err, sessiond.ErrNotFound) {
				return err
			}
			if len(carried) > 0 {
				data = make(map[string][]byte, len(carried)+len(sess.Data))
				for k, v := range carried {
					data[k] = v
				}
				for k, v := range sess.Data {
					data[k] = v
				}
			}
		}
	}

	keys := []string{s.k.rec(tag, id), s.k.data(tag, id)}
	if sess.UserID != "" {
		keys = append(keys, s.k.user(tag))
	}
	fields := recordFields(sess)
	carry := "0"
	if opts.CarryData {
		carry = "1"
	}
	args := make([]string, 0, 13+len(fields)+2*len(data))
	args = append(args, s.k.p, tag, id, now, strconv.Itoa(max(opts.MaxPerUser, 0)),
		sameSlot, opts.ReplaceReason, carry, sessiond.ReasonLimit,
		micros(exp), strconv.FormatInt(expMS, 10), expect, strconv.Itoa(len(fields)/2))
	args = append(args, fields...)
	for k, v := range data {
		args = append(args, dataKeyPrefix+k, string(v))
	}
	ended, err := createScript.exec(ctx, s.c, keys, args).AsStrSlice()
	if rueidis.IsRedisNil(err) {
		return refuse()
	}
	s.markRecords(tag, ended)
	return err
}

// markRecords notes that the records of escaped ids in tag changed.
func (s *Store) markRecords(tag string, ids []string) {
	if s.recent == nil || len(ids) == 0 {
		return
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.k.rec(tag, id)
	}
	s.recent.mark(keys...)
}

// revoke ends the session eid in tag if it is active at now, and returns
// its data when carry is set. It returns ErrNotFound when the session was
// not active.
func (s *Store) revoke(ctx context.Context, tag, eid, now, reason string, carry bool) (map[string][]byte, error) {
	c := "0"
	if carry {
		c = "1"
	}
	rec := s.k.rec(tag, eid)
	r, err := revokeScript.exec(ctx, s.c,
		[]string{rec, s.k.user(tag), s.k.data(tag, eid)},
		[]string{s.k.p, now, reason, eid, c}).AsStrSlice()
	s.recent.mark(rec)
	switch {
	case err != nil:
		return nil, err
	case len(r) == 0 || r[0] != "1":
		return nil, sessiond.ErrNotFound
	case len(r) > 1:
		return decodeData(pairsToMap(r[1:])), nil
	}
	return nil, nil
}

// ByTokenHash implements sessiond.Store: the token pointer, then the
// record, both from the client-side cache when they are there.
func (s *Store) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	sess, err := s.byTokenHash(ctx, h)
	return sess, wrap("by token hash", err)
}

func (s *Store) byTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	v, found, err := s.get(ctx, s.k.token(h))
	if err != nil {
		return nil, err
	}
	tag, id, ok := splitMember(v)
	if !found || !ok {
		return nil, sessiond.ErrNotFound
	}
	sess, err := s.record(ctx, tag, id)
	if err != nil {
		return nil, err
	}
	// The record is authoritative: the pointer may be one that a rotation
	// is about to delete.
	if !sess.TokenHash.Equal(h) {
		return nil, sessiond.ErrNotFound
	}
	return sess, nil
}

// record reads the record of escaped id in tag.
func (s *Store) record(ctx context.Context, tag, eid string) (*sessiond.Session, error) {
	key := s.k.rec(tag, eid)
	tracked := s.cached(key)
	m, err := s.read1(ctx, key, cacheHgetall, buildHgetall).AsStrMap()
	if err != nil {
		return nil, err
	}
	sess, err := decodeRecord(m)
	if err == nil && !tracked && s.changes.listening() {
		s.changes.announce([]string{sess.ID}) // see Listen
	}
	return sess, err
}

// ByID implements sessiond.Store: the id pointer, then the record.
func (s *Store) ByID(ctx context.Context, id string) (*sessiond.Session, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	sess, err := s.byID(ctx, esc(id))
	return sess, wrap("by id", err)
}

func (s *Store) byID(ctx context.Context, eid string) (*sessiond.Session, error) {
	tag, err := s.tag(ctx, eid)
	if err != nil {
		return nil, err
	}
	return s.record(ctx, tag, eid)
}

// ListByUser implements sessiond.Store: one script in the user's slot,
// which also trims the user's index.
func (s *Store) ListByUser(ctx context.Context, userID string, now time.Time) ([]*sessiond.Session, error) {
	if userID == "" {
		return []*sessiond.Session{}, nil // anonymous sessions belong to nobody
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag := esc(userID)
	msgs, err := listScript.exec(ctx, s.c, []string{s.k.user(tag)}, []string{s.k.p, tag, micros(now)}).ToArray()
	if err != nil {
		return nil, wrap("list by user", err)
	}
	out := make([]*sessiond.Session, 0, len(msgs))
	for _, m := range msgs {
		l, err := m.AsStrSlice()
		if err != nil {
			return nil, wrap("list by user", err)
		}
		sess, err := decodeRecord(pairsToMap(l))
		if err != nil {
			return nil, wrap("list by user", err)
		}
		out = append(out, sess)
	}
	slices.SortFunc(out, func(a, b *sessiond.Session) int {
		if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out, nil
}

// Touch implements sessiond.Store. Touches are grouped by hash tag (user):
// each group is one script, applied as a whole; see doc.go. The pointers'
// expiry follows in one more round trip.
func (s *Store) Touch(ctx context.Context, touches []sessiond.Touch) error {
	if len(touches) == 0 {
		return ctx.Err()
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return wrap("touch", s.touch(ctx, touches))
}

func (s *Store) touch(ctx context.Context, touches []sessiond.Touch) error {
	ids := make([]string, len(touches))
	idKeys := make([]string, len(touches))
	for i, t := range touches {
		ids[i] = esc(t.ID)
		idKeys[i] = s.k.id(ids[i])
	}
	tags, found, err := s.gets(ctx, idKeys...)
	if err != nil {
		return err
	}
	var calls []call
	group := make(map[string]int) // tag → index in calls
	for i, t := range touches {
		if !found[i] || ids[i] == "" {
			continue // missing: skipped, as the contract says
		}
		tag := tags[i]
		j, ok := group[tag]
		if !ok {
			j = len(calls)
			group[tag] = j
			calls = append(calls, call{args: []string{s.k.p, tag}})
		}
		calls[j].keys = append(calls[j].keys, s.k.rec(tag, ids[i]))
		calls[j].args = append(calls[j].args, ids[i], micros(t.LastSeenAt), micros(t.IdleExpiresAt))
	}
	if len(calls) == 0 {
		return nil
	}
	var errs []error
	var changed []string
	b := s.c.B()
	var follow rueidis.Commands
	for j, r := range touchScript.execMulti(ctx, s.c, calls) {
		out, err := r.AsStrSlice()
		if err != nil {
			changed = append(changed, calls[j].keys...) // some may have changed
			errs = append(errs, err)
			continue
		}
		tag := calls[j].args[1]
		for i := 0; i+2 < len(out); i += 3 {
			changed = append(changed, s.k.rec(tag, out[i]))
			at, _ := strconv.ParseInt(out[i+2], 10, 64)
			if at <= 0 || len(out[i+1]) != len(sessiond.TokenHash{}) {
				continue
			}
			var h sessiond.TokenHash
			copy(h[:], out[i+1])
			follow = append(follow,
				b.Pexpireat().Key(s.k.id(out[i])).MillisecondsTimestamp(at).Gt().Build(),
				b.Pexpireat().Key(s.k.token(h)).MillisecondsTimestamp(at).Gt().Build())
		}
	}
	s.recent.mark(changed...)
	if len(follow) > 0 {
		for _, r := range s.c.DoMulti(ctx, follow...) {
			if err := r.Error(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Rotate implements sessiond.Store. The new token's pointer is written
// first; then a compare-and-swap of the record's hash decides; then the old
// pointer goes (or the new one, when the swap failed). Between the steps a
// lookup of either hash ends at the record, which is authoritative.
func (s *Store) Rotate(ctx context.Context, id string, old, new sessiond.TokenHash, now time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return wrap("rotate", s.rotate(ctx, esc(id), old, new, now, false))
}

// Reauthenticate implements sessiond.Store: Rotate, whose compare-and-swap
// also records the proof of the password in the record.
func (s *Store) Reauthenticate(ctx context.Context, id string, old, new sessiond.TokenHash, at time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return wrap("reauthenticate", s.rotate(ctx, esc(id), old, new, at, true))
}

// rotate swaps the token of the session eid; with reauth it also sets the
// record's AuthenticatedAt to now, in the same script.
func (s *Store) rotate(ctx context.Context, eid string, old, new sessiond.TokenHash, now time.Time, reauth bool) error {
	tag, err := s.tag(ctx, eid)
	if err != nil {
		return err
	}
	rec := s.k.rec(tag, eid)
	sess, err := s.record(ctx, tag, eid)
	if err != nil {
		return err
	}
	// A deadline read from the cache may be behind a touch; the swap
	// returns the current one and the pointer follows.
	expMS := millisUp(sess.ExpiresAt())
	oldKey, newKey := s.k.token(old), s.k.token(new)
	b := s.c.B()
	err = s.c.Do(ctx, b.Set().Key(newKey).Value(tag+":"+eid).Nx().PxatMillisecondsTimestamp(expMS).Build()).Error()
	switch {
	case rueidis.IsRedisNil(err):
		return errors.New("new token hash in use")
	case err != nil:
		return err
	}
	args := []string{s.k.p, string(old[:]), string(new[:]), micros(now)}
	if reauth {
		args = append(args, fAuthAt)
	}
	at, err := rotateScript.exec(ctx, s.c, []string{rec}, args).AsInt64()
	if err != nil {
		// The swap may have happened: the new pointer stays.
		s.recent.mark(rec, oldKey)
		return err
	}
	if at == 0 {
		s.c.Do(ctx, b.Del().Key(newKey).Build())
		return sessiond.ErrNotFound
	}
	s.recent.mark(rec, oldKey)
	cmds := rueidis.Commands{b.Del().Key(oldKey).Build()}
	if at > expMS {
		cmds = append(cmds, b.Pexpireat().Key(newKey).MillisecondsTimestamp(at).Gt().Build())
	}
	// Best effort: a lingering old pointer is refused at the record, and
	// expires with the session.
	s.c.DoMulti(ctx, cmds...)
	return nil
}

// Revoke implements sessiond.Store: one script in the session's slot.
func (s *Store) Revoke(ctx context.Context, id string, now time.Time, reason string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	eid := esc(id)
	tag, err := s.tag(ctx, eid)
	if err == nil {
		_, err = s.revoke(ctx, tag, eid, micros(now), reason, false)
	}
	return wrap("revoke", err)
}

// RevokeByUser implements sessiond.Store: one script in the user's slot.
func (s *Store) RevokeByUser(ctx context.Context, userID, exceptID string, now time.Time, reason string) (int, error) {
	if userID == "" {
		return 0, ctx.Err()
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag := esc(userID)
	ended, err := revokeUserScript.exec(ctx, s.c, []string{s.k.user(tag), s.k.gen(tag)},
		[]string{s.k.p, tag, micros(now), reason, esc(exceptID)}).AsStrSlice()
	s.markRecords(tag, ended)
	return len(ended), wrap("revoke by user", err)
}

// UserGeneration implements sessiond.Store: one GET in the user's slot,
// never from the client-side cache.
func (s *Store) UserGeneration(ctx context.Context, userID string) (uint64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	v, err := s.c.Do(ctx, s.c.B().Get().Key(s.k.gen(esc(userID))).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("user generation", err)
	}
	g, err := strconv.ParseUint(v, 10, 64)
	return g, wrap("user generation", err)
}

// Data implements sessiond.Store: the record and the data hash, from the
// client-side cache when they are there.
func (s *Store) Data(ctx context.Context, id string, now time.Time) (map[string][]byte, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	d, err := s.data(ctx, esc(id), now)
	return d, wrap("data", err)
}

func (s *Store) data(ctx context.Context, eid string, now time.Time) (map[string][]byte, error) {
	tag, err := s.tag(ctx, eid)
	if err != nil {
		return nil, err
	}
	m, err := s.hgetall(ctx, s.k.rec(tag, eid), s.k.data(tag, eid))
	if err != nil {
		return nil, err
	}
	sess, err := decodeRecord(m[0])
	if err != nil {
		return nil, err
	}
	if sess.Check(now) != nil {
		return nil, sessiond.ErrNotFound
	}
	return decodeData(m[1]), nil
}

// SetData implements sessiond.Store: one script checks the session, counts
// the size and writes, so concurrent writes never lose each other.
func (s *Store) SetData(ctx context.Context, id, key string, value []byte, maxBytes int, now time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	n, err := s.dataScript(ctx, setDataScript, esc(id), micros(now), dataKeyPrefix+key, string(value), strconv.Itoa(maxBytes))
	switch {
	case err != nil:
	case n == 0:
		err = sessiond.ErrNotFound
	case n < 0:
		err = sessiond.ErrDataTooLarge
	}
	return wrap("set data", err)
}

// DeleteData implements sessiond.Store.
func (s *Store) DeleteData(ctx context.Context, id, key string, now time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	n, err := s.dataScript(ctx, deleteDataScript, esc(id), micros(now), dataKeyPrefix+key)
	if err == nil && n == 0 {
		err = sessiond.ErrNotFound
	}
	return wrap("delete data", err)
}

// dataScript runs a data script on the session eid.
func (s *Store) dataScript(ctx context.Context, sc *script, eid string, args ...string) (int64, error) {
	tag, err := s.tag(ctx, eid)
	if err != nil {
		return 0, err
	}
	dk := s.k.data(tag, eid)
	n, err := sc.exec(ctx, s.c, []string{s.k.rec(tag, eid), dk}, append([]string{s.k.p}, args...)).AsInt64()
	s.recent.mark(dk)
	return n, err
}

// DeleteExpired implements sessiond.Store on the caller's clock: it takes
// due members of the sweep index and deletes each session whose record is
// still due, in its own slot. Members of sessions used since are re-scored.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, ctx.Err()
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	n, err := s.deleteExpired(ctx, now, limit)
	return n, wrap("delete expired", err)
}

func (s *Store) deleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	nowUS := micros(now)
	sweep := s.k.sweep()
	b := s.c.B()
	removed := 0
	for removed < limit {
		due, err := s.c.Do(ctx, b.Zrange().Key(sweep).Min("-inf").Max(nowUS).Byscore().
			Limit(0, int64(limit-removed)).Build()).AsStrSlice()
		if err != nil || len(due) == 0 {
			return removed, err
		}
		n, err := s.sweepBatch(ctx, nowUS, due)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// sweepBatch deletes the sessions of due sweep members that are still due,
// re-scores the others, and returns how many sessions are gone.
func (s *Store) sweepBatch(ctx context.Context, nowUS string, due []string) (int, error) {
	sweep := s.k.sweep()
	b := s.c.B()
	var (
		calls   []call
		members []string // of calls
		ids     []string // escaped, of calls
		follow  rueidis.Commands
		marks   []string
		errs    []error
		gone    int
	)
	for _, m := range due {
		tag, id, ok := splitMember(m)
		if !ok { // not ours to understand: drop it
			follow = append(follow, b.Zrem().Key(sweep).Member(m).Build())
			continue
		}
		calls = append(calls, call{
			keys: []string{s.k.rec(tag, id), s.k.data(tag, id), s.k.user(tag)},
			args: []string{s.k.p, nowUS, id},
		})
		members, ids = append(members, m), append(ids, id)
	}
	if len(calls) > 0 {
		for j, r := range sweepScript.execMulti(ctx, s.c, calls) {
			out, err := r.ToArray()
			if err == nil && len(out) == 0 {
				err = errors.New("empty reply from the sweep script")
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			state, _ := out[0].AsInt64()
			if state == 1 && len(out) > 1 { // used since: not due yet
				exp, err := out[1].AsInt64()
				if err != nil {
					errs = append(errs, err)
					continue
				}
				follow = append(follow, b.Zadd().Key(sweep).Xx().ScoreMember().ScoreMember(float64(exp), members[j]).Build())
				continue
			}
			gone++
			pointers := []string{s.k.id(ids[j])}
			if state == 2 && len(out) > 1 {
				if h, err := out[1].ToString(); err == nil && len(h) == len(sessiond.TokenHash{}) {
					pointers = append(pointers, s.k.token(sessiond.TokenHash([]byte(h))))
				}
			}
			for _, k := range pointers { // one by one: they live in different slots
				follow = append(follow, b.Del().Key(k).Build())
			}
			follow = append(follow, b.Zrem().Key(sweep).Member(members[j]).Build())
			marks = append(marks, pointers...)
			marks = append(marks, calls[j].keys[:2]...)
		}
	}
	s.recent.mark(marks...)
	if len(follow) > 0 {
		for _, r := range s.c.DoMulti(ctx, follow...) {
			if err := r.Error(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return gone, errors.Join(errs...)
}
