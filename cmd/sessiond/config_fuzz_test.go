package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/server"
)

// FuzzLoadConfig hands the configuration loader arbitrary command-line
// arguments (separated by NUL), environment variables (NAME=VALUE lines
// separated by NUL) and config file content. Properties: loadConfig never
// panics; when it accepts, the configuration is valid all the way down:
// the session policy, the account rules (with the argon2 parameters exactly
// as given, not wrapped to a smaller type), the caches and the HTTP layer
// all accept it as serve wires it, secrets are not in the printed
// configuration, and printing every flag's value and loading that again
// gives the same configuration.
func FuzzLoadConfig(f *testing.F) {
	f.Add("", "", "")
	f.Add("--idle-timeout=5m\x00--absolute-timeout=1h\x00--touch-interval=10s", "", "")
	f.Add("--touch-interval=2h", "SESSIOND_IDLE_TIMEOUT=1h", "")
	f.Add("--max-value-bytes=70000", "", "")
	f.Add("--max-data-bytes=-1\x00--max-value-bytes=-5", "", "")
	f.Add("--argon2-parallelism=257", "", "")
	f.Add("--argon2-memory=4294986752", "", "")
	f.Add("--argon2-memory=8\x00--argon2-time=0", "", "")
	f.Add("--hash-concurrency=-1", "", "")
	f.Add("--password-min-length=5000", "", "")
	f.Add("--cookie-name=__Host-x\x00--cookie-domain=example.com", "", "")
	f.Add("--cookie-samesite=none\x00--cookie-secure=false", "", "")
	f.Add("--trusted-proxies=10.0.0.0/8, ::1 ,192.168.1.1\x00--trusted-origins=https://app.example.com", "", "")
	f.Add("--trusted-origins=https://app.example.com/path", "", "")
	f.Add("--public-url=https://login.example.com///", "", "")
	f.Add("--database=postgres://u:secret@db/x\x00--session-store=redis://:pw@cache:6379/0", "", "")
	f.Add("--database=postgres://u:secret@db/%zz", "", "")
	f.Add("--notify-webhook=https://u:hunter2@hooks.example/%zz", "", "")
	f.Add("", "SESSIOND_ADMIN_KEY=short", "")
	f.Add("", "SESSIOND_ADMIN_KEY=a-long-enough-admin-key\x00SESSIOND_KEY_ENCRYPTION_KEY=BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=", "")
	f.Add("", "SESSIOND_KEY_ENCRYPTION_KEY=not base64", "")
	f.Add("", "SESSIOND_LISTEN=127.0.0.1:8081", "")
	f.Add("", "", `{"idle-timeout":"10m","max-sessions-per-user":3,"hsts":true}`)
	f.Add("", "", `{"config":"other.json"}`)
	f.Add("", "", `{"idle-timeout":{"nested":1}}`)
	f.Add("", "", `{"max-body-bytes":1e3}`)
	f.Add("--lockout-threshold=0\x00--login-rate-per-ip=0\x00--cache-size=0", "", "")
	f.Add("--clock-skew=-1s", "", "")
	f.Add("-h", "", "")
	f.Add("--access-token-ttl=9223372036854775807ns\x00--clock-skew=9223372036854775807ns", "", "")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, args, env, file string) {
		for _, s := range []string{args, env, file} {
			// Files the loader may be pointed at: none of the special ones
			// that never end or block.
			if strings.Contains(s, "/dev") || strings.Contains(s, "/proc") || strings.Contains(s, "/sys") {
				t.Skip("names a special file")
			}
		}
		var argv []string
		if file != "" {
			p := filepath.Join(dir, "config.json")
			if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			argv = append(argv, "--config="+p)
		}
		if args != "" {
			argv = append(argv, strings.Split(args, "\x00")...)
		}
		vars := map[string]string{}
		for _, kv := range strings.Split(env, "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
		getenv := func(k string) string { return vars[k] }
		c, fs, err := loadConfig("sessiond fuzz", argv, getenv, io.Discard)
		if err != nil {
			if c != nil || fs != nil {
				t.Fatalf("loadConfig(%q) = %v with a config", argv, err)
			}
			return
		}
		checkUsable(t, c, argv)

		var printed bytes.Buffer
		c.print(&printed, fs)
		for _, secret := range []string{c.adminKey, c.kek} {
			if secret != "" && strings.Contains(printed.String(), secret) {
				t.Fatalf("the printed configuration shows a secret:\n%s", printed.String())
			}
		}

		// Round trip: every flag as printed, loaded again.
		var again []string
		fs.VisitAll(func(fl *flag.Flag) { again = append(again, "--"+fl.Name+"="+fl.Value.String()) })
		c2, _, err := loadConfig("sessiond fuzz", again, getenv, io.Discard)
		if err != nil {
			t.Fatalf("loadConfig(%q) accepted, its printed form %q is refused: %v", argv, again, err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("loadConfig(%q) = %+v, its printed form loads as %+v", argv, c, c2)
		}
	})
}

// checkUsable wires c as serve does, over memory stores, and fails if any
// part refuses what loadConfig accepted.
func checkUsable(t *testing.T, c *config, argv []string) {
	t.Helper()
	m, err := sessiond.NewManager(memstore.New(), c.policy(),
		sessiond.WithCache(sessiond.CacheConfig{Size: c.CacheSize, MaxAge: c.CacheMaxAge}))
	if err != nil {
		t.Fatalf("loadConfig(%q) accepted, the session rules refuse it: %v", argv, err)
	}
	ac := c.accountConfig()
	hp := ac.HashParams
	if uint64(hp.Memory) != uint64(c.Argon2Memory) || uint64(hp.Time) != uint64(c.Argon2Time) || uint64(hp.Parallelism) != uint64(c.Argon2Parallelism) {
		t.Fatalf("loadConfig(%q) accepted argon2 m=%d t=%d p=%d, the account rules get %v",
			argv, c.Argon2Memory, c.Argon2Time, c.Argon2Parallelism, hp)
	}
	a, err := account.NewService(memstore.NewAccounts(), ac, account.WithUserCache(c.CacheSize, c.CacheMaxAge))
	if err != nil {
		t.Fatalf("loadConfig(%q) accepted, the account rules refuse it: %v", argv, err)
	}
	if _, err := c.proxies(); err != nil {
		t.Fatalf("loadConfig(%q) accepted, its proxies do not parse: %v", argv, err)
	}
	f, err := flows.New(c.flowsConfig(), flows.Deps{Sessions: m, Accounts: a})
	if err != nil {
		t.Fatalf("loadConfig(%q) accepted, the flows refuse it: %v", argv, err)
	}
	if _, err := server.New(c.serverConfig(), server.Deps{Flows: f, Sessions: m, Accounts: a}); err != nil {
		t.Fatalf("loadConfig(%q) accepted, the HTTP layer refuses it: %v", argv, err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		t.Fatalf("loadConfig(%q) accepted log level %q: %v", argv, c.LogLevel, err)
	}
	_ = c.logger(io.Discard)
	if kind, target, err := c.databaseTarget(); err != nil || kind == "" || target == "" {
		t.Fatalf("loadConfig(%q) accepted --database %q: %q %q %v", argv, c.Database, kind, target, err)
	}
	// Client-side sessions: deadlines must be representable.
	if c.AccessTokenTTL+c.ClockSkew < c.AccessTokenTTL {
		t.Fatalf("loadConfig(%q) accepted --access-token-ttl %v and --clock-skew %v, whose sum overflows", argv, c.AccessTokenTTL, c.ClockSkew)
	}
}
