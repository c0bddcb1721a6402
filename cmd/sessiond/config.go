package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/server"
)

// config is every setting of sessiond. Each field is a flag; the same
// setting can come from the environment (SESSIOND_ + the flag name in upper
// snake case) or a JSON config file (--config, keys are flag names).
// Precedence: flag, then environment, then file, then the default.
type config struct {
	Listen       string
	AdminListen  string
	Database     string
	SessionStore string

	IdleTimeout           time.Duration
	AbsoluteTimeout       time.Duration
	RememberMeLifetime    time.Duration
	RememberMeIdleTimeout time.Duration
	TouchInterval         time.Duration
	MaxSessionsPerUser    int
	ReauthWindow          time.Duration
	HijackDetection       bool
	SweepInterval         time.Duration
	AuditRetention        time.Duration
	MaxValueBytes         int
	MaxDataBytes          int
	MaxAnonymousDataBytes int
	AnonymousRatePerIP    int

	RejectedTokenRatePerIP int // flows.Config.RejectedTokenRatePerIP; 0: off

	LockoutThreshold    int
	LockoutDuration     time.Duration
	LockoutMaxDuration  time.Duration
	PasswordMinLength   int
	LoginRatePerIP      int
	ResetRatePerIP      int
	ResetRatePerAccount int
	ResetTokenTTL       time.Duration
	EmailChangeTTL      time.Duration
	Argon2Memory        uint
	Argon2Time          uint
	Argon2Parallelism   uint
	HashConcurrency     int
	HashStormShare      float64

	TrustedProxies string
	TrustedOrigins string
	CookieName     string
	CookieSecure   bool
	CookieSameSite string
	CookieDomain   string
	MaxBodyBytes   int64
	HSTS           bool
	TLSCert        string
	TLSKey         string
	PublicURL      string
	Pages          bool

	AdminKeyFile string
	adminKey     string // from SESSIOND_ADMIN_KEY or the file; never printed

	NotifyOutbox            string
	NotifyWebhook           string
	NotifyWebhookSecretFile string
	NotifyMaxAttempts       int
	NotifyRetryMin          time.Duration
	NotifyRetryMax          time.Duration

	WebhookURL         string
	WebhookSecretFile  string
	WebhookMaxAttempts int
	WebhookRetryMin    time.Duration
	WebhookRetryMax    time.Duration
	WebhookRetention   time.Duration

	LogFormat string
	LogLevel  string

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleConnTimeout   time.Duration
	ShutdownTimeout   time.Duration

	CacheSize   int
	GCPercent   int
	AdminPprof  bool
	CacheMaxAge time.Duration

	AccessTokenTTL     time.Duration
	JWTIssuer          string
	JWTAudience        string
	RefreshGrace       time.Duration
	KeyActivationDelay time.Duration
	JWKSMaxAge         time.Duration
	KeyReloadInterval  time.Duration
	ClockSkew          time.Duration
	KEKFile            string
	kek                string // from SESSIOND_KEY_ENCRYPTION_KEY or the file; never printed

	ConfigFile string
}

// flags registers every setting on fs with its default and help.
func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "address of the public API")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:8081", "address of the admin API, health and metrics")
	fs.StringVar(&c.Database, "database", "sqlite://sessiond.db", "accounts and sessions: sqlite://PATH or postgres://USER@HOST/DB (pool and timeouts from the URL)")
	fs.StringVar(&c.SessionStore, "session-store", "", "sessions elsewhere than --database: redis://HOST:PORT/DB (a cluster: ?addr=HOST:PORT&addr=…)")

	fs.DurationVar(&c.IdleTimeout, "idle-timeout", sessiond.DefaultIdleTimeout, "a session unused this long ends")
	fs.DurationVar(&c.AbsoluteTimeout, "absolute-timeout", sessiond.DefaultAbsoluteTimeout, "a session ends this long after login, used or not")
	fs.DurationVar(&c.RememberMeLifetime, "remember-me-lifetime", sessiond.DefaultRememberMeLifetime, "absolute lifetime of a remember-me session")
	fs.DurationVar(&c.RememberMeIdleTimeout, "remember-me-idle-timeout", sessiond.DefaultRememberMeIdleTimeout, "idle timeout of a remember-me session")
	fs.DurationVar(&c.TouchInterval, "touch-interval", 0, "least time between two last-seen writes of a session (0: a tenth of the idle timeout, at most 1m)")
	fs.IntVar(&c.MaxSessionsPerUser, "max-sessions-per-user", 0, "beyond it the least recently used session ends (0: no limit)")
	fs.DurationVar(&c.ReauthWindow, "reauth-window", sessiond.DefaultReauthWindow, "how long a password proof lasts for sensitive actions (signing out other sessions, deleting the account, changing the email); after it they need POST /v1/session/reauthenticate")
	fs.BoolVar(&c.HijackDetection, "hijack-detection", true, "end a browser session whose token comes from another browser or OS family, or without a User-Agent (bearer-token clients are exempt)")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", time.Minute, "how often expired sessions are deleted")
	fs.DurationVar(&c.AuditRetention, "audit-retention", 2160*time.Hour, "how long security events (the audit trail) are kept (0: forever)")
	fs.IntVar(&c.MaxValueBytes, "max-value-bytes", sessiond.DefaultMaxValueBytes, "largest session data value")
	fs.IntVar(&c.MaxDataBytes, "max-data-bytes", sessiond.DefaultMaxDataBytes, "largest session data, keys and values together")
	fs.IntVar(&c.MaxAnonymousDataBytes, "max-anonymous-data-bytes", sessiond.DefaultMaxAnonymousDataBytes, "largest data of an anonymous session (a visitor who has not signed in); more than --max-data-bytes counts as --max-data-bytes")
	fs.IntVar(&c.AnonymousRatePerIP, "anonymous-rate-per-ip", flows.DefaultAnonymousRatePerIP, "new anonymous sessions per minute from one client IP before 429 (0: off)")
	fs.IntVar(&c.RejectedTokenRatePerIP, "rejected-token-rate-per-ip", flows.DefaultRejectedTokenRatePerIP, "rejected tokens (malformed, unknown, expired, revoked; invalid refresh tokens) per minute from one client IP before every token from it gets 429 (0: off)")

	fs.IntVar(&c.LockoutThreshold, "lockout-threshold", account.DefaultLockoutThreshold, "consecutive failed logins before an account is locked")
	fs.DurationVar(&c.LockoutDuration, "lockout-duration", account.DefaultLockoutDuration, "first lock; each further lock doubles it")
	fs.DurationVar(&c.LockoutMaxDuration, "lockout-max-duration", account.DefaultLockoutMaxDuration, "longest lock")
	fs.IntVar(&c.PasswordMinLength, "password-min-length", account.DefaultPasswordMinLength, "shortest new password")
	fs.IntVar(&c.LoginRatePerIP, "login-rate-per-ip", flows.DefaultLoginRatePerIP, "failed logins per minute from one client IP before 429 (0: off)")
	fs.IntVar(&c.ResetRatePerIP, "reset-rate-per-ip", flows.DefaultResetRatePerIP, "password-reset requests per hour from one client IP that send a message")
	fs.IntVar(&c.ResetRatePerAccount, "reset-rate-per-account", flows.DefaultResetRatePerAccount, "password-reset requests per hour for one account from one client IP that send a message (4× that from every IP together)")
	fs.DurationVar(&c.ResetTokenTTL, "reset-token-ttl", account.DefaultResetTokenTTL, "lifetime of a password-reset token")
	fs.DurationVar(&c.EmailChangeTTL, "email-change-token-ttl", account.DefaultEmailChangeTTL, "lifetime of the confirmation token of a change of email")
	fs.UintVar(&c.Argon2Memory, "argon2-memory", uint(account.DefaultHashParams.Memory), "argon2id memory in KiB (at least 19456, OWASP)")
	fs.UintVar(&c.Argon2Time, "argon2-time", uint(account.DefaultHashParams.Time), "argon2id passes")
	fs.UintVar(&c.Argon2Parallelism, "argon2-parallelism", uint(account.DefaultHashParams.Parallelism), "argon2id lanes")
	fs.IntVar(&c.HashConcurrency, "hash-concurrency", 0, "password hashes computed at once (0: half the CPUs, at least 1)")
	fs.Float64Var(&c.HashStormShare, "hash-storm-share", account.DefaultHashStormShare, "while logins queue for a hash slot, the share of the slots' CPU time hashing may take; the rest stays with validations (1: all of it)")

	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed")
	fs.StringVar(&c.TrustedOrigins, "trusted-origins", "", "comma-separated origins allowed to make cookie-authenticated changes")
	fs.StringVar(&c.CookieName, "cookie-name", "__Host-session", "session cookie name")
	fs.BoolVar(&c.CookieSecure, "cookie-secure", true, "set the Secure attribute")
	fs.StringVar(&c.CookieSameSite, "cookie-samesite", "lax", "SameSite attribute: lax, strict or none")
	fs.StringVar(&c.CookieDomain, "cookie-domain", "", "Domain attribute (not with a __Host- name)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", server.DefaultMaxBodyBytes, "largest request body")
	fs.BoolVar(&c.HSTS, "hsts", false, "send Strict-Transport-Security (on by itself with --tls-cert)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve TLS with this certificate file")
	fs.StringVar(&c.TLSKey, "tls-key", "", "and this key file")
	fs.StringVar(&c.PublicURL, "public-url", "", "external base URL, for links in notifications")
	fs.BoolVar(&c.Pages, "pages", true, "serve the browser pages (sign-in, account, devices, activity) on the public listener")

	fs.StringVar(&c.AdminKeyFile, "admin-key-file", "", "file holding the admin API key (or set SESSIOND_ADMIN_KEY)")

	fs.StringVar(&c.NotifyOutbox, "notify-outbox", "sessiond-outbox", "directory for notifications as JSON files (development)")
	fs.StringVar(&c.NotifyWebhook, "notify-webhook", "", "URL that receives notifications as signed JSON POSTs (replaces the outbox)")
	fs.StringVar(&c.NotifyWebhookSecretFile, "notify-webhook-secret-file", "", "file holding the webhook signing secret (or set SESSIOND_NOTIFY_WEBHOOK_SECRET)")
	fs.IntVar(&c.NotifyMaxAttempts, "notify-max-attempts", 20, "failed deliveries of a queued notification before it is dead-lettered")
	fs.DurationVar(&c.NotifyRetryMin, "notify-retry-min", time.Second, "wait after a notification's first failed delivery; doubled after each (with jitter)")
	fs.DurationVar(&c.NotifyRetryMax, "notify-retry-max", 10*time.Minute, "longest wait between two deliveries of a notification")

	fs.StringVar(&c.WebhookURL, "webhook-url", "", "URL that receives lifecycle events (session created, rotated, revoked; user created, deleted) as signed JSON POSTs, from a durable outbox, at least once")
	fs.StringVar(&c.WebhookSecretFile, "webhook-secret-file", "", "file holding the lifecycle webhook signing secret (or set SESSIOND_WEBHOOK_SECRET)")
	fs.IntVar(&c.WebhookMaxAttempts, "webhook-max-attempts", 20, "failed deliveries of a lifecycle event before it is dead-lettered")
	fs.DurationVar(&c.WebhookRetryMin, "webhook-retry-min", time.Second, "wait after a lifecycle event's first failed delivery; doubled after each (with jitter)")
	fs.DurationVar(&c.WebhookRetryMax, "webhook-retry-max", 10*time.Minute, "longest wait between two deliveries of a lifecycle event")
	fs.DurationVar(&c.WebhookRetention, "webhook-retention", 168*time.Hour, "how long delivered and dead lifecycle events stay in the outbox (for the admin API)")

	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")

	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 5*time.Second, "time to read request headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 15*time.Second, "time to read a whole request")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 30*time.Second, "time to write a response")
	fs.DurationVar(&c.IdleConnTimeout, "idle-conn-timeout", 120*time.Second, "keep-alive connections idle this long are closed")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "time in-flight requests get on SIGTERM")

	fs.IntVar(&c.CacheSize, "cache-size", 100_000, "validated sessions kept in memory (0: every validation reads the store)")
	fs.BoolVar(&c.AdminPprof, "admin-pprof", false, "serve Go's profiler under /debug/pprof/ on the admin listener, behind the admin key")
	fs.IntVar(&c.GCPercent, "gc-percent", 400, "garbage collector target as in GOGC: the heap grows by this percentage of the live heap between collections (the GOGC environment variable, when set, wins)")
	fs.DurationVar(&c.CacheMaxAge, "cache-max-age", 2*time.Second, "longest a cached session is trusted without reading the store: the bound on staleness when a change went unannounced or the store is down")
	fs.DurationVar(&c.AccessTokenTTL, "access-token-ttl", flows.DefaultAccessTokenTTL, "lifetime of a client-side access token (JWT)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", `"iss" of access tokens (default: --public-url, else "sessiond")`)
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", `comma-separated "aud" of access tokens`)
	fs.DurationVar(&c.RefreshGrace, "refresh-grace", flows.DefaultRefreshGrace, "how long a just-used refresh token may come again from an honest racing client")
	fs.DurationVar(&c.KeyActivationDelay, "key-activation-delay", 90*time.Second, "a new signing key is published this long before it signs")
	fs.DurationVar(&c.JWKSMaxAge, "jwks-max-age", flows.DefaultJWKSMaxAge, "Cache-Control max-age of /.well-known/jwks.json")
	fs.DurationVar(&c.KeyReloadInterval, "key-reload-interval", 10*time.Second, "how often a node reloads the shared signing keys")
	fs.DurationVar(&c.ClockSkew, "clock-skew", flows.DefaultClockSkew, "clock difference allowed between sessiond and the services verifying its access tokens; a retired key stays published this long past its last token's expiry")
	fs.StringVar(&c.KEKFile, "key-encryption-key-file", "", "file with the base64 32-byte key that seals signing keys at rest and keys refresh chains (or SESSIOND_KEY_ENCRYPTION_KEY); client-side sessions are off without one")

	fs.StringVar(&c.ConfigFile, "config", "", "JSON file of settings, keys are flag names")
}

// maxDuration bounds every duration setting: a century.
const maxDuration = 100 * 365 * 24 * time.Hour

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "SESSIOND_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// loadConfig parses args, then fills flags not given from the environment
// and the config file, then validates. Errors are one line.
// A subcommand registers its own flags with extra; those come only from
// the command line.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer, extra ...func(*flag.FlagSet)) (*config, *flag.FlagSet, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would follow a mistake with the whole flag list;
	// a mistake gets its one line below instead, and only -h the list.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c.flags(fs)
	shared := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { shared[f.Name] = true })
	for _, e := range extra {
		e(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "Usage of %s:\n", name)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return nil, nil, err
		}
		fmt.Fprintf(stderr, "sessiond: %v (see '%s -h')\n", err, name)
		return nil, nil, errUsage
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || !shared[f.Name] {
			return
		}
		if v, ok := lookupEnv(getenv, envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", envName(f.Name), err))
			}
			set[f.Name] = true
		}
	})
	if c.ConfigFile != "" {
		if err := c.applyFile(fs, set, shared); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, nil, errs[0]
	}
	if err := c.resolveSecrets(getenv); err != nil {
		return nil, nil, err
	}
	if err := c.validate(); err != nil {
		return nil, nil, err
	}
	return c, fs, nil
}

func lookupEnv(getenv func(string) string, k string) (string, bool) {
	v := getenv(k)
	return v, v != ""
}

func (c *config) applyFile(fs *flag.FlagSet, set, shared map[string]bool) error {
	b, err := os.ReadFile(c.ConfigFile)
	if err != nil {
		return fmt.Errorf("--config: %v", err)
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("--config %s: not a JSON object: %v", c.ConfigFile, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !shared[k] || k == "config" {
			return fmt.Errorf("--config %s: unknown setting %q", c.ConfigFile, k)
		}
		if set[k] {
			continue
		}
		var v string
		switch x := m[k].(type) {
		case string:
			v = x
		case bool:
			v = strconv.FormatBool(x)
		case json.Number:
			v = x.String()
		default:
			return fmt.Errorf("--config %s: %q must be a string, number or boolean", c.ConfigFile, k)
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("--config %s: %q: %v", c.ConfigFile, k, err)
		}
	}
	return nil
}

func (c *config) resolveSecrets(getenv func(string) string) error {
	if err := c.resolveKEK(getenv); err != nil {
		return err
	}
	envKey := getenv("SESSIOND_ADMIN_KEY")
	switch {
	case envKey != "" && c.AdminKeyFile != "":
		return errors.New("SESSIOND_ADMIN_KEY and --admin-key-file are both set; choose one")
	case envKey != "":
		c.adminKey = envKey
	case c.AdminKeyFile != "":
		b, err := os.ReadFile(c.AdminKeyFile)
		if err != nil {
			return fmt.Errorf("--admin-key-file: %v", err)
		}
		c.adminKey = strings.TrimSpace(string(b))
		if c.adminKey == "" {
			return fmt.Errorf("--admin-key-file %s is empty", c.AdminKeyFile)
		}
	}
	if c.adminKey != "" && len(c.adminKey) < 16 {
		return errors.New("the admin key must be at least 16 characters")
	}
	return nil
}

// minSecretBytes is the least length of a webhook signing secret: 32
// bytes, the size of the HMAC-SHA256 key, so that a receiver's check is
// not weaker than the hash. An empty or short secret stops start-up.
const minSecretBytes = 32

// lifecycleWebhookSecret is the signing secret of --webhook-url.
func (c *config) lifecycleWebhookSecret(getenv func(string) string) ([]byte, error) {
	return signingSecret(getenv, "--webhook-url", "SESSIOND_WEBHOOK_SECRET", "--webhook-secret-file", c.WebhookSecretFile)
}

// webhookSecret is the signing secret of --notify-webhook.
func (c *config) webhookSecret(getenv func(string) string) ([]byte, error) {
	return signingSecret(getenv, "--notify-webhook", "SESSIOND_NOTIFY_WEBHOOK_SECRET", "--notify-webhook-secret-file", c.NotifyWebhookSecretFile)
}

// signingSecret reads the secret of the webhook flag user from the
// environment variable env or, trimmed, from file (the value of the flag
// fileFlag); exactly one of them, of at least minSecretBytes.
func signingSecret(getenv func(string) string, user, env, fileFlag, file string) ([]byte, error) {
	if s := getenv(env); s != "" {
		if file != "" {
			return nil, fmt.Errorf("%s and %s are both set; choose one", env, fileFlag)
		}
		if len(s) < minSecretBytes {
			return nil, fmt.Errorf("%s is %d bytes; a signing secret must be at least %d", env, len(s), minSecretBytes)
		}
		return []byte(s), nil
	}
	if file == "" {
		return nil, fmt.Errorf("%s needs a signing secret: %s or %s", user, fileFlag, env)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", fileFlag, err)
	}
	secret := []byte(strings.TrimSpace(string(b)))
	if len(secret) == 0 {
		return nil, fmt.Errorf("%s %s is empty", fileFlag, file)
	}
	if len(secret) < minSecretBytes {
		return nil, fmt.Errorf("%s %s holds %d bytes; a signing secret must be at least %d", fileFlag, file, len(secret), minSecretBytes)
	}
	return secret, nil
}

func (c *config) validate() error {
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"idle-timeout", c.IdleTimeout}, {"absolute-timeout", c.AbsoluteTimeout},
		{"remember-me-lifetime", c.RememberMeLifetime}, {"remember-me-idle-timeout", c.RememberMeIdleTimeout},
		{"sweep-interval", c.SweepInterval}, {"lockout-duration", c.LockoutDuration},
		{"lockout-max-duration", c.LockoutMaxDuration}, {"reset-token-ttl", c.ResetTokenTTL},
		{"read-header-timeout", c.ReadHeaderTimeout}, {"read-timeout", c.ReadTimeout},
		{"write-timeout", c.WriteTimeout}, {"idle-conn-timeout", c.IdleConnTimeout},
		{"shutdown-timeout", c.ShutdownTimeout},
		{"access-token-ttl", c.AccessTokenTTL}, {"refresh-grace", c.RefreshGrace}, {"cache-max-age", c.CacheMaxAge},
		{"jwks-max-age", c.JWKSMaxAge}, {"key-reload-interval", c.KeyReloadInterval},
		{"clock-skew", c.ClockSkew}, {"reauth-window", c.ReauthWindow}, {"email-change-token-ttl", c.EmailChangeTTL},
		{"webhook-retry-min", c.WebhookRetryMin}, {"webhook-retry-max", c.WebhookRetryMax}, {"webhook-retention", c.WebhookRetention},
		{"notify-retry-min", c.NotifyRetryMin}, {"notify-retry-max", c.NotifyRetryMax},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("--%s must be positive, got %v", p.name, p.d)
		}
	}
	// The session and account rules take a second at least; say so here
	// in flag names rather than later in the rules' field names.
	for _, p := range positive {
		switch p.name {
		case "idle-timeout", "absolute-timeout", "remember-me-lifetime", "remember-me-idle-timeout",
			"lockout-duration", "lockout-max-duration", "reset-token-ttl", "reauth-window", "email-change-token-ttl":
			if p.d < time.Second {
				return fmt.Errorf("--%s must be at least 1s, got %v", p.name, p.d)
			}
		}
	}
	// Every duration is at most a century, so that no sum or doubling of
	// them overflows (a lock doubled up to --lockout-max-duration, a key
	// kept for --access-token-ttl plus --clock-skew).
	type setting struct {
		name string
		d    time.Duration
	}
	for _, p := range append(positive, setting{"touch-interval", c.TouchInterval},
		setting{"audit-retention", c.AuditRetention}, setting{"key-activation-delay", c.KeyActivationDelay}) {
		if p.d > maxDuration {
			return fmt.Errorf("--%s must be at most %v, got %v", p.name, maxDuration, p.d)
		}
	}
	// The rules of the session and account packages, checked here so that
	// `sessiond config` refuses what serve would refuse, in flag names.
	switch {
	case c.TouchInterval > c.IdleTimeout:
		return fmt.Errorf("--touch-interval %v is longer than --idle-timeout %v", c.TouchInterval, c.IdleTimeout)
	case c.MaxValueBytes < 1 || c.MaxDataBytes < 1:
		return errors.New("--max-value-bytes and --max-data-bytes must be at least 1")
	case c.MaxValueBytes > c.MaxDataBytes:
		return fmt.Errorf("--max-value-bytes %d is larger than --max-data-bytes %d", c.MaxValueBytes, c.MaxDataBytes)
	case c.Argon2Parallelism < 1 || c.Argon2Parallelism > account.MaxHashParallelism:
		return fmt.Errorf("--argon2-parallelism must be in [1, %d], got %d", account.MaxHashParallelism, c.Argon2Parallelism)
	case c.Argon2Time < 1 || c.Argon2Time > account.MaxHashTime:
		return fmt.Errorf("--argon2-time must be in [1, %d], got %d", account.MaxHashTime, c.Argon2Time)
	case c.Argon2Memory < 8*c.Argon2Parallelism || c.Argon2Memory > account.MaxHashMemory:
		return fmt.Errorf("--argon2-memory must be in [8 × --argon2-parallelism, %d] KiB, got %d", account.MaxHashMemory, c.Argon2Memory)
	case !(c.HashStormShare > 0 && c.HashStormShare <= 1):
		return fmt.Errorf("--hash-storm-share must be in (0, 1], got %v", c.HashStormShare)
	case c.HashConcurrency < 0:
		return errors.New("--hash-concurrency must not be negative (0: half the CPUs)")
	case c.PasswordMinLength > account.DefaultPasswordMaxBytes:
		return fmt.Errorf("--password-min-length must be at most %d (the longest password, in bytes)", account.DefaultPasswordMaxBytes)
	case c.KeyActivationDelay < 0:
		return errors.New("--key-activation-delay must not be negative")
	case c.KeyActivationDelay < c.KeyReloadInterval+c.JWKSMaxAge:
		// A new key must be known everywhere before it signs: every node
		// has reloaded the keys, and every cached JWKS has expired.
		return fmt.Errorf("--key-activation-delay %v is shorter than --key-reload-interval %v plus --jwks-max-age %v: a new key would sign before every node and JWKS cache knows it",
			c.KeyActivationDelay, c.KeyReloadInterval, c.JWKSMaxAge)
	}
	switch {
	case c.TouchInterval < 0:
		return errors.New("--touch-interval must not be negative")
	case c.AuditRetention < 0:
		return errors.New("--audit-retention must not be negative (0 keeps events forever)")
	case c.CacheSize < 0:
		return errors.New("--cache-size must not be negative (0 switches the cache off)")
	case c.GCPercent < 10 || c.GCPercent > 10_000:
		return fmt.Errorf("--gc-percent must be between 10 and 10000, got %d", c.GCPercent)
	case c.MaxSessionsPerUser < 0:
		return errors.New("--max-sessions-per-user must not be negative")
	case c.WebhookMaxAttempts < 1:
		return errors.New("--webhook-max-attempts must be at least 1")
	case c.WebhookRetryMax < c.WebhookRetryMin:
		return errors.New("--webhook-retry-max is shorter than --webhook-retry-min")
	case c.NotifyMaxAttempts < 1:
		return errors.New("--notify-max-attempts must be at least 1")
	case c.NotifyRetryMax < c.NotifyRetryMin:
		return errors.New("--notify-retry-max is shorter than --notify-retry-min")
	case c.LockoutThreshold < 0:
		return errors.New("--lockout-threshold must not be negative (0 switches lockout off)")
	case c.LockoutMaxDuration < c.LockoutDuration:
		return errors.New("--lockout-max-duration is shorter than --lockout-duration")
	case c.PasswordMinLength < 1:
		return errors.New("--password-min-length must be at least 1")
	case c.LoginRatePerIP < 0 || c.AnonymousRatePerIP < 0 || c.RejectedTokenRatePerIP < 0 || c.ResetRatePerIP < 1 || c.ResetRatePerAccount < 1:
		return errors.New("rate limits must be positive (--login-rate-per-ip, --anonymous-rate-per-ip and --rejected-token-rate-per-ip may be 0: off)")
	case c.MaxAnonymousDataBytes < 1:
		return errors.New("--max-anonymous-data-bytes must be at least 1")
	case c.MaxBodyBytes < 1024:
		return errors.New("--max-body-bytes must be at least 1024")
	case c.Listen == c.AdminListen:
		return errors.New("--listen and --admin-listen must differ: the admin API has its own listener")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if _, err := parseSameSite(c.CookieSameSite); err != nil {
		return err
	}
	if _, err := c.proxies(); err != nil {
		return err
	}
	for _, o := range splitList(c.TrustedOrigins) {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return fmt.Errorf("--trusted-origins: %q is not an origin like https://app.example.com", o)
		}
	}
	if c.WebhookURL != "" {
		if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--webhook-url: %q is not an http(s) URL", redactURL(c.WebhookURL))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--public-url: %q is not an http(s) URL", c.PublicURL)
		}
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	if _, _, err := c.databaseTarget(); err != nil {
		return err
	}
	if _, err := c.sessionStoreTarget(); err != nil {
		return err
	}
	if err := c.cookie().Validate(); err != nil {
		return fmt.Errorf("--cookie-*: %v", err)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *config) proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range splitList(c.TrustedProxies) {
		pre, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR", p)
			}
			pre = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pre.Masked())
	}
	return out, nil
}

// database kinds of --database.
const (
	dbSQLite   = "sqlite"
	dbPostgres = "postgres"
)

// databaseTarget returns the kind of --database and what to open: a file
// path for SQLite, the URL for PostgreSQL.
func (c *config) databaseTarget() (kind, target string, err error) {
	switch {
	case strings.HasPrefix(c.Database, "sqlite://"):
		p := strings.TrimPrefix(c.Database, "sqlite://")
		if p == "" {
			return "", "", errors.New("--database sqlite:// needs a file path, like sqlite://sessiond.db")
		}
		return dbSQLite, p, nil
	case strings.HasPrefix(c.Database, "postgres://"), strings.HasPrefix(c.Database, "postgresql://"):
		if _, err := url.Parse(c.Database); err != nil {
			return "", "", fmt.Errorf("--database: not a URL: %v", redactErr(err))
		}
		return dbPostgres, c.Database, nil
	}
	return "", "", fmt.Errorf("--database %q: want sqlite://PATH or postgres://…", redactURL(c.Database))
}

// sessionStoreTarget returns the Redis URL of --session-store, or "" when
// sessions live in --database.
func (c *config) sessionStoreTarget() (string, error) {
	switch {
	case c.SessionStore == "" || c.SessionStore == c.Database:
		return "", nil
	case strings.HasPrefix(c.SessionStore, "redis://"), strings.HasPrefix(c.SessionStore, "rediss://"):
		if _, err := url.Parse(c.SessionStore); err != nil {
			return "", fmt.Errorf("--session-store: not a URL: %v", redactErr(err))
		}
		return c.SessionStore, nil
	}
	return "", fmt.Errorf("--session-store %q: want redis://… or rediss://… (or nothing: the database)", redactURL(c.SessionStore))
}

// redactErr keeps a URL parse error from echoing a password.
func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return "invalid URL"
}

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// print writes the effective configuration, one flag per line, secrets
// redacted.
func (c *config) print(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if f.Name == "database" || f.Name == "session-store" || f.Name == "notify-webhook" || f.Name == "webhook-url" {
			v = redactURL(v)
		}
		fmt.Fprintf(w, "%s=%s\n", f.Name, v)
	})
	key := "unset (admin API refuses every call)"
	if c.adminKey != "" {
		key = "set (redacted)"
	}
	fmt.Fprintf(w, "admin-key: %s\n", key)
	kek := "unset (client-side sessions off)"
	if c.kek != "" {
		kek = "set (redacted)"
	}
	fmt.Fprintf(w, "key-encryption-key: %s\n", kek)
}

func (c *config) resolveKEK(getenv func(string) string) error {
	env := getenv("SESSIOND_KEY_ENCRYPTION_KEY")
	switch {
	case env != "" && c.KEKFile != "":
		return errors.New("SESSIOND_KEY_ENCRYPTION_KEY and --key-encryption-key-file are both set; choose one")
	case env != "":
		c.kek = env
	case c.KEKFile != "":
		b, err := os.ReadFile(c.KEKFile)
		if err != nil {
			return fmt.Errorf("--key-encryption-key-file: %v", err)
		}
		c.kek = strings.TrimSpace(string(b))
	}
	if c.kek != "" {
		if _, err := accesstoken.NewKeyEncryption(c.kek); err != nil {
			return errors.New("the key-encryption key must be 32 bytes in base64 (make one with: sessiond keys new-kek)")
		}
	}
	return nil
}

// jwtIssuer is the "iss" of access tokens.
func (c *config) jwtIssuer() string {
	switch {
	case c.JWTIssuer != "":
		return c.JWTIssuer
	case c.PublicURL != "":
		return c.PublicURL
	}
	return "sessiond"
}
