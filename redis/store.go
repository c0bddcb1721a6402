package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessiond/sessiond"
)

// Store is a sessiond.Store in Redis. It is safe for concurrent use; Close
// it when done.
type Store struct {
	c        rueidis.Client
	k        keys
	timeout  time.Duration
	cacheTTL time.Duration // 0: no client-side cache
	recent   *recentWrites // nil without a cache

	changes changeFeed // listen.go
	closed  chan struct{}
	close   sync.Once

	// cacheHook, when set (tests only), is told of every cached read.
	cacheHook func(hit bool)
}

var _ sessiond.Store = (*Store)(nil)

// Default settings, as documented on the options.
const (
	DefaultPrefix   = "sessiond:"
	DefaultTimeout  = time.Second
	DefaultCacheTTL = 5 * time.Second
)

// maxRecentWindow bounds how long a Store reads keys it wrote from the
// server rather than its cache; see doc.go.
const maxRecentWindow = time.Second

type config struct {
	prefix    string
	prefixSet bool // WithPrefix was given: it wins over the URL's
	timeout   time.Duration
	cacheTTL  time.Duration
	clientOpt func(*rueidis.ClientOption)
}

// Option configures Open.
type Option func(*config)

// WithPrefix puts every key of the store under prefix p, so that several
// stores (tenants, tests) share a server without colliding. Default: the
// URL's prefix parameter (redis://host:6379/0?prefix=myapp:), else
// "sessiond:"; WithPrefix wins over the URL. The prefix may not contain
// '{' or '}', which would change the keys' Redis Cluster hash tags.
func WithPrefix(p string) Option { return func(c *config) { c.prefix, c.prefixSet = p, true } }

// WithTimeout bounds every call to the server, and connecting to it: a call
// that gets no answer in time fails (and sessiond fails closed) rather than
// hanging. A shorter deadline on the caller's context wins. Default 1s.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithCacheTTL sets how long a lookup may be served from the client-side
// cache at most; Redis invalidates a cached key as soon as it changes, and
// the TTL bounds staleness when invalidations cannot arrive. Zero turns the
// client-side cache off: every lookup is a round trip. Default 5s.
func WithCacheTTL(d time.Duration) Option { return func(c *config) { c.cacheTTL = d } }

// WithClientOption lets f adjust the rueidis client options after they are
// read from the URL and this package's defaults are applied (TLS roots,
// pool and cache sizes, ...). Default none.
func WithClientOption(f func(*rueidis.ClientOption)) Option {
	return func(c *config) { c.clientOpt = f }
}

// Open connects to the Redis server or cluster named by rawURL and returns
// a Store on it. The URL is redis:// or rediss:// (TLS), with user,
// password and database as usual; more nodes of a cluster are given as
// addr query parameters (redis://h1:6379?addr=h2:6379&addr=h3:6379). The
// parameter prefix is the key prefix (see WithPrefix), taken out before
// the rest goes to rueidis.ParseURL, which reads the other parameters.
// Open fails when no node answers within the timeout, or when a node runs
// a Redis older than 7.0.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	cfg := config{prefix: DefaultPrefix, timeout: DefaultTimeout, cacheTTL: DefaultCacheTTL}
	rawURL, prefix, hasPrefix, err := takePrefix(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: open: bad URL: %w", err)
	}
	if hasPrefix {
		cfg.prefix = prefix
	}
	for _, o := range opts {
		o(&cfg)
	}
	if strings.ContainsAny(cfg.prefix, "{}") {
		return nil, fmt.Errorf("redis: open: prefix %q contains a brace", cfg.prefix)
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("redis: open: timeout %v is not positive", cfg.timeout)
	}
	cfg.cacheTTL = max(cfg.cacheTTL, 0)

	o, err := rueidis.ParseURL(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis: open: bad URL: %w", err)
	}
	if o.Dialer.Timeout == 0 {
		o.Dialer.Timeout = cfg.timeout // also bounds the handshake
	}
	if o.ClientName == "" {
		o.ClientName = "sessiond"
	}
	if cfg.cacheTTL == 0 {
		o.DisableCache = true
	}
	if cfg.clientOpt != nil {
		cfg.clientOpt(&o)
	}
	if o.DisableCache {
		cfg.cacheTTL = 0
	}
	s := &Store{k: keys{cfg.prefix}, timeout: cfg.timeout, cacheTTL: cfg.cacheTTL, closed: make(chan struct{})}
	if next := o.OnInvalidations; next != nil {
		o.OnInvalidations = func(m []rueidis.RedisMessage) { s.invalidated(m); next(m) }
	} else {
		o.OnInvalidations = s.invalidated
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	c, err := newClient(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("redis: open %s: %w", redactedAddrs(o), err)
	}
	s.c = c
	if s.cacheTTL > 0 {
		s.recent = newRecentWrites(min(s.cacheTTL, maxRecentWindow))
	}
	if err := s.checkVersion(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: open %s: %w", redactedAddrs(o), err)
	}
	return s, nil
}

// takePrefix returns rawURL without its prefix query parameter, and that
// parameter's value. A URL without one comes back as it is.
func takePrefix(rawURL string) (rest, prefix string, ok bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", "", false, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", "", false, err
	}
	ps, ok := q["prefix"]
	switch {
	case !ok:
		return rawURL, "", false, nil
	case len(ps) > 1:
		return "", "", false, errors.New("more than one prefix parameter")
	}
	q.Del("prefix")
	u.RawQuery = q.Encode()
	return u.String(), ps[0], true, nil
}

// newClient is rueidis.NewClient, which takes no context, given up on when
// ctx ends first.
func newClient(ctx context.Context, o rueidis.ClientOption) (rueidis.Client, error) {
	type result struct {
		c   rueidis.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := rueidis.NewClient(o)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func redactedAddrs(o rueidis.ClientOption) string { return strings.Join(o.InitAddress, ",") }

// checkVersion refuses servers older than Redis 7.0, which lack commands
// the scripts use (PEXPIRETIME).
func (s *Store) checkVersion(ctx context.Context) error {
	for addr, n := range s.c.Nodes() {
		info, err := n.Do(ctx, n.B().Info().Section("server").Build()).ToString()
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		_, v, ok := strings.Cut(info, "redis_version:")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, ".")
		if major, err := strconv.Atoi(v); err == nil && major < 7 {
			return fmt.Errorf("%s: Redis %s.x is older than 7.0", addr, v)
		}
	}
	return nil
}

// Close closes the connections. Calls after Close fail.
func (s *Store) Close() error {
	s.close.Do(func() { close(s.closed) })
	s.c.Close()
	return nil
}

// Ping reports whether every node answers, for readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	for addr, n := range s.c.Nodes() {
		if err := n.Do(ctx, n.B().Ping().Build()).Error(); err != nil {
			return fmt.Errorf("redis: ping %s: %w", addr, err)
		}
	}
	return nil
}

func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// wrap adds the operation to a failure; the sentinels of the Store
// contract go through as they are.
func wrap(op string, err error) error {
	if err == nil || errors.Is(err, sessiond.ErrNotFound) || errors.Is(err, sessiond.ErrDataTooLarge) ||
		errors.Is(err, sessiond.ErrCredentialsChanged) {
		return err
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// keys names the keys of one store; tags and ids are escaped (esc).
type keys struct{ p string }

func (k keys) rec(tag, id string) string  { return k.p + "s:{" + tag + "}:" + id }
func (k keys) data(tag, id string) string { return k.p + "d:{" + tag + "}:" + id }
func (k keys) user(tag string) string     { return k.p + "u:{" + tag + "}" }
func (k keys) id(id string) string        { return k.p + "i:{" + id + "}" }
func (k keys) gen(tag string) string      { return k.p + "g:{" + tag + "}" }
func (k keys) sweep() string              { return k.p + "x:{sweep}" }

func (k keys) token(h sessiond.TokenHash) string {
	const hexdigits = "0123456789abcdef"
	b := make([]byte, 0, len(k.p)+4+2*len(h))
	b = append(b, k.p...)
	b = append(b, "t:{"...)
	for _, c := range h {
		b = append(b, hexdigits[c>>4], hexdigits[c&15])
	}
	return string(append(b, '}'))
}

// esc percent-encodes the bytes that would change a key's hash tag or
// split a "tag:id" member: '{', '}', ':' and '%' itself. Ids made by
// sessiond (hex) come through unchanged.
func esc(s string) string {
	if !strings.ContainsAny(s, "{}:%") {
		return s
	}
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{', '}', ':', '%':
			b.WriteByte('%')
			b.WriteByte(hexdigits[c>>4])
			b.WriteByte(hexdigits[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// recentWrites remembers the keys this Store changed in the last window, so
// that reading them bypasses the client-side cache until Redis's
// invalidation has surely arrived: read-your-writes within one Store.
type recentWrites struct {
	window time.Duration

	mu    sync.RWMutex
	until map[string]time.Time
	prune time.Time
}

func newRecentWrites(window time.Duration) *recentWrites {
	return &recentWrites{window: window, until: make(map[string]time.Time)}
}

// mark records that keys were written now.
func (r *recentWrites) mark(keys ...string) {
	if r == nil || len(keys) == 0 {
		return
	}
	now := time.Now()
	until := now.Add(r.window)
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.After(r.prune) {
		for k, t := range r.until {
			if now.After(t) {
				delete(r.until, k)
			}
		}
		r.prune = until
	}
	for _, k := range keys {
		r.until[k] = until
	}
}

// has reports whether key was written within the window.
func (r *recentWrites) has(key string) bool {
	r.mu.RLock()
	t, ok := r.until[key]
	r.mu.RUnlock()
	return ok && time.Now().Before(t)
}

// cached reports whether a read of key may be served from the cache.
func (s *Store) cached(key string) bool {
	return s.cacheTTL > 0 && !s.recent.has(key)
}

func (s *Store) noteCache(r rueidis.RedisResult) {
	if s.cacheHook != nil {
		s.cacheHook(r.IsCacheHit())
	}
}

// read runs one read command per key, through the client-side cache
// unless this Store wrote the key just now, in one round trip at most.
func (s *Store) read(ctx context.Context, keys []string,
	cache func(b rueidis.Builder, key string) rueidis.Cacheable,
	build func(b rueidis.Builder, key string) rueidis.Completed,
) []rueidis.RedisResult {
	if len(keys) == 1 {
		return []rueidis.RedisResult{s.read1(ctx, keys[0], cache, build)}
	}
	b := s.c.B()
	res := make([]rueidis.RedisResult, len(keys))
	var cached []rueidis.CacheableTTL
	var direct rueidis.Commands
	var cachedAt, directAt []int
	for i, k := range keys {
		if s.cached(k) {
			cached = append(cached, rueidis.CT(cache(b, k), s.cacheTTL))
			cachedAt = append(cachedAt, i)
		} else {
			direct = append(direct, build(b, k))
			directAt = append(directAt, i)
		}
	}
	if len(cached) > 0 {
		for j, r := range s.c.DoMultiCache(ctx, cached...) {
			s.noteCache(r)
			res[cachedAt[j]] = r
		}
	}
	if len(direct) > 0 {
		for j, r := range s.c.DoMulti(ctx, direct...) {
			res[directAt[j]] = r
		}
	}
	return res
}

// read1 is read for one key.
func (s *Store) read1(ctx context.Context, key string,
	cache func(b rueidis.Builder, key string) rueidis.Cacheable,
	build func(b rueidis.Builder, key string) rueidis.Completed,
) rueidis.RedisResult {
	if !s.cached(key) {
		return s.c.Do(ctx, build(s.c.B(), key))
	}
	r := s.c.DoCache(ctx, cache(s.c.B(), key), s.cacheTTL)
	s.noteCache(r)
	return r
}

func cacheGet(b rueidis.Builder, k string) rueidis.Cacheable { return b.Get().Key(k).Cache() }
func buildGet(b rueidis.Builder, k string) rueidis.Completed { return b.Get().Key(k).Build() }

func cacheHgetall(b rueidis.Builder, k string) rueidis.Cacheable { return b.Hgetall().Key(k).Cache() }
func buildHgetall(b rueidis.Builder, k string) rueidis.Completed { return b.Hgetall().Key(k).Build() }

// gets reads string keys; found[i] is false for a missing key.
func (s *Store) gets(ctx context.Context, keys ...string) (vals []string, found []bool, err error) {
	vals, found = make([]string, len(keys)), make([]bool, len(keys))
	for i, r := range s.read(ctx, keys, cacheGet, buildGet) {
		v, e := r.ToString()
		switch {
		case rueidis.IsRedisNil(e):
		case e != nil:
			return nil, nil, e
		default:
			vals[i], found[i] = v, true
		}
	}
	return vals, found, nil
}

// get reads one string key.
func (s *Store) get(ctx context.Context, key string) (string, bool, error) {
	v, err := s.read1(ctx, key, cacheGet, buildGet).ToString()
	switch {
	case rueidis.IsRedisNil(err):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return v, true, nil
}

// hgetall reads whole hashes, an empty map for a missing key.
func (s *Store) hgetall(ctx context.Context, keys ...string) ([]map[string]string, error) {
	out := make([]map[string]string, len(keys))
	for i, r := range s.read(ctx, keys, cacheHgetall, buildHgetall) {
		m, err := r.AsStrMap()
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}
